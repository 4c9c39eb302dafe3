"""The wording of Info, ``/kontext queue``, ``/kontext usage``, ``/kontext-admin settings``
and the operator's texts (pauses, resume, forget-me), from the message catalog."""

from __future__ import annotations

from typing import Final

from bot.durations import format_duration
from bot.edits import JobInfo, QueueSnapshot, UsageReport
from bot.i18n import DEFAULT_LANGUAGE, Text, t
from bot.i18n import render as word
from bot.models import LANGUAGE_AUTO, GuildSettings, Job, JobParams, JobStatus
from bot.ops.pauses import OperatorAlert

from .escaping import MESSAGE_LIMIT, escape_text, mention_user, quote_prompt, shorten


def state_name(status: JobStatus, language: str = DEFAULT_LANGUAGE) -> str:
    """A job's state as a word ("queued", "running", ...)."""
    return word(t(f"discord.status.state_{status.value}"), language)


def info_text(info: JobInfo, language: str = DEFAULT_LANGUAGE) -> str:
    """The Info button's ephemeral answer: everything needed to reproduce or trace an output.

    ``info.chain`` lists the (job id, prompt) of the parents, root first, ending with this job.
    """
    job, model, seed, chain, duration = info.job, info.model, info.seed, info.chain, info.duration
    params = job.params

    def say(key: Text) -> str:
        return word(key, language)

    unknown = say(t("discord.info.unknown"))
    why = word(job.route_reason_text(), language)
    shown_model = model or job.model
    lines = [
        say(
            t(
                "discord.info.head",
                job=job.id,
                kind=t(f"discord.info.kind_{job.kind.value}"),
                status=state_name(job.status, language),
            )
        ),
        say(t("discord.info.prompt", prompt=quote_prompt(job.prompt, 900))),
        *_creative_lines(params, language),
        say(t("discord.info.provider", provider=escape_text(info.provider_label)))
        + (say(t("discord.info.model", model=escape_text(shown_model))) if shown_model else ""),
        *([say(t("discord.info.why", reason=escape_text(why)))] if why else []),
        say(
            t(
                "discord.info.facts",
                seed=seed if seed is not None else t("discord.info.random"),
                ratio=params.aspect_ratio.value if params.aspect_ratio else t("discord.info.auto"),
                format=params.output_format.value,
            )
        ),
        say(t("discord.info.refs", count=info.reference_count, user=mention_user(job.user_id))),
        say(
            t(
                "discord.info.cost",
                duration=format_duration(duration, language=language),
                cost=unknown if job.cost is None else f"${job.cost:.4f}",
                credits=unknown if job.credits is None else f"{job.credits:g}",
            )
        ),
    ]
    if len(chain) > 1:
        steps = [
            say(t("discord.info.chain_step", number=i + 1, job=jid, prompt=quote_prompt(p, 80)))
            for i, (jid, p) in enumerate(chain)
        ]
        lines.append(say(t("discord.info.chain_head")))
        lines.extend(steps[-10:])
        if len(steps) > 10:
            lines.insert(len(lines) - 10, say(t("discord.info.earlier", count=len(steps) - 10)))
    return shorten("\n".join(lines), MESSAGE_LIMIT)


#: The origins Info names (where a value came from).
ORIGINS: Final = ("option", "member", "server", "provider")


def origin_word(origin: str, language: str = DEFAULT_LANGUAGE) -> str:
    """How Info names where a value came from (an unknown origin is shown as it is)."""
    return word(t(f"discord.info.origin_{origin}"), language) if origin in ORIGINS else origin


#: The other values Info says the origin of, by name.
_FIELDS: Final = {
    "provider": t("discord.info.field_provider"),
    "aspect_ratio": t("discord.info.field_aspect_ratio"),
    "output_format": t("discord.info.field_output_format"),
}


def _field(name: str) -> Text | str:
    return _FIELDS.get(name) or name.replace("_", " ")


def _creative_lines(params: JobParams, language: str) -> list[str]:
    """Info's lines about the member's words, the style and where each value came from."""
    lines = []
    if params.request_prompt is not None:
        words = quote_prompt(params.request_prompt, 400)
        lines.append(word(t("discord.info.your_words", words=words), language))
    origins = params.origins
    if not origins and params.style is None and params.num_images == 1:
        return lines

    def where(key: str) -> str:
        origin = origins.get(key)
        if not origin:
            return ""
        return word(t("discord.info.origin", origin=origin_word(origin, language)), language)

    default = t("discord.info.default")
    values: dict[str, Text | str] = {
        "style": escape_text(params.style) if params.style else t("discord.info.none"),
        "count": str(params.num_images),
        "guidance": default if params.guidance is None else f"{params.guidance:g}",
        "safety_tolerance": default
        if params.safety_tolerance is None
        else str(params.safety_tolerance),
    }
    shown = (
        word(
            t("discord.info.value", name=t(f"discord.info.name_{k}"), value=v, origin=where(k)),
            language,
        )
        for k, v in values.items()
    )
    lines.append(" · ".join(shown))
    others = [
        word(
            t("discord.info.rest_item", name=_field(k), origin=origin_word(v, language)),
            language,
        )
        for k, v in origins.items()
        if k not in values and k != "ping_when_done"  # shown with its value below
    ]
    ping_from = origins.get("ping_when_done")
    if ping_from is not None:
        state = t("community.ping.on") if params.ping else t("community.ping.off")
        source = default if ping_from == "provider" else origin_word(ping_from, language)
        item = t(
            "discord.info.rest_item", name=t("discord.info.field_ping_when_done"), origin=state
        )
        others.append(
            word(item, language) + word(t("discord.info.origin", origin=source), language)
        )
    if others:
        joined = word(t("discord.info.list_separator"), language).join(others)
        lines.append(word(t("discord.info.rest", list=joined), language))
    return lines


# --- /kontext --------------------------------------------------------------------------------


def queue_text(snapshot: QueueSnapshot, language: str = DEFAULT_LANGUAGE) -> str:
    """``/kontext queue``: the caller's unfinished jobs and the guild's queue, with positions
    (positions count every server's waiting jobs for the same provider, in claim order)."""
    mine, waiting, guild_queued = snapshot.mine, snapshot.waiting, snapshot.queued

    def say(key: Text) -> str:
        return word(key, language)

    def state(job: Job, position: int | None) -> Text | str:
        if position:
            return t("discord.status.position", position=position)
        return state_name(job.status, language)

    lines = [say(t("discord.queue.server", running=snapshot.running, waiting=guild_queued))]
    for job, position in waiting:
        where = state(job, position)
        lines.append(
            say(
                t(
                    "discord.queue.waiting_line",
                    where=where,
                    job=job.id,
                    user=mention_user(job.user_id),
                )
            )
        )
    if guild_queued > len(waiting):
        lines.append(say(t("discord.queue.more", count=guild_queued - len(waiting))))
    if not mine:
        lines.append(say(t("discord.queue.none_mine")))
    else:
        lines.append(say(t("discord.queue.mine_head")))
        for job, position in mine:
            prompt = quote_prompt(job.prompt, 80)
            lines.append(
                say(
                    t(
                        "discord.queue.mine_line",
                        job=job.id,
                        state=state(job, position),
                        prompt=prompt,
                    )
                )
            )
        lines.append(say(t("discord.queue.cancel_hint")))
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def usage_text(report: UsageReport, language: str = DEFAULT_LANGUAGE) -> str:
    """``/kontext usage``: totals for the server and per user since the report's first day."""
    rows, since_day, user_id = report.rows, report.since_day, report.user_id
    if not rows:
        return word(t("discord.usage.none", since=since_day), language)
    per_user: dict[int, list[float]] = {}
    for row in rows:
        acc = per_user.setdefault(row.user_id, [0, 0, 0.0, 0.0])
        acc[0] += row.jobs
        acc[1] += row.images
        acc[2] += row.credits
        acc[3] += row.cost
    total = [sum(v[i] for v in per_user.values()) for i in range(4)]
    scope = t("discord.usage.yours") if user_id is not None else t("discord.usage.server")
    lines = [
        word(
            t(
                "discord.usage.head",
                scope=scope,
                since=since_day,
                jobs=t("discord.usage.jobs", count=int(total[0])),
                images=t("discord.usage.images", count=int(total[1])),
                credits=f"{total[2]:g}",
                cost=f"{total[3]:.4f}",
            ),
            language,
        )
    ]
    ranked = sorted(per_user.items(), key=lambda kv: (-kv[1][0], kv[0]))
    for uid, (jobs, images, credits, cost) in ranked[:20]:
        line = t(
            "discord.usage.line",
            user=mention_user(uid),
            jobs=t("discord.usage.jobs", count=int(jobs)),
            images=t("discord.usage.images", count=int(images)),
            credits=f"{credits:g}",
            cost=f"{cost:.4f}",
        )
        lines.append(word(line, language))
    return shorten("\n".join(lines), MESSAGE_LIMIT)


def settings_text(
    settings: GuildSettings, default_provider: str, language: str = DEFAULT_LANGUAGE
) -> str:
    """``/kontext-admin settings``: the guild's settings, one per line."""

    def say(key: Text) -> str:
        return word(key, language)

    roles = ", ".join(f"<@&{r}>" for r in settings.allowed_role_ids) or say(
        t("discord.settings.everyone")
    )
    channels = ", ".join(f"<#{c}>" for c in settings.allowed_channel_ids) or say(
        t("discord.settings.every_channel")
    )
    routed = settings.providers and not settings.provider
    pinned = settings.language if settings.language != LANGUAGE_AUTO else None
    return "\n".join(
        [
            say(t("discord.settings.head")),
            say(
                t(
                    "discord.settings.provider",
                    provider=settings.provider or default_provider,
                    default="" if settings.provider else t("discord.settings.provider_default"),
                )
            ),
            *(
                [say(t("discord.settings.providers", providers=", ".join(settings.providers)))]
                if routed
                else []
            ),
            say(
                t(
                    "discord.settings.aspect_ratio",
                    ratio=settings.default_aspect_ratio or t("discord.settings.like_first"),
                )
            ),
            say(t("discord.settings.safety", value=settings.safety_tolerance)),
            say(
                t(
                    "discord.settings.nsfw",
                    policy=t(f"discord.settings.policy_{settings.nsfw_policy.value}"),
                )
            ),
            say(
                t(
                    "discord.settings.limits",
                    per_user=settings.max_user_active,
                    running=settings.max_guild_running,
                    queue=settings.max_guild_queue,
                )
            ),
            say(
                t(
                    "discord.settings.quota",
                    quota=settings.daily_quota or t("discord.settings.unlimited"),
                )
            ),
            say(
                t(
                    "discord.settings.credit_cap",
                    cap=settings.daily_credit_cap or t("discord.settings.no_cap"),
                )
            ),
            say(
                t(
                    "discord.settings.iterate",
                    policy=t(f"discord.settings.policy_{settings.iterate_policy.value}"),
                )
            ),
            say(t("discord.settings.allowed", roles=roles, channels=channels)),
            say(
                t(
                    "discord.settings.language",
                    language=_language_name(pinned),
                )
            ),
            say(t("discord.settings.change_hint")),
        ]
    )


def _language_name(pinned: str | None) -> Text | str:
    """A pinned language by its own name ("Deutsch (de)"), or what "auto" means."""
    if pinned is None:
        return t("discord.settings.language_auto")
    return f"{word(t('language.name'), pinned)} ({pinned})"


# --- operating the bot -------------------------------------------------------------------------


def operator_alert_text(alert: OperatorAlert, language: str = DEFAULT_LANGUAGE) -> str:
    """What the operator is told when a provider pauses or resumes (pings nobody)."""
    label, message = escape_text(alert.label), escape_text(alert.message)
    if alert.kind == "resumed":
        return word(t("discord.ops.alert_resumed", label=label, message=message), language)
    text = t("discord.ops.alert_paused", label=label, message=message, provider=alert.provider)
    return word(text, language)


def resume_text(label: str, resumed: bool, language: str = DEFAULT_LANGUAGE) -> str:
    if resumed:
        return word(t("discord.ops.resumed", label=escape_text(label)), language)
    return word(t("discord.ops.not_paused", label=escape_text(label)), language)


FORGET_ME_ASK: Final = t("discord.ops.forget_ask")


def forget_me_done_text(
    jobs: int, images: int, still_running: int, language: str = DEFAULT_LANGUAGE
) -> str:
    later = t("discord.ops.forget_later", count=still_running) if still_running else ""
    text = t(
        "discord.ops.forget_done",
        jobs=t("discord.ops.forget_jobs", count=jobs),
        images=t("discord.ops.forget_images", count=images),
        later=later,
    )
    return word(text, language)
