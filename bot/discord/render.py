"""Words the bot shows on Discord, as pure functions of plain values and a language.

The services return data (jobs, :class:`~bot.edits.JobInfo`, :class:`~bot.edits.QueueSnapshot`,
history trees); the cogs, the delivery and the status board word it here, from the message
catalog (``bot/i18n/locales/<language>/discord*.toml``) in the language they were given, so
the wording is tested without a gateway. Anything a user typed is escaped before it is echoed
(:func:`quote_prompt`), so a prompt can neither ping anyone nor break the message's formatting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bot.durations import format_duration
from bot.i18n import DEFAULT_LANGUAGE, Text, t
from bot.i18n import render as word
from bot.models import Job, JobStatus, Output, RemixChannel

from .escaping import (
    MESSAGE_LIMIT,
    PROMPT_ECHO_LIMIT,
    THREAD_NAME_LIMIT,
    escape_text,
    mention_user,
    quote_prompt,
    shorten,
)
from .render_history import (
    PROMPT_CHARS,
    escape_prompt,
    format_chain,
    gallery_caption,
    history_text,
    undo_caption,
)
from .render_info import (
    FORGET_ME_ASK,
    forget_me_done_text,
    info_text,
    operator_alert_text,
    origin_word,
    queue_text,
    resume_text,
    settings_text,
    state_name,
    usage_text,
)

__all__ = [
    "FORGET_ME_ASK",
    "MESSAGE_LIMIT",
    "PROMPT_CHARS",
    "PROMPT_ECHO_LIMIT",
    "THREAD_NAME_LIMIT",
    "escape_prompt",
    "escape_text",
    "forget_me_done_text",
    "format_chain",
    "format_duration",
    "gallery_caption",
    "history_text",
    "info_text",
    "mention_user",
    "operator_alert_text",
    "origin_word",
    "queue_text",
    "quote_prompt",
    "resume_text",
    "settings_text",
    "shorten",
    "state_name",
    "undo_caption",
    "usage_text",
]


def thread_name(prompt: str, language: str = DEFAULT_LANGUAGE) -> str:
    """A thread title from the prompt (thread names are plain text: no escaping needed)."""
    flat = " ".join(prompt.split()) or word(t("discord.thread_default"), language)
    return shorten(flat, THREAD_NAME_LIMIT)


# --- the status message ----------------------------------------------------------------------


def _echo(prompt: str) -> str:
    return quote_prompt(prompt, 300)


def status_queued(
    prompt: str,
    position: int | None,
    eta_seconds: float | None,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    where = (
        t("discord.status.position", position=position) if position else t("discord.status.waiting")
    )
    about = (
        t("discord.status.about", eta=format_duration(eta_seconds, language=language))
        if eta_seconds is not None
        else ""
    )
    text = t("discord.status.queued", where=where, about=about, prompt=_echo(prompt))
    return word(text, language)


def status_running(
    prompt: str,
    progress: float | None = None,
    provider: str = "",
    language: str = DEFAULT_LANGUAGE,
) -> str:
    pct = (
        t("discord.status.percent", percent=round(progress * 100))
        if progress is not None and 0 < progress < 1
        else ""
    )
    via = t("discord.status.with_provider", provider=provider) if provider else ""
    return word(t("discord.status.running", percent=pct, via=via, prompt=_echo(prompt)), language)


def status_delayed(
    prompt: str, reason: str, retry_in: float | None, language: str = DEFAULT_LANGUAGE
) -> str:
    when = (
        t("discord.status.retry_in", eta=format_duration(retry_in, language=language))
        if retry_in is not None
        else ""
    )
    text = t("discord.status.delayed", when=when, reason=escape_text(reason), prompt=_echo(prompt))
    return word(text, language)


def status_fallback(
    prompt: str, failed: str, now_using: str, language: str = DEFAULT_LANGUAGE
) -> str:
    text = t("discord.status.fallback", failed=failed, now_using=now_using, prompt=_echo(prompt))
    return word(text, language)


def status_done(
    prompt: str,
    duration: float | None,
    where: str | None = None,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    posted = t("discord.status.result_where", where=where) if where else ""
    took = format_duration(duration, language=language)
    return word(
        t("discord.status.done", duration=took, posted=posted, prompt=_echo(prompt)), language
    )


def status_failed(prompt: str, reason: str, language: str = DEFAULT_LANGUAGE) -> str:
    text = t("discord.status.failed", reason=escape_text(reason), prompt=_echo(prompt))
    return word(text, language)


def status_cancelled(
    prompt: str, by_user_id: int | None = None, language: str = DEFAULT_LANGUAGE
) -> str:
    by = t("discord.status.cancelled_by", user=mention_user(by_user_id)) if by_user_id else ""
    return word(t("discord.status.cancelled", by=by, prompt=_echo(prompt)), language)


def status_expired(prompt: str, language: str = DEFAULT_LANGUAGE) -> str:
    return word(t("discord.status.expired", prompt=_echo(prompt)), language)


def status_paused(prompt: str, reason: str, language: str = DEFAULT_LANGUAGE) -> str:
    """A job waiting because its provider is paused: members learn only that the operator
    knows (``reason`` is the engine's wording for the requester, never the operator's)."""
    return word(
        t("discord.status.paused", reason=escape_text(reason), prompt=_echo(prompt)), language
    )


def status_for_terminal(
    job: Job, duration: float | None = None, language: str = DEFAULT_LANGUAGE
) -> str:
    """The final status line for a finished job, from its stored record alone."""
    if job.status is JobStatus.DONE:
        return status_done(job.prompt, duration, language=language)
    if job.status is JobStatus.CANCELLED:
        return status_cancelled(job.prompt, language=language)
    if job.status is JobStatus.EXPIRED:
        return status_expired(job.prompt, language=language)
    reason = word(job.failure_text(), language) or word(
        t("discord.status.failed_unknown"), language
    )
    return status_failed(job.prompt, reason, language=language)


# --- the result message ----------------------------------------------------------------------


def result_caption(
    *,
    prompt: str,
    requester_id: int,
    provider_label: str,
    model: str | None,
    seed: int | None,
    duration: float | None,
    notes: Sequence[Text | str] = (),
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """The text above a result: the prompt, who asked, and how it was made."""
    facts = [provider_label]
    if model:
        facts.append(model)
    if seed is not None:
        facts.append(word(t("discord.result.seed", seed=seed), language))
    facts.append(format_duration(duration, language=language))
    lines = [
        f"**{quote_prompt(prompt)}**",
        f"{mention_user(requester_id)} · " + " · ".join(escape_text(f) for f in facts),
        *(f"-# {word(note, language)}" for note in notes),
    ]
    return shorten("\n".join(lines), MESSAGE_LIMIT)


# --- where a result goes, and why not where expected ------------------------------------------

CANNOT_POST_HERE: Final = t("discord.note.cannot_post_here")
NOTE_THREAD_REFUSED: Final = t("discord.note.thread_refused")
NOTE_NO_THREAD_PERMISSION: Final = t("discord.note.no_thread_permission")
NOTE_NO_THREADS_HERE: Final = t("discord.note.no_threads_here")
NOTE_NSFW_WITHHELD: Final = t("discord.note.nsfw_withheld")
NOTE_NSFW_AGE_RESTRICTED: Final = t("discord.note.nsfw_age_restricted")


def picked_text(
    number: int,
    created: bool,
    guild_id: int,
    output: Output | None,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """The private answer to a pick button: where image ``number`` was posted alone."""
    where: Text | str = ""
    if output is not None and output.message_id is not None and output.channel_id is not None:
        link = f"https://discord.com/channels/{guild_id}/{output.channel_id}/{output.message_id}"
        where = t("discord.reply.picked_where", link=link)
    if created:
        return word(t("discord.reply.picked", number=number, where=where), language)
    return word(t("discord.reply.picked_before", number=number, where=where), language)


def batch_failed(number: int, count: int, reason: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The note under a batch saying that one image of it failed, and why."""
    why = (
        t("discord.note.batch_failed_why", reason=escape_text(shorten(reason, 200)))
        if reason
        else ""
    )
    return word(t("discord.note.batch_failed", number=number, count=count, why=why), language)


NOTE_BATCH: Final = t("discord.note.batch")
NOTE_REENCODED: Final = t("discord.note.reencoded")
NOTE_THREAD_GONE: Final = t("discord.note.thread_gone")
NOTE_NO_ATTACH_NO_DM: Final = t("discord.note.no_attach_no_dm")


def cancelled_text(job_id: int, language: str = DEFAULT_LANGUAGE) -> str:
    return word(t("discord.reply.cancelled", job=job_id), language)


def sent_by_dm(user_id: int, language: str = DEFAULT_LANGUAGE) -> str:
    return word(t("discord.reply.sent_by_dm", user=mention_user(user_id)), language)


def queued_text(
    job_id: int,
    where: Text | str,
    notes: Sequence[Text | str] = (),
    language: str = DEFAULT_LANGUAGE,
) -> str:
    """The private answer to a command that queued a job: where to follow it."""
    lines = [t("discord.reply.queued", job=job_id, where=where), *notes]
    return "\n".join(word(line, language) for line in lines)


# --- remix channels ---------------------------------------------------------------------------

REMIX_HOWTO: Final = t("discord.remix.howto")


def remix_added_text(
    channel_mention: str,
    added: RemixChannel,
    *,
    restricted: bool,
    message_content: bool,
    language: str = DEFAULT_LANGUAGE,
) -> str:
    lines = [t("discord.remix.added", channel=channel_mention, howto=REMIX_HOWTO)]
    if added.style_suffix:
        lines.append(t("discord.remix.suffix", suffix=quote_prompt(added.style_suffix)))
    if restricted:
        lines.append(t("discord.remix.restricted"))
    if not message_content:
        lines.append(t("discord.remix.no_content"))
    return "\n".join(word(line, language) for line in lines)


def remix_list_text(
    channels: Sequence[RemixChannel], gallery: int | None, language: str = DEFAULT_LANGUAGE
) -> str:
    lines = [t("discord.remix.list_head")] if channels else [t("discord.remix.list_none")]
    for found in channels:
        style = (
            t("discord.remix.list_style", style=quote_prompt(found.style_suffix, 100))
            if found.style_suffix
            else ""
        )
        lines.append(t("discord.remix.list_line", channel=f"<#{found.channel_id}>", style=style))
    lines.append(
        t("discord.remix.gallery", channel=f"<#{gallery}>")
        if gallery
        else t("discord.remix.gallery_none")
    )
    lines.append(t("discord.remix.add_hint"))
    return "\n".join(word(line, language) for line in lines)


UNKNOWN_COMPONENT: Final = t("discord.reply.unknown_component")
HELP_TEXT: Final = t("discord.help.text")
