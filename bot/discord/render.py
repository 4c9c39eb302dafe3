"""Words the bot shows on Discord, as pure functions of plain values: the one message catalog.

The services return data (jobs, :class:`~bot.edits.JobInfo`, :class:`~bot.edits.QueueSnapshot`,
history trees); the cogs, the delivery and the status board word it here, so the wording is
tested without a gateway. Anything a user typed is escaped before it is echoed
(:func:`quote_prompt`), so a prompt can neither ping anyone nor break the message's formatting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from bot.durations import format_duration
from bot.edits import JobInfo, QueueSnapshot, UsageReport
from bot.history import ChainStep, HistoryTree
from bot.i18n import render as i18n_render
from bot.i18n import t
from bot.models import GuildSettings, Job, JobKind, JobParams, JobStatus, Output, RemixChannel
from bot.ops.pauses import OperatorAlert

#: Discord's limit on a message's content.
MESSAGE_LIMIT = 2000
#: Discord's limit on a thread name.
THREAD_NAME_LIMIT = 100
#: How much of a prompt a status or result message echoes.
PROMPT_ECHO_LIMIT = 1500

_MARKDOWN = re.compile(r"([\\*_~`|\[\]])")
_LINE_START = re.compile(r"^([#>\-+])", re.MULTILINE)
_NUMBERED = re.compile(r"^(\d+)\.", re.MULTILINE)
_MENTION_START = re.compile(r"@|<(?=[@#&:/])")
_ZWSP = "\u200b"


def escape_text(text: str) -> str:
    """Escape markdown and defuse mentions (``@everyone``, ``<@id>``, ``<#id>``) in ``text``.

    ``allowed_mentions`` already stops pings; this also stops a prompt from *looking* like a
    mention or restyling the message around it.
    """
    escaped = _MARKDOWN.sub(r"\\\1", text)
    escaped = _NUMBERED.sub(r"\1\\.", _LINE_START.sub(r"\\\1", escaped))
    return _MENTION_START.sub(lambda m: m.group(0) + _ZWSP, escaped)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"


def quote_prompt(prompt: str, limit: int = PROMPT_ECHO_LIMIT) -> str:
    """A prompt made safe to echo: one line per line, shortened, escaped."""
    return escape_text(shorten(" ".join(prompt.split()), limit))


def thread_name(prompt: str) -> str:
    """A thread title from the prompt (thread names are plain text: no escaping needed)."""
    flat = " ".join(prompt.split()) or "Kontext edit"
    return shorten(flat, THREAD_NAME_LIMIT)


def mention_user(user_id: int) -> str:
    return f"<@{user_id}>"


# --- the status message ----------------------------------------------------------------------


def status_queued(prompt: str, position: int | None, eta_seconds: float | None) -> str:
    where = f"position {position}" if position else "waiting"
    about = f", about {format_duration(eta_seconds)}" if eta_seconds is not None else ""
    return f"⏳ **Queued** — {where}{about}\n> {quote_prompt(prompt, 300)}"


def status_running(prompt: str, progress: float | None = None, provider: str = "") -> str:
    pct = f" {round(progress * 100)}%" if progress is not None and 0 < progress < 1 else ""
    via = f" with {provider}" if provider else ""
    return f"🎨 **Editing…**{pct}{via}\n> {quote_prompt(prompt, 300)}"


def status_delayed(prompt: str, reason: str, retry_in: float | None) -> str:
    when = f", trying again in {format_duration(retry_in)}" if retry_in is not None else ""
    return f"⏸️ **Waiting**{when}: {escape_text(reason)}\n> {quote_prompt(prompt, 300)}"


def status_fallback(prompt: str, failed: str, now_using: str) -> str:
    return (
        f"🔁 **Editing…** {failed} is unavailable, trying {now_using}\n"
        f"> {quote_prompt(prompt, 300)}"
    )


def status_done(prompt: str, duration: float | None, where: str | None = None) -> str:
    posted = f" — result {where}" if where else ""
    return f"✅ **Done** in {format_duration(duration)}{posted}\n> {quote_prompt(prompt, 300)}"


def status_failed(prompt: str, reason: str) -> str:
    return f"❌ **Failed:** {escape_text(reason)}\n> {quote_prompt(prompt, 300)}"


def status_cancelled(prompt: str, by_user_id: int | None = None) -> str:
    by = f" by {mention_user(by_user_id)}" if by_user_id else ""
    return f"🚫 **Cancelled**{by}\n> {quote_prompt(prompt, 300)}"


def status_expired(prompt: str) -> str:
    return (
        "⌛ **Expired:** the job waited too long and was dropped. Run the command again.\n"
        f"> {quote_prompt(prompt, 300)}"
    )


def status_paused(prompt: str, reason: str) -> str:
    """A job waiting because its provider is paused: members learn only that the operator
    knows (``reason`` is the engine's wording for the requester, never the operator's)."""
    return f"⏸️ **Paused** — {escape_text(reason)}\n> {quote_prompt(prompt, 300)}"


def status_for_terminal(job: Job, duration: float | None = None) -> str:
    """The final status line for a finished job, from its stored record alone."""
    if job.status is JobStatus.DONE:
        return status_done(job.prompt, duration)
    if job.status is JobStatus.CANCELLED:
        return status_cancelled(job.prompt)
    if job.status is JobStatus.EXPIRED:
        return status_expired(job.prompt)
    return status_failed(job.prompt, job.error_message or "the edit did not succeed.")


# --- the result message ----------------------------------------------------------------------


def result_caption(
    *,
    prompt: str,
    requester_id: int,
    provider_label: str,
    model: str | None,
    seed: int | None,
    duration: float | None,
    notes: Sequence[str] = (),
) -> str:
    """The text above a result: the prompt, who asked, and how it was made."""
    facts = [provider_label]
    if model:
        facts.append(model)
    if seed is not None:
        facts.append(f"seed {seed}")
    facts.append(format_duration(duration))
    lines = [
        f"**{quote_prompt(prompt)}**",
        f"{mention_user(requester_id)} · " + " · ".join(escape_text(f) for f in facts),
        *(f"-# {note}" for note in notes),
    ]
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def info_text(info: JobInfo) -> str:
    """The Info button's ephemeral answer: everything needed to reproduce or trace an output.

    ``info.chain`` lists the (job id, prompt) of the parents, root first, ending with this job.
    """
    job, model, seed, chain, duration = info.job, info.model, info.seed, info.chain, info.duration
    params = job.params
    lines = [
        f"**Job {job.id}** · {job.kind.value} · {job.status.value}",
        f"**Prompt sent:** {quote_prompt(job.prompt, 900)}",
        *_creative_lines(params),
        f"**Provider:** {escape_text(info.provider_label)}"
        + (f" · model {escape_text(model or job.model or '')}" if model or job.model else ""),
        *([f"**Why this provider:** {escape_text(job.route_reason)}"] if job.route_reason else []),
        f"**Seed:** {seed if seed is not None else 'random'}"
        f" · **Aspect ratio:** {params.aspect_ratio.value if params.aspect_ratio else 'auto'}"
        f" · **Format:** {params.output_format.value}",
        f"**References:** {info.reference_count} · **Requested by:** {mention_user(job.user_id)}",
        f"**Duration:** {format_duration(duration)}"
        f" · **Cost:** {_money(job.cost)} · **Credits:** {_number(job.credits)}",
    ]
    if len(chain) > 1:
        steps = [f"{i + 1}. job {jid}: {quote_prompt(p, 80)}" for i, (jid, p) in enumerate(chain)]
        lines.append("**Chain of edits (root first):**")
        lines.extend(steps[-10:])
        if len(steps) > 10:
            lines.insert(len(lines) - 10, f"… {len(steps) - 10} earlier edits")
    return shorten("\n".join(lines), MESSAGE_LIMIT)


#: How Info names where a value came from.
ORIGIN_WORDS: Final = {
    "option": "your option",
    "member": "your preference",
    "server": "server setting",
    "provider": "provider default",
}


def _creative_lines(params: JobParams) -> list[str]:
    """Info's lines about the member's words, the style and where each value came from."""
    lines = []
    if params.request_prompt is not None:
        lines.append(f"**Your words:** {quote_prompt(params.request_prompt, 400)}")
    origins = params.origins
    if not origins and params.style is None and params.num_images == 1:
        return lines

    def where(key: str) -> str:
        origin = origins.get(key)
        return f" ({ORIGIN_WORDS.get(origin, origin)})" if origin else ""

    values = {
        "style": escape_text(params.style or "none"),
        "count": str(params.num_images),
        "guidance": "default" if params.guidance is None else f"{params.guidance:g}",
        "safety_tolerance": "default"
        if params.safety_tolerance is None
        else str(params.safety_tolerance),
    }
    names = {
        "style": "Style",
        "count": "Images",
        "guidance": "Guidance",
        "safety_tolerance": "Safety tolerance",
    }
    shown = (f"**{names[k]}:** {v}{where(k)}" for k, v in values.items())
    lines.append(" · ".join(shown))
    others = [
        f"{k.replace('_', ' ')}: {ORIGIN_WORDS.get(v, v)}"
        for k, v in origins.items()
        if k not in values and k != "ping_when_done"  # shown with its value below
    ]
    ping_from = origins.get("ping_when_done")
    if ping_from is not None:
        state = i18n_render(t("community.ping.on") if params.ping else t("community.ping.off"))
        source = "default" if ping_from == "provider" else ORIGIN_WORDS.get(ping_from, ping_from)
        others.append(f"{i18n_render(t('community.ping.name')).lower()}: {state} ({source})")
    if others:
        lines.append("**Where the rest came from:** " + ", ".join(others))
    return lines


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


# --- /kontext --------------------------------------------------------------------------------


def queue_text(snapshot: QueueSnapshot) -> str:
    """``/kontext queue``: the caller's unfinished jobs and the guild's queue, with positions
    (positions count every server's waiting jobs for the same provider, in claim order)."""
    mine, waiting, guild_queued = snapshot.mine, snapshot.waiting, snapshot.queued
    lines = [f"**This server:** {snapshot.running} running, {guild_queued} waiting."]
    for job, position in waiting:
        where = f"position {position}" if position else job.status.value
        lines.append(f"• {where} — job {job.id} by {mention_user(job.user_id)}")
    if guild_queued > len(waiting):
        lines.append(f"• … and {guild_queued - len(waiting)} more")
    if not mine:
        lines.append("You have no jobs waiting or running.")
    else:
        lines.append("**Your jobs:**")
        for job, position in mine:
            state = f"position {position}" if position else job.status.value
            lines.append(f"• job {job.id} — {state} — {quote_prompt(job.prompt, 80)}")
        lines.append("Cancel one with `/kontext cancel job:<id>`.")
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def usage_text(report: UsageReport) -> str:
    """``/kontext usage``: totals for the server and per user since the report's first day."""
    rows, since_day, user_id = report.rows, report.since_day, report.user_id
    if not rows:
        return f"No usage recorded since {since_day}."
    per_user: dict[int, list[float]] = {}
    for row in rows:
        acc = per_user.setdefault(row.user_id, [0, 0, 0.0, 0.0])
        acc[0] += row.jobs
        acc[1] += row.images
        acc[2] += row.credits
        acc[3] += row.cost
    total = [sum(v[i] for v in per_user.values()) for i in range(4)]
    scope = "Your usage" if user_id is not None else "Server usage"
    lines = [
        f"**{scope} since {since_day}:** {int(total[0])} jobs, {int(total[1])} images, "
        f"{total[2]:g} credits, ${total[3]:.4f}"
    ]
    ranked = sorted(per_user.items(), key=lambda kv: (-kv[1][0], kv[0]))
    for uid, (jobs, images, credits, cost) in ranked[:20]:
        lines.append(
            f"• {mention_user(uid)}: {int(jobs)} jobs, {int(images)} images, "
            f"{credits:g} credits, ${cost:.4f}"
        )
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def settings_text(settings: GuildSettings, default_provider: str) -> str:
    """``/kontext-admin settings``: the guild's settings, one per line."""
    roles = ", ".join(f"<@&{r}>" for r in settings.allowed_role_ids) or "everyone"
    channels = ", ".join(f"<#{c}>" for c in settings.allowed_channel_ids) or "every channel"
    return "\n".join(
        [
            "**Kontext settings for this server**",
            f"• provider: `{settings.provider or default_provider}`"
            + ("" if settings.provider else " (the bot's default)"),
            *(
                [f"• providers to route between (preferred first): {', '.join(settings.providers)}"]
                if settings.providers and not settings.provider
                else []
            ),
            f"• default aspect ratio: {settings.default_aspect_ratio or 'like the first image'}",
            f"• safety tolerance: {settings.safety_tolerance} (1 strict … 6 permissive)",
            f"• NSFW outputs: {settings.nsfw_policy.value}",
            f"• per user at once: {settings.max_user_active} · running at once: "
            f"{settings.max_guild_running} · queue length: {settings.max_guild_queue}",
            f"• daily quota per user: {settings.daily_quota or 'unlimited'}",
            f"• daily credit cap for the server: {settings.daily_credit_cap or 'none'}",
            f"• reroll/edit others' results: {settings.iterate_policy.value}",
            f"• allowed roles: {roles} · allowed channels: {channels}",
            "Change any of these with the options of `/kontext-admin settings`.",
        ]
    )


# --- operating the bot -------------------------------------------------------------------------


def operator_alert_text(alert: OperatorAlert) -> str:
    """What the operator is told when a provider pauses or resumes (pings nobody)."""
    if alert.kind == "resumed":
        return f"✅ **{escape_text(alert.label)} resumed.** {escape_text(alert.message)}"
    return (
        f"⚠️ **{escape_text(alert.label)} is paused for every server.** "
        f"{escape_text(alert.message)}\n"
        f"To resume now, run `/kontext-admin resume provider:{alert.provider}` in any "
        "server the bot is in (the application's owner or team members may)."
    )


def resume_text(label: str, resumed: bool) -> str:
    if resumed:
        return (
            f"{escape_text(label)} is resumed: queued jobs run again. If its account still "
            "fails, the next job pauses it again and the operator is told."
        )
    return f"{escape_text(label)} was not paused."


FORGET_ME_ASK = (
    "This deletes **your prompts and images** in this server: every job you asked for "
    "(your unfinished jobs are cancelled), their results and the images you gave. Messages "
    "already posted stay until someone deletes them. This cannot be undone."
)


def forget_me_done_text(jobs: int, images: int, still_running: int) -> str:
    later = (
        f" {still_running} job(s) were being posted right now and were left alone: run "
        "`/kontext forget-me` again in a minute."
        if still_running
        else ""
    )
    return f"Done: erased the prompts of {jobs} job(s) and deleted {images} image(s).{later}"


# --- the edit history ------------------------------------------------------------------------
#
# Prompts in the chain are shown inside inline code, so Markdown in them is inert; backticks
# (which would end the code span) become ``ˋ`` and every ``@`` gets a zero-width space after
# it, so ``@everyone``, ``<@id>`` and ``<@&id>`` can never ping, whatever the allowed mentions
# say.

PROMPT_CHARS: Final = 120
_PROMPT_LIMITS: Final = (PROMPT_CHARS, 60, 30, 12)
_KIND_LABELS: Final = {
    JobKind.REROLL: "reroll",
    JobKind.REPLY: "reply",
    JobKind.REMIX: "remix",
    JobKind.IMAGINE: "imagined",
}


def escape_prompt(prompt: str, *, limit: int = PROMPT_CHARS) -> str:
    """``prompt`` on one line, at most ``limit`` characters (before escaping), made safe to
    put inside single backticks: no backtick, and no ``@`` that could mention anyone."""
    text = " ".join(prompt.split())
    if len(text) > limit:
        text = text[: max(1, limit - 1)].rstrip() + "…"
    return text.replace("`", "ˋ").replace("@", "@\u200b")


def _line(step: ChainStep, *, is_tip: bool, limit: int) -> str:
    if step.step == 1:
        if step.kind is JobKind.IMAGINE:
            label = "imagined"
        elif step.parent_output_id is not None:
            label = "an earlier image (no longer kept)"
        else:
            label = "original upload"
    else:
        label = _KIND_LABELS.get(step.kind, "")
    prompt = escape_prompt(step.prompt, limit=limit)
    body = f"`{prompt}`" if prompt else "(no prompt)"
    line = f"{step.step}. {label} — {body}" if label else f"{step.step}. {body}"
    if step.branches:
        count = len(step.branches)
        noun = "branch" if count == 1 else "branches"
        line += f"  ↳ {count} {noun} from here" if is_tip else f"  ↳ {count} other {noun}"
    return line


def format_chain(steps: Sequence[ChainStep] | HistoryTree, *, max_chars: int = 1800) -> str:
    """The numbered prompts from the original image to the tip, at most ``max_chars`` long.

    Prompts are shortened first only as far as needed; when the list is still too long its
    middle is replaced by "… N more steps …", keeping the first step and as many of the last
    as fit.
    """
    if isinstance(steps, HistoryTree):
        steps = steps.steps
    if not steps:
        raise ValueError("a history needs at least one step")
    if max_chars < 40:
        raise ValueError(f"max_chars must be at least 40, not {max_chars}")
    last = len(steps) - 1
    for limit in _PROMPT_LIMITS:
        lines = [_line(s, is_tip=i == last, limit=limit) for i, s in enumerate(steps)]
        text = "\n".join(lines)
        if len(text) <= max_chars:
            return text
        if len(lines) > 2:
            for tail in range(len(lines) - 2, 0, -1):
                hidden = len(lines) - 1 - tail
                gap = f"… {hidden} more {'step' if hidden == 1 else 'steps'} …"
                text = "\n".join([lines[0], gap, *lines[-tail:]])
                if len(text) <= max_chars:
                    return text
    # Only reached with a tiny max_chars and a huge chain; stay under the limit regardless.
    return text[: max_chars - 1] + "…"


def history_text(tree: HistoryTree) -> str:
    """The answer above a contact sheet: how many steps, then the numbered chain."""
    count = len(tree.steps)
    noun = "step" if count == 1 else "steps"
    return f"**Edit history** — {count} {noun}, the original first\n{format_chain(tree)}"


def undo_caption(*, prompt: str, step: int, undone_by: int) -> str:
    """The text above an Undo re-post (the one who pressed Undo is named, not pinged)."""
    return shorten(
        f"↩️ **Back to step {step}:** {quote_prompt(prompt, 300)}\n"
        f"{mention_user(undone_by)} undid the last edit · reply to this image to continue "
        "from here",
        MESSAGE_LIMIT,
    )


def gallery_caption(*, prompt: str, requester_id: int, shared_by: int, link: str) -> str:
    return shorten(
        f"⭐ **{quote_prompt(prompt, 300)}**\n"
        f"by {mention_user(requester_id)} · shared by {mention_user(shared_by)} · {link}",
        MESSAGE_LIMIT,
    )


# --- where a result goes, and why not where expected ------------------------------------------

CANNOT_POST_HERE = (
    "I can't post in this channel (I need View Channel and Send Messages), so I could not "
    "deliver the result. Use me in another channel or ask a moderator."
)
NOTE_THREAD_REFUSED = (
    "Discord would not let me start a thread here, so the result will be posted in this channel."
)
NOTE_NO_THREAD_PERMISSION = (
    "I can't create threads in this channel (Create Public Threads permission missing), so the "
    "result will be posted in the channel instead."
)
NOTE_NO_THREADS_HERE = "Threads aren't available here, so the result will be posted here."
NOTE_NSFW_WITHHELD = "An image was flagged as NSFW and withheld (server policy)."
NOTE_NSFW_AGE_RESTRICTED = (
    "An image was flagged as NSFW; it is only posted in age-restricted channels."
)


def picked_text(number: int, created: bool, guild_id: int, output: Output | None) -> str:
    """The private answer to a pick button: where image ``number`` was posted alone."""
    where = ""
    if output is not None and output.message_id is not None and output.channel_id is not None:
        where = f": https://discord.com/channels/{guild_id}/{output.channel_id}/{output.message_id}"
    if created:
        return f"Posted image {number} on its own{where}."
    return f"Image {number} was already picked{where}."


def batch_failed(number: int, count: int, reason: str) -> str:
    """The note under a batch saying that one image of it failed, and why."""
    why = f": {escape_text(shorten(reason, 200))}" if reason else ""
    return f"Image {number} of {count} failed{why}"


NOTE_BATCH = (
    "Press an image's number to post it alone; reply with its number to edit it "
    "(e.g. `2: make it night`)."
)
NOTE_REENCODED = "Re-encoded to fit Discord's upload limit."
NOTE_THREAD_GONE = "The thread was gone or closed to me, so I posted the result here."
NOTE_NO_ATTACH_NO_DM = (
    "I can't attach files in this channel (Attach Files permission missing) and could not DM "
    "you either. Ask a moderator to give me Attach Files."
)


def cancelled_text(job_id: int) -> str:
    return f"Job {job_id} is cancelled."


def sent_by_dm(user_id: int) -> str:
    return (
        f"{mention_user(user_id)} I can't attach files in this channel (Attach Files "
        "permission missing), so I sent your result by DM."
    )


def queued_text(job_id: int, where: str, notes: Sequence[str] = ()) -> str:
    """The private answer to a command that queued a job: where to follow it."""
    return "\n".join([f"Queued as job {job_id}. Follow it {where}.", *notes])


# --- remix channels ---------------------------------------------------------------------------

REMIX_HOWTO = (
    "a message with an image and text there is an edit request, and a reply with text to any "
    "message with an image remixes it. Each new chain gets its own thread."
)


def remix_added_text(
    channel_mention: str, added: RemixChannel, *, restricted: bool, message_content: bool
) -> str:
    lines = [f"{channel_mention} is a remix channel now: {REMIX_HOWTO}"]
    if added.style_suffix:
        lines.append(f"Every prompt there ends with: {quote_prompt(added.style_suffix)}")
    if restricted:
        lines.append(
            "-# Note: `/kontext-admin settings` limits Kontext to other channels, so requests "
            "there will be refused until you allow this channel too."
        )
    if not message_content:
        lines.append(
            "-# This bot runs without the Message Content intent: members must mention it "
            "in their posts (or reply with ping) for it to read them."
        )
    return "\n".join(lines)


def remix_list_text(channels: Sequence[RemixChannel], gallery: int | None) -> str:
    lines = ["**Remix channels**"] if channels else ["No remix channels yet."]
    for found in channels:
        style = f" — style: {quote_prompt(found.style_suffix, 100)}" if found.style_suffix else ""
        lines.append(f"• <#{found.channel_id}>{style}")
    lines.append(f"**Gallery:** <#{gallery}>" if gallery else "**Gallery:** none")
    lines.append("Add one with `/kontext-admin remix add` (Manage Server).")
    return "\n".join(lines)


UNKNOWN_COMPONENT = (
    "That button or form is not one I know (it may be from an old version of the bot). Use the "
    "buttons under a current result, or start again with `/edit`."
)


HELP_TEXT = """\
**Kontext** edits images with FLUX.1 Kontext.
• `/edit prompt image [image2..4] [aspect_ratio] [seed]` — edit up to four images.
• `/imagine prompt [aspect_ratio] [seed]` — make an image from text.
• Right-click a message → **Apps → Edit image** — edit that message's images.
• Under a result: **Reroll** (same inputs, new seed), **Edit** (edit the result further), \
**Info** (prompt, settings, cost, history), **Delete** (requester or moderators).
• Reply to a result (with ping) to edit it further; images you attach are extra references. \
**History** shows the chain as a contact sheet, **Undo** goes back a step, ⭐ or **Share** \
posts it to the server's gallery. Reply to an earlier result to branch.
• `/kontext history [message]` or right-click → **Apps → Edit history** — a result's history
• Remix channels: post an image with text, or reply to any image, to edit it without a \
command (server managers set them up with `/kontext-admin remix`)
• `/kontext queue` — your jobs and this server's queue · `/kontext cancel` — stop a job
• `/kontext usage` — usage and credits · `/kontext forget-me` — erase your prompts and images
• Server managers: `/kontext-admin settings`, `/kontext-admin remix` (Manage Server)
Results are posted in a thread under the status message. Prompts up to 4000 characters."""
