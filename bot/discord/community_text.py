"""The wording of the moderation log and of "ping when done". Pure functions; every echoed
prompt or rule is escaped (:func:`.render.quote_prompt`), members are shown as mentions (the
messages carrying them ping nobody), and each text is worded in ``language``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.creative_models import BlockedPrompt
from bot.i18n import render, t
from bot.models import Job

from .render import MESSAGE_LIMIT, mention_user, quote_prompt, shorten

#: Discord's limit for an embed's description, where the moderation log puts the prompt.
EMBED_DESCRIPTION_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class ModLogEntry:
    """One moderation-log post: its text and the prompt shown in its embed."""

    content: str
    prompt: str
    shortened: bool


@dataclass(frozen=True, slots=True)
class FinishedEntry:
    """What the log says about a delivered job (``link``: the result message, or None when
    it went to the member by DM)."""

    job: Job
    provider_label: str
    link: str | None
    shown: int  # images with a thumbnail in the entry
    hidden: int  # images posted as spoilers (flagged NSFW): no thumbnail


def _channel(channel_id: int) -> str:
    return f"<#{channel_id}>"


def _prompt(prompt: str) -> tuple[str, bool]:
    """The whole prompt escaped, within an embed's description (cut only when escaping made a
    long prompt too long)."""
    limit = EMBED_DESCRIPTION_LIMIT
    while True:
        quoted = quote_prompt(prompt, limit)
        if len(quoted) <= EMBED_DESCRIPTION_LIMIT:
            return quoted, limit < len(" ".join(prompt.split()))
        limit -= len(quoted) - EMBED_DESCRIPTION_LIMIT


def _entry(lines: Sequence[str], prompt: str, language: str) -> ModLogEntry:
    quoted, cut = _prompt(prompt)
    if cut:
        lines = [*lines, render(t("community.modlog.shortened"), language)]
    return ModLogEntry(shorten("\n".join(lines), MESSAGE_LIMIT), quoted, cut)


def _asked_by(user_id: int, channel_id: int, language: str) -> str:
    return render(
        t("community.modlog.asked_by", user=mention_user(user_id), channel=_channel(channel_id)),
        language,
    )


def finished_entry(done: FinishedEntry, language: str = "en") -> ModLogEntry:
    """A delivered job: who asked, what, with which style and service, where the result is."""
    job = done.job
    style = quote_prompt(job.params.style, 100) if job.params.style else None
    lines = [
        render(t("community.modlog.finished", kind=job.kind.value, job_id=job.id), language),
        _asked_by(job.user_id, job.channel_id, language),
        render(
            t(
                "community.modlog.made_with",
                style=style or t("community.modlog.no_style"),
                provider=quote_prompt(done.provider_label, 100),
            ),
            language,
        ),
        render(
            t("community.modlog.result", link=done.link)
            if done.link
            else t("community.modlog.result_by_dm"),
            language,
        ),
    ]
    if not done.shown and not done.hidden:
        lines.append(render(t("community.modlog.no_images"), language))
    if done.hidden:
        lines.append(render(t("community.modlog.hidden", count=done.hidden), language))
    return _entry(lines, job.prompt, language)


def failed_entry(job: Job, reason: str, language: str = "en") -> ModLogEntry:
    """A job that failed (or the provider's moderation refused), briefly."""
    lines = [
        render(
            t(
                "community.modlog.failed",
                status=job.status.value,
                kind=job.kind.value,
                job_id=job.id,
            ),
            language,
        ),
        _asked_by(job.user_id, job.channel_id, language),
        render(t("community.modlog.why", reason=quote_prompt(reason, 300)), language),
    ]
    return _entry(lines, job.prompt, language)


def blocked_entry(refusal: BlockedPrompt, language: str = "en") -> ModLogEntry:
    """A prompt the blocklist refused, naming the entry it matched (moderators only)."""
    rule = refusal.rule
    if rule is None:
        matched = t("community.modlog.matched_gone")
    elif rule.regex:
        matched = t("community.modlog.matched_pattern", rule=quote_prompt(rule.pattern, 250))
    else:
        matched = t("community.modlog.matched_word", rule=quote_prompt(rule.pattern, 250))
    lines = [
        render(t("community.modlog.blocked", kind=refusal.kind.value), language),
        _asked_by(refusal.user_id, refusal.channel_id, language),
        render(matched, language),
    ]
    return _entry(lines, refusal.prompt, language)


def modlog_set_text(
    channel_id: int | None, missing: Sequence[str] = (), language: str = "en"
) -> str:
    """The answer to ``/kontext-admin modlog``; ``missing``: permissions the bot lacks there."""
    if channel_id is None:
        return render(t("community.modlog.command.cleared"), language)
    lines = [render(t("community.modlog.command.set", channel=_channel(channel_id)), language)]
    if missing:
        lines.append(
            render(
                t(
                    "community.modlog.command.missing",
                    permissions=", ".join(missing),
                    channel=_channel(channel_id),
                ),
                language,
            )
        )
    return "\n".join(lines)


def modlog_setting(channel_id: int | None, language: str = "en") -> str:
    """The moderation log's line in the server's settings."""
    if channel_id is None:
        return render(t("community.modlog.command.setting_off"), language)
    return render(t("community.modlog.command.setting", channel=_channel(channel_id)), language)


def ping_name(language: str = "en") -> str:
    return render(t("community.ping.name"), language)


def ping_value(ping: bool | None, language: str = "en") -> str:
    """``on``/``off`` for a ping choice (None: not chosen, shown as a dash)."""
    if ping is None:
        return "—"
    return render(t("community.ping.on") if ping else t("community.ping.off"), language)
