"""Database URLs made fit for logs and messages: the password never shows (used by the
settings and by storage)."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_PASSWORD_PARAMS = frozenset({"password", "passfile", "sslpassword"})


def redact_url(url: str) -> str:
    """The URL without its password (in the user info or a ``password=`` parameter), fit for
    logs and messages; a URL too broken to parse is not shown at all."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a database URL that cannot be parsed>"
    original = parts
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        parts = parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{hostport}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() in _PASSWORD_PARAMS for key, _ in pairs):
        query = [(k, "***" if k.lower() in _PASSWORD_PARAMS else v) for k, v in pairs]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return url if parts == original else urlunsplit(parts)


def scrub_password(text: str, url: str) -> str:
    """``text`` (say, a driver's error message) with the password of ``url`` masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    userinfo, at, _ = parts.netloc.rpartition("@")
    secrets = [userinfo.split(":", 1)[1]] if at and ":" in userinfo else []
    secrets += [v for k, v in parse_qsl(parts.query) if k.lower() in _PASSWORD_PARAMS]
    for secret in list(secrets):
        secrets.append(unquote(secret))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
