"""The creative service: styles, member preferences, a server's creative and community
settings, resolving a request's values, and picking one image of a batch.

Plain values in and out (no discord import): the Discord edge and the CLI call these methods
and word the results. Every refusal is a :class:`~bot.errors.KontextError` saying what was
wrong and what to do; nothing is written when a method refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass
from typing import Any, TypeVar

import regex
from pydantic import BaseModel, ValidationError

from bot.access import check_can_configure, check_can_iterate
from bot.blocklist import blocked, make_rule, normalise
from bot.clock import Clock
from bot.creative_models import (
    MAX_BLOCK_RULES,
    MAX_GUILD_STYLES,
    MAX_STYLE_PROMPT,
    MAX_TIERS,
    BatchReport,
    BlockRule,
    CreativeSettings,
    MemberPrefs,
    Origin,
    PickResult,
    RequestOptions,
    Resolved,
    Style,
    StyleChoice,
    StyleList,
    Tier,
)
from bot.i18n import t
from bot.jobs.batch import batch_report
from bot.jobs.errors import JobNotFound
from bot.jobs.requests import EditRequest, ReferenceInput
from bot.models import GuildSettings, JobKind, JobStatus, NewJob
from bot.providers.base import Capabilities
from bot.providers.checks import check_knob
from storage.sql import Repository

from .resolve import Context, OptionRefused, max_count, ping_when_done, resolve
from .styles import PRESETS, StyleError, check_style_name, search_styles, style_name

PREF_FIELDS = frozenset(MemberPrefs.model_fields)
SETTING_FIELDS = frozenset(
    {
        "default_count",
        "max_count",
        "default_style",
        "default_guidance",
        "max_safety_tolerance",
        "members_choose_provider",
        "ping_when_done",
    }
)


_NUMBERED = regex.compile(r"^\s*#?(\d)\s*[:.)\-\u2013\u2014]\s*(.*)$", regex.DOTALL)


def reply_number(text: str, count: int) -> tuple[int | None, str]:
    """A reply to a batch that starts with an image's number ("2: make it night") as
    ``(2, "make it night")``; ``(None, text)`` when it starts with no number from 1 to
    ``count``."""
    match = _NUMBERED.match(text)
    if match is None or not 1 <= int(match[1]) <= count:
        return None, text
    return int(match[1]), match[2].strip()


M = TypeVar("M", bound=BaseModel)


def _invalid(err: ValidationError, what: str) -> OptionRefused:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or what
    if what == "preference":
        message = t("errors.creative.invalid.preference", field=field, error=first["msg"])
    elif what == "setting":
        message = t("errors.creative.invalid.setting", field=field, error=first["msg"])
    else:
        message = t("errors.creative.invalid.tier", field=field, error=first["msg"])
    return OptionRefused(message, option=field)


def _validated(model: type[M], values: dict[str, Any], *, style_key: str, what: str) -> M:
    """``values`` as a ``model``, the style under ``style_key`` named as stored; a refusal
    names the first value that is not valid."""
    if isinstance(values.get(style_key), str):
        values[style_key] = style_name(str(values[style_key])) or None
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise _invalid(err, what) from err


@dataclass(eq=False)
class CreativeService:
    repo: Repository
    clock: Clock
    _: KW_ONLY
    catalog: Mapping[str, Capabilities]  # the providers configured in this deployment
    default_provider: str

    def __post_init__(self) -> None:
        self.catalog = dict(self.catalog)  # a copy: later changes to the caller's do not leak

    # --- styles -------------------------------------------------------------------------------
    async def styles(self, guild_id: int) -> dict[str, Style]:
        """Every style usable in the server by name: its own and the presets."""
        own = {s.name: s for s in await self.repo.list_guild_styles(guild_id)}
        return {**own, **PRESETS}

    async def list_styles(self, guild_id: int) -> StyleList:
        own = await self.repo.list_guild_styles(guild_id)
        return StyleList(server=tuple(own), presets=tuple(PRESETS.values()))

    async def search_styles(self, guild_id: int, query: str) -> list[StyleChoice]:
        """Autocomplete: up to 25 matches, the server's own and the presets."""
        return search_styles(query, await self.repo.list_guild_styles(guild_id))

    async def add_style(
        self, guild_id: int, name: str, prompt: str, *, by_user_id: int, manage_guild: bool
    ) -> Style:
        check_can_configure(manage_guild=manage_guild)
        clean = check_style_name(name)
        text = prompt.strip()
        if not text:
            raise StyleError(t("errors.style.no_prompt"))
        if len(text) > MAX_STYLE_PROMPT:
            raise StyleError(
                t("errors.style.prompt_too_long", length=len(text), limit=MAX_STYLE_PROMPT)
            )
        if text.count("{prompt}") > 1:
            raise StyleError(t("errors.style.prompt_twice"))
        creative = await self.repo.get_creative_settings(guild_id)
        if blocked(text, creative.blocklist):
            raise StyleError(t("errors.style.blocked_words"))
        existing = await self.repo.list_guild_styles(guild_id)
        if len(existing) >= MAX_GUILD_STYLES:
            raise StyleError(t("errors.style.too_many", count=MAX_GUILD_STYLES))
        style = Style(name=clean, prompt=text)
        if not await self.repo.add_guild_style(
            guild_id, clean, text, created_by=by_user_id, now=self.clock.now()
        ):
            raise StyleError(t("errors.style.exists", name=clean))
        return style

    async def remove_style(self, guild_id: int, name: str, *, manage_guild: bool) -> None:
        check_can_configure(manage_guild=manage_guild)
        clean = style_name(name)
        if clean in PRESETS:
            raise StyleError(t("errors.style.built_in", name=clean))
        if not await self.repo.remove_guild_style(guild_id, clean):
            raise StyleError(t("errors.style.no_such", name=clean))

    # --- member preferences -------------------------------------------------------------------
    async def get_prefs(self, guild_id: int, user_id: int) -> MemberPrefs:
        return await self.repo.get_member_prefs(guild_id, user_id)

    async def ping_for(self, guild_id: int, user_id: int) -> bool:
        """Whether a result of this member's pings them here (preference > server > on)."""
        prefs = await self.repo.get_member_prefs(guild_id, user_id)
        ping, _origin = ping_when_done(prefs, await self.repo.get_creative_settings(guild_id))
        return ping

    async def set_prefs(
        self,
        guild_id: int,
        user_id: int,
        changes: Mapping[str, object],
        *,
        clear: Iterable[str] = (),
        role_ids: tuple[int, ...] = (),
    ) -> MemberPrefs:
        """Change some preferences (``clear``: forget those). Validated against the server's
        rules and the provider the member would use; nothing is saved on a refusal."""
        names = set(changes) | set(clear)
        unknown = names - PREF_FIELDS
        if unknown:
            raise OptionRefused(
                t("errors.creative.unknown_preference", names=", ".join(sorted(unknown))),
                option=sorted(unknown)[0],
            )
        current = await self.repo.get_member_prefs(guild_id, user_id)
        values = current.model_dump()
        values.update(dict.fromkeys(clear))
        values.update(changes)
        prefs = _validated(MemberPrefs, values, style_key="style", what="preference")
        ctx = await self._context(guild_id, user_id, prefs, role_ids)
        self._check_prefs(prefs, changes, ctx)
        await self.repo.save_member_prefs(guild_id, user_id, prefs, now=self.clock.now())
        return prefs

    def _check_prefs(self, prefs: MemberPrefs, changes: Mapping[str, object], ctx: Context) -> None:
        if prefs.count is not None and "count" in changes and prefs.count > max_count(ctx):
            raise OptionRefused(
                t("errors.creative.count_pref", count=max_count(ctx)),
                option="count",
            )
        if prefs.provider is not None and "provider" in changes:
            if not ctx.creative.members_choose_provider:
                raise OptionRefused(
                    t("errors.creative.no_provider_choice_pref"),
                    option="provider",
                )
            if prefs.provider not in self.catalog:
                available = ", ".join(sorted(self.catalog)) or t("errors.creative.none")
                raise OptionRefused(
                    t(
                        "errors.creative.provider_unavailable",
                        name=prefs.provider,
                        available=available,
                    ),
                    option="provider",
                )
        most = ctx.creative.safety_ceiling(ctx.guild)
        if prefs.safety_tolerance is not None and prefs.safety_tolerance > most:
            raise OptionRefused(
                t("errors.creative.safety_pref", most=most),
                option="safety_tolerance",
            )
        if prefs.style is not None and prefs.style not in ctx.styles:
            raise OptionRefused(
                t("errors.creative.no_style_pick", name=prefs.style),
                option="style",
            )
        if prefs.guidance is not None and "guidance" in changes:
            provider = (
                prefs.provider
                if prefs.provider and ctx.creative.members_choose_provider
                else ctx.guild.provider or self.default_provider
            )
            caps = self.catalog.get(provider)
            if caps is not None:
                check_knob(caps, "guidance", prefs.guidance, self.catalog)

    # --- server settings, blocklist, role tiers -----------------------------------------------
    async def get_settings(self, guild_id: int) -> CreativeSettings:
        return await self.repo.get_creative_settings(guild_id)

    async def update_settings(
        self, guild_id: int, changes: Mapping[str, object], *, manage_guild: bool
    ) -> CreativeSettings:
        """Change batch, style, guidance, safety and provider-choice settings."""
        check_can_configure(manage_guild=manage_guild)
        unknown = set(changes) - SETTING_FIELDS
        if unknown:
            raise OptionRefused(
                t("errors.creative.unknown_setting", names=", ".join(sorted(unknown))),
                option=sorted(unknown)[0],
            )
        current = await self.repo.get_creative_settings(guild_id)
        values = {**current.model_dump(), **changes}
        settings = _validated(CreativeSettings, values, style_key="default_style", what="setting")
        if settings.default_count > settings.max_count:
            raise OptionRefused(
                t(
                    "errors.creative.default_above_max",
                    default=settings.default_count,
                    maximum=settings.max_count,
                ),
                option="default_count",
            )
        if settings.default_style and settings.default_style not in await self.styles(guild_id):
            raise OptionRefused(
                t("errors.creative.no_style", name=settings.default_style),
                option="default_style",
            )
        await self.repo.save_creative_settings(settings, now=self.clock.now())
        return settings

    async def add_block_rule(
        self, guild_id: int, text: str, *, regex: bool = False, manage_guild: bool
    ) -> BlockRule:
        """Block a word or phrase (whole words), or a regular expression."""
        check_can_configure(manage_guild=manage_guild)
        rule = make_rule(text, is_regex=regex)
        current = await self.repo.get_creative_settings(guild_id)
        if rule in current.blocklist:
            return rule
        if len(current.blocklist) >= MAX_BLOCK_RULES:
            raise OptionRefused(
                t("errors.creative.blocklist_full", count=MAX_BLOCK_RULES),
                option="blocklist",
            )
        await self._save(current, blocklist=(*current.blocklist, rule))
        return rule

    async def remove_block_rule(self, guild_id: int, text: str, *, manage_guild: bool) -> bool:
        check_can_configure(manage_guild=manage_guild)
        wanted = {text.strip(), normalise(text)}
        return await self._keep_only(guild_id, "blocklist", lambda r: r.pattern not in wanted)

    async def set_tier(
        self,
        guild_id: int,
        role_id: int,
        *,
        daily_quota: int | None,
        max_user_active: int | None,
        manage_guild: bool,
    ) -> Tier:
        """Give a role its own limits (``None`` keeps the server's; a quota of 0 is unlimited).
        A member with several tiered roles gets the most generous of each limit."""
        check_can_configure(manage_guild=manage_guild)
        if daily_quota is None and max_user_active is None:
            raise OptionRefused(t("errors.creative.tier_empty"), option="tier")
        try:
            tier = Tier(role_id=role_id, daily_quota=daily_quota, max_user_active=max_user_active)
        except ValidationError as err:
            raise _invalid(err, "tier") from err
        current = await self.repo.get_creative_settings(guild_id)
        others = tuple(t for t in current.tiers if t.role_id != role_id)
        if len(others) >= MAX_TIERS:
            raise OptionRefused(
                t("errors.creative.too_many_tiers", count=MAX_TIERS),
                option="tier",
            )
        await self._save(current, tiers=(*others, tier))
        return tier

    async def remove_tier(self, guild_id: int, role_id: int, *, manage_guild: bool) -> bool:
        check_can_configure(manage_guild=manage_guild)
        return await self._keep_only(guild_id, "tiers", lambda t: t.role_id != role_id)

    async def _save(self, current: CreativeSettings, **changes: object) -> None:
        """Save ``current`` with ``changes`` (a longer or shorter list) as the server's."""
        updated = current.model_copy(update=changes)
        await self.repo.save_creative_settings(updated, now=self.clock.now())

    async def _keep_only(self, guild_id: int, field: str, keep: Callable[[Any], bool]) -> bool:
        """Drop the entries of the list ``field`` that ``keep`` refuses; whether any was."""
        current = await self.repo.get_creative_settings(guild_id)
        entries: tuple[object, ...] = getattr(current, field)
        kept = tuple(entry for entry in entries if keep(entry))
        if len(kept) == len(entries):
            return False
        await self._save(current, **{field: kept})
        return True

    # --- requests -----------------------------------------------------------------------------
    async def _context(
        self,
        guild_id: int,
        user_id: int,
        prefs: MemberPrefs | None,
        role_ids: tuple[int, ...],
        guild: GuildSettings | None = None,
    ) -> Context:
        guild = guild or await self.repo.get_guild_settings(guild_id)
        creative = await self.repo.get_creative_settings(guild_id)
        tier = creative.best_tier(role_ids)
        active = guild.max_user_active
        if tier is not None:
            active, _ = tier.apply(active, guild.daily_quota)
        return Context(
            prefs=prefs
            if prefs is not None
            else await self.repo.get_member_prefs(guild_id, user_id),
            guild=guild,
            creative=creative,
            catalog=self.catalog,
            default_provider=self.default_provider,
            styles=await self.styles(guild_id),
            max_active=active,
        )

    async def resolve(
        self,
        guild_id: int,
        user_id: int,
        options: RequestOptions,
        *,
        role_ids: tuple[int, ...] = (),
        remix_suffix: str | None = None,
        guild: GuildSettings | None = None,
    ) -> Resolved:
        """The values a request runs with and where each came from: option > member
        preference > server setting > provider default (``guild``: the server's settings,
        when the caller has just read them). Raises OptionRefused, StyleError or
        UnsupportedKnob, each saying what to change."""
        ctx = await self._context(guild_id, user_id, None, role_ids, guild)
        return resolve(options, ctx, remix_suffix=remix_suffix)

    @staticmethod
    def edit_request(
        resolved: Resolved,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        kind: JobKind,
        images: tuple[ReferenceInput, ...] = (),
        thread_id: int | None = None,
        parent_output_id: int | None = None,
        reply_to_message_id: int | None = None,
        role_ids: tuple[int, ...] = (),
    ) -> EditRequest:
        """The engine request for resolved values (hand it to ``JobEngine.submit``)."""
        return EditRequest(
            guild_id=guild_id,
            channel_id=channel_id,
            thread_id=thread_id,
            user_id=user_id,
            kind=kind,
            prompt=resolved.prompt,
            params=resolved.params,
            # A provider nobody chose (the deployment's default) is left to routing.
            provider=(
                None if resolved.origins.get("provider") is Origin.PROVIDER else resolved.provider
            ),
            parent_output_id=parent_output_id,
            reply_to_message_id=reply_to_message_id,
            images=images,
            role_ids=role_ids,
        )

    # --- batches ------------------------------------------------------------------------------
    async def batch_report(self, job_id: int) -> BatchReport:
        job = await self.repo.get_job(job_id)
        if job is None:
            raise JobNotFound(t("errors.job.not_found_check", job_id=job_id))
        return await batch_report(self.repo, job)

    async def pick(
        self, job_id: int, number: int, *, by_user_id: int, moderator: bool = False
    ) -> PickResult:
        """Choose image ``number`` (from 1) of a finished batch: it is recorded as a child in
        the history tree (a finished ``pick`` job sharing the image's bytes) for the edge to
        post alone as a new result. Picking an image already picked returns that pick."""
        job = await self.repo.get_job(job_id)
        if job is None:
            raise JobNotFound(t("errors.job.not_found_check", job_id=job_id))
        if job.status is not JobStatus.DONE:
            raise OptionRefused(
                t("errors.creative.batch_running"),
                option="number",
            )
        settings = await self.repo.get_guild_settings(job.guild_id)
        check_can_iterate(settings, job, user_id=by_user_id, moderator=moderator)
        outputs = {o.number: o for o in await self.repo.outputs_for_job(job.id)}
        source = outputs.get(number)
        if source is None:
            have = ", ".join(str(n) for n in sorted(outputs)) or t("errors.creative.none")
            raise OptionRefused(
                t("errors.creative.no_such_image", number=number, have=have),
                option="number",
            )
        if await self.repo.get_blob(source.content_hash) is None:
            raise OptionRefused(
                t("errors.creative.image_expired", number=number),
                option="number",
            )
        pick = NewJob(
            guild_id=job.guild_id,
            channel_id=job.channel_id,
            thread_id=job.thread_id,
            user_id=by_user_id,
            kind=JobKind.PICK,
            prompt=job.prompt,
            params=job.params.model_copy(update={"num_images": 1}),
            provider=job.provider,
            model=job.model,
            parent_output_id=source.id,
        )
        made_job, made, created = await self.repo.record_pick(source, pick, now=self.clock.now())
        return PickResult(job=made_job, output=made, source=source, created=created)
