"""Every text the Discord edge words, rendered from sample values in one language.

Used by the wording tests (every text renders in every language, English unchanged) and by
``python -m tests.bot.render_samples`` which prints a few representative texts per language.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from bot.creative_models import BlockRule, CreativeSettings, MemberPrefs, Style, StyleList, Tier
from bot.discord import creative_text, render
from bot.edits import JobInfo, QueueSnapshot, UsageReport
from bot.history import ChainStep, HistoryTree
from bot.i18n import LANGUAGES, t
from bot.models import (
    AspectRatio,
    GuildSettings,
    Job,
    JobKind,
    JobParams,
    JobStatus,
    Output,
    RemixChannel,
    UsageRow,
)
from bot.ops.pauses import OperatorAlert


def job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "guild_id": 1,
        "channel_id": 2,
        "thread_id": None,
        "user_id": 100,
        "kind": JobKind.EDIT,
        "prompt": "a red hat on the cat",
        "params": JobParams(seed=9),
        "provider": "fal",
        "model": None,
        "parent_output_id": None,
        "reply_to_message_id": None,
        "status": JobStatus.DONE,
        "created_at": 0.0,
        "updated_at": 0.0,
    }
    values.update(fields)
    return Job.model_validate(values)


def _call(fn: Callable[..., str], language: str, *args: Any, **kwargs: Any) -> str:
    if "language" in inspect.signature(fn).parameters:
        kwargs["language"] = language
    return fn(*args, **kwargs)


def _text(value: Any, language: str) -> str:
    """A constant: a plain string (before the catalog) or a catalog Text."""
    if isinstance(value, str):
        return value
    from bot.i18n import render as word

    return word(value, language)


def _step(step: int, kind: JobKind, **fields: Any) -> ChainStep:
    return ChainStep(
        step=step,
        prompt=f"prompt {step}",
        job_id=step,
        output_id=step,
        kind=kind,
        provider="fal",
        seed=None,
        created_at=0.0,
        **fields,
    )


def info_sample() -> JobInfo:
    params = JobParams(
        seed=9,
        aspect_ratio=AspectRatio("16:9"),
        num_images=4,
        style="watercolor",
        request_prompt="a cat",
        guidance=3.5,
        origins={
            "style": "option",
            "count": "member",
            "guidance": "server",
            "provider": "provider",
            "ping_when_done": "member",
        },
    )
    return JobInfo(
        job=job(params=params, route_reason="fastest now", cost=0.04, credits=4),
        provider_label="fal.ai",
        model="flux-kontext-pro",
        seed=9,
        duration=12.4,
        chain=((5, "a cat"), (6, "make it blue"), (7, "a red hat on the cat")),
        reference_count=2,
    )


def samples(language: str) -> dict[str, str]:
    """Name → text for every wording of the edge, in ``language``."""
    c = _call
    out: dict[str, str] = {}
    prompt = "a red hat on the cat"
    out["thread_name"] = c(render.thread_name, language, prompt)
    out["thread_name_empty"] = c(render.thread_name, language, "  ")
    out["status_queued"] = c(render.status_queued, language, prompt, 3, 95.0)
    out["status_queued_waiting"] = c(render.status_queued, language, prompt, None, None)
    out["status_running"] = c(render.status_running, language, prompt, 0.42, "fal.ai")
    out["status_running_plain"] = c(render.status_running, language, prompt)
    out["status_delayed"] = c(render.status_delayed, language, prompt, "busy", 30.0)
    out["status_delayed_plain"] = c(render.status_delayed, language, prompt, "busy", None)
    out["status_fallback"] = c(render.status_fallback, language, prompt, "fal.ai", "BFL")
    out["status_done"] = c(render.status_done, language, prompt, 12.0, "in <#5>")
    out["status_done_plain"] = c(render.status_done, language, prompt, 12.0)
    out["status_failed"] = c(render.status_failed, language, prompt, "it broke")
    out["status_cancelled"] = c(render.status_cancelled, language, prompt, 100)
    out["status_cancelled_plain"] = c(render.status_cancelled, language, prompt)
    out["status_expired"] = c(render.status_expired, language, prompt)
    out["status_paused"] = c(render.status_paused, language, prompt, "the service is paused")
    for status in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.EXPIRED, JobStatus.FAILED):
        out[f"terminal_{status.value}"] = c(
            render.status_for_terminal, language, job(status=status), 3.0
        )
    notes = [
        render.NOTE_BATCH,
        render.NOTE_REENCODED,
        render.NOTE_THREAD_GONE,
        render.NOTE_NSFW_WITHHELD,
        render.NOTE_NSFW_AGE_RESTRICTED,
        render.NOTE_NO_ATTACH_NO_DM,
    ]
    out["result_caption"] = c(
        render.result_caption,
        language,
        prompt=prompt,
        requester_id=100,
        provider_label="fal.ai",
        model="flux-kontext-pro",
        seed=42,
        duration=12.0,
        notes=notes,
    )
    out["result_caption_plain"] = c(
        render.result_caption,
        language,
        prompt=prompt,
        requester_id=100,
        provider_label="fal.ai",
        model=None,
        seed=None,
        duration=None,
    )
    out["info"] = c(render.info_text, language, info_sample())
    out["info_plain"] = c(
        render.info_text,
        language,
        JobInfo(
            job=job(),
            provider_label="fal.ai",
            model=None,
            seed=None,
            duration=None,
            chain=(),
            reference_count=1,
        ),
    )
    long_chain = tuple((i, f"step {i}") for i in range(1, 14))
    out["info_long_chain"] = c(
        render.info_text,
        language,
        JobInfo(
            job=job(params=JobParams(origins={"aspect_ratio": "member", "other": "x"})),
            provider_label="fal.ai",
            model=None,
            seed=3,
            duration=1.0,
            chain=long_chain,
            reference_count=0,
        ),
    )
    queued = job(status=JobStatus.QUEUED)
    running = job(id=8, status=JobStatus.RUNNING)
    out["queue"] = c(
        render.queue_text,
        language,
        QueueSnapshot(
            mine=((queued, 2), (running, None)), waiting=((queued, 2),), queued=5, running=1
        ),
    )
    out["queue_empty"] = c(
        render.queue_text, language, QueueSnapshot(mine=(), waiting=(), queued=0, running=0)
    )
    rows = (
        UsageRow(
            guild_id=1, user_id=100, day="2026-01-01", jobs=3, images=4, credits=2.5, cost=0.1
        ),
        UsageRow(guild_id=1, user_id=101, day="2026-01-02", jobs=1, images=1, credits=1, cost=0.02),
    )
    out["usage"] = c(render.usage_text, language, UsageReport(rows, "2026-01-01", None))
    out["usage_mine"] = c(render.usage_text, language, UsageReport(rows[:1], "2026-01-01", 100))
    out["usage_none"] = c(render.usage_text, language, UsageReport((), "2026-01-01", None))
    out["settings"] = c(render.settings_text, language, GuildSettings.defaults(1), "fal")
    configured = GuildSettings(
        guild_id=1,
        provider=None,
        providers=("fal", "bfl"),
        default_aspect_ratio=AspectRatio("1:1"),
        daily_quota=0,
        daily_credit_cap=50,
        allowed_role_ids=(5,),
        allowed_channel_ids=(6, 7),
    )
    out["settings_configured"] = c(render.settings_text, language, configured, "fal")
    pinned = GuildSettings(guild_id=1, provider="bfl")
    out["settings_pinned"] = c(render.settings_text, language, pinned, "fal")
    alert = OperatorAlert(
        kind="paused", provider="fal", label="fal.ai", code="auth", message="Key refused.", at=0
    )
    out["alert_paused"] = c(render.operator_alert_text, language, alert)
    resumed = alert.model_copy(update={"kind": "resumed", "message": "Back."})
    out["alert_resumed"] = c(render.operator_alert_text, language, resumed)
    out["resume_yes"] = c(render.resume_text, language, "fal.ai", True)
    out["resume_no"] = c(render.resume_text, language, "fal.ai", False)
    out["forget_ask"] = _text(getattr(render, "FORGET_ME_ASK", None) or "", language)
    out["forget_done"] = c(render.forget_me_done_text, language, 3, 5, 0)
    out["forget_done_later"] = c(render.forget_me_done_text, language, 1, 1, 2)
    tree = HistoryTree(
        steps=(
            _step(1, JobKind.EDIT),
            _step(2, JobKind.REROLL, branches=(9,)),
            _step(3, JobKind.REPLY, branches=(10, 11)),
        )
    )
    out["history"] = c(render.history_text, language, tree)
    imagined = HistoryTree(steps=(_step(1, JobKind.IMAGINE, branches=(4,)),))
    out["history_imagined"] = c(render.history_text, language, imagined)
    gone = HistoryTree(steps=(_step(1, JobKind.EDIT, parent_output_id=3), _step(2, JobKind.REMIX)))
    out["history_gone_root"] = c(render.history_text, language, gone)
    many = HistoryTree(steps=tuple(_step(i, JobKind.REPLY) for i in range(1, 80)))
    out["history_long"] = c(render.format_chain, language, many, max_chars=300)
    out["undo"] = c(render.undo_caption, language, prompt=prompt, step=2, undone_by=100)
    out["gallery"] = c(
        render.gallery_caption, language, prompt=prompt, requester_id=100, shared_by=101, link="L"
    )
    output = Output.model_validate(
        {
            "id": 1,
            "job_id": 7,
            "index": 1,
            "content_hash": "x",
            "channel_id": 2,
            "message_id": 3,
            "size": 10,
            "format": "png",
            "width": 8,
            "height": 8,
            "created_at": 0.0,
        }
    )
    out["picked"] = c(render.picked_text, language, 2, True, 1, output)
    out["picked_again"] = c(render.picked_text, language, 2, False, 1, None)
    out["batch_failed"] = c(render.batch_failed, language, 3, 4, "too bright")
    out["batch_failed_plain"] = c(render.batch_failed, language, 3, 4, "")
    out["cancelled"] = c(render.cancelled_text, language, 7)
    out["sent_by_dm"] = c(render.sent_by_dm, language, 100)
    where = t("discord.reply.where_thread", thread="<#5>")
    out["queued"] = c(render.queued_text, language, 7, where, [render.NOTE_THREAD_REFUSED])
    for name in (
        "CANNOT_POST_HERE",
        "NOTE_THREAD_REFUSED",
        "NOTE_NO_THREAD_PERMISSION",
        "NOTE_NO_THREADS_HERE",
        "UNKNOWN_COMPONENT",
        "HELP_TEXT",
        "REMIX_HOWTO",
    ):
        out[name] = _text(getattr(render, name), language)
    remix = RemixChannel(guild_id=1, channel_id=5, style_suffix="in watercolor")
    out["remix_added"] = c(
        render.remix_added_text, language, "<#5>", remix, restricted=True, message_content=False
    )
    plain_remix = RemixChannel(guild_id=1, channel_id=5)
    out["remix_added_plain"] = c(
        render.remix_added_text,
        language,
        "<#5>",
        plain_remix,
        restricted=False,
        message_content=True,
    )
    out["remix_list"] = c(render.remix_list_text, language, [remix, plain_remix], 9)
    out["remix_list_empty"] = c(render.remix_list_text, language, [], None)
    # creative
    prefs = MemberPrefs(aspect_ratio=AspectRatio("1:1"), count=2, guidance=2.5)
    out["prefs"] = c(creative_text.prefs_text, language, prefs)
    out["prefs_changed"] = c(creative_text.prefs_text, language, MemberPrefs(), changed=True)
    styles = StyleList(
        server=(Style(name="mine", prompt="in my style"),),
        presets=(Style(name="watercolor", prompt="as watercolor"),),
    )
    out["styles"] = c(creative_text.styles_text, language, styles)
    out["styles_none"] = c(creative_text.styles_text, language, StyleList(server=(), presets=()))
    out["style_added"] = c(creative_text.style_added_text, language, "mine")
    out["style_removed"] = c(creative_text.style_removed_text, language, "mine")
    creative = CreativeSettings(
        guild_id=1,
        blocklist=(BlockRule(pattern="bad"),),
        tiers=(Tier(role_id=5, daily_quota=0),),
        members_choose_provider=True,
    )
    out["creative"] = c(creative_text.creative_settings_text, language, creative)
    out["creative_changed"] = c(
        creative_text.creative_settings_text,
        language,
        CreativeSettings(guild_id=1, max_safety_tolerance=3, default_guidance=2.0),
        changed=True,
    )
    rules = (BlockRule(pattern="bad"), BlockRule(pattern="b.d", regex=True))
    out["blocklist"] = c(creative_text.blocklist_text, language, rules)
    out["blocklist_empty"] = c(creative_text.blocklist_text, language, ())
    out["block_added"] = c(creative_text.block_added_text, language, rules[0])
    out["block_added_regex"] = c(creative_text.block_added_text, language, rules[1])
    out["block_removed"] = c(creative_text.block_removed_text, language, "bad", True)
    out["block_not_removed"] = c(creative_text.block_removed_text, language, "bad", False)
    tiers = (Tier(role_id=5, daily_quota=0, max_user_active=4), Tier(role_id=6))
    out["tiers"] = c(creative_text.tiers_text, language, tiers)
    out["tiers_none"] = c(creative_text.tiers_text, language, ())
    out["tier_set"] = c(creative_text.tier_set_text, language, tiers[0])
    out["tier_removed"] = c(creative_text.tier_removed_text, language, 5, True)
    out["tier_not_removed"] = c(creative_text.tier_removed_text, language, 5, False)
    return out


def main() -> None:
    """``--note``: the representative texts as Markdown; else every text as JSON."""
    import json

    args = sys.argv[1:]
    if args[:1] == ["--note"]:
        languages = args[1:] or list(LANGUAGES)
        sys.stdout.write("\n\n".join(note(lang) for lang in languages) + "\n")
        return
    languages = args or list(LANGUAGES)
    json.dump({lang: samples(lang) for lang in languages}, sys.stdout, ensure_ascii=False, indent=1)


async def _result_buttons(language: str) -> list[list[str]]:
    """The button labels under a batch of four, row by row, as the delivery builds them."""
    from bot.discord.views import ButtonCatalog
    from cogs import batches, edit, gallery, history, results

    catalog = ButtonCatalog()
    for module in (results, batches, history):
        catalog.register(*module.BUTTONS)
    catalog.register(edit.EditButton, gallery.ShareButton)
    view = catalog.result_view(7, share=True, picks=(1, 2, 3, 4), language=language)
    rows: dict[int, list[str]] = {}
    for item in view.children:
        button: Any = getattr(item, "item", item)
        rows.setdefault(button.row or 0, []).append(f"{button.emoji or ''} {button.label}".strip())
    return [rows[row] for row in sorted(rows)]


def note(language: str) -> str:
    """Markdown: a batch result with its buttons, two status messages and an Info."""
    import asyncio

    prompt = "a red hat on the cat"
    batch = render.result_caption(
        prompt=prompt,
        requester_id=100,
        provider_label="fal.ai",
        model="flux-kontext-pro",
        seed=42,
        duration=18.0,
        notes=[render.NOTE_BATCH],
        language=language,
    )
    buttons = asyncio.run(_result_buttons(language))
    parts = [
        f"## {language}",
        "### Batch result (count 4)",
        "```\n" + batch + "\n```",
        "Buttons:\n" + "\n".join("- " + " | ".join(row) for row in buttons),
        "### Status: queued",
        "```\n" + render.status_queued(prompt, 3, 95.0, language) + "\n```",
        "### Status: running",
        "```\n" + render.status_running(prompt, 0.42, "fal.ai", language) + "\n```",
        "### Info",
        "```\n" + render.info_text(info_sample(), language) + "\n```",
    ]
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
