"""The values of the creative features: styles, member preferences, a server's creative and
community settings, batches and picks. Plain frozen models; nothing here touches Discord."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, InstanceOf

from bot.i18n import Text, render, stored_text
from bot.models import (
    AspectRatio,
    Frozen,
    GuildSettings,
    Job,
    JobKind,
    JobParams,
    Output,
    OutputFormat,
)

MAX_BATCH = 4  # images per job (AIML API's num_images maximum)
MAX_STYLE_NAME = 32
MAX_STYLE_PROMPT = 1000
MAX_GUILD_STYLES = 100
MAX_BLOCK_RULES = 200
MAX_BLOCK_RULE_LENGTH = 200
MAX_TIERS = 25


class Style(Frozen):
    """A named prompt recipe. ``prompt`` either contains ``{prompt}`` (the member's words go
    there, and are required) or is added after the member's words (or used alone)."""

    name: str
    prompt: str
    description: str = ""
    builtin: bool = False

    @property
    def takes_words(self) -> bool:
        return "{prompt}" in self.prompt


class StyleChoice(Frozen):
    """One autocomplete answer."""

    name: str
    description: str
    builtin: bool


class StyleList(Frozen):
    server: tuple[Style, ...]
    presets: tuple[Style, ...]


class Origin(StrEnum):
    """Where a resolved value came from, in precedence order."""

    OPTION = "option"  # the command's own option
    MEMBER = "member"  # the member's preferences
    SERVER = "server"  # the server's settings (or the remix channel)
    PROVIDER = "provider"  # the provider's (or the deployment's) default


class MemberPrefs(Frozen):
    """A member's own defaults in one server; ``None`` means "no preference"."""

    aspect_ratio: AspectRatio | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_BATCH)
    style: str | None = None
    provider: str | None = None
    guidance: float | None = Field(default=None, ge=0, le=20)
    safety_tolerance: int | None = Field(default=None, ge=1, le=6)
    ping_when_done: bool | None = None


class Tier(Frozen):
    """Limits a role grants; ``None`` keeps the server's. A daily quota of 0 is unlimited."""

    role_id: int
    daily_quota: int | None = Field(default=None, ge=0)
    max_user_active: int | None = Field(default=None, ge=1)

    def apply(self, active: int, quota: int) -> tuple[int, int]:
        """The limits with this tier applied: the larger of each (0 quota wins: unlimited)."""
        if self.max_user_active is not None:
            active = max(active, self.max_user_active)
        if self.daily_quota is not None:
            quota = 0 if 0 in (quota, self.daily_quota) else max(quota, self.daily_quota)
        return active, quota


class BlockRule(Frozen):
    """A blocked word or phrase (matched as whole words), or a regular expression."""

    pattern: str = Field(min_length=1, max_length=MAX_BLOCK_RULE_LENGTH)
    regex: bool = False


class BlockedPrompt(Frozen):
    """A request the server's blocklist refused, for the moderation log (``rule``: the entry
    it matched; None when the blocklist changed before it could be named)."""

    guild_id: int
    channel_id: int
    user_id: int
    kind: JobKind
    prompt: str
    rule: BlockRule | None = None


class CreativeSettings(Frozen):
    """A server's batch, style, preference and community settings."""

    guild_id: int
    default_count: int = Field(default=1, ge=1, le=MAX_BATCH)
    max_count: int = Field(default=MAX_BATCH, ge=1, le=MAX_BATCH)
    default_style: str | None = None
    default_guidance: float | None = Field(default=None, ge=0, le=20)
    #: The loosest safety tolerance a member may ask for; None: the server's own setting.
    max_safety_tolerance: int | None = Field(default=None, ge=1, le=6)
    members_choose_provider: bool = False
    #: Whether a result pings its requester when the member has no preference; None: on.
    ping_when_done: bool | None = None
    tiers: tuple[Tier, ...] = Field(default=(), max_length=MAX_TIERS)
    blocklist: tuple[BlockRule, ...] = Field(default=(), max_length=MAX_BLOCK_RULES)

    @classmethod
    def defaults(cls, guild_id: int) -> CreativeSettings:
        return cls(guild_id=guild_id)

    def safety_ceiling(self, guild: GuildSettings) -> int:
        """The loosest safety tolerance members may choose here (1 is the strictest)."""
        if self.max_safety_tolerance is not None:
            return self.max_safety_tolerance
        return guild.safety_tolerance

    def best_tier(self, role_ids: tuple[int, ...] | list[int]) -> Tier | None:
        """The most generous tier among the member's roles, merged per limit."""
        held = [t for t in self.tiers if t.role_id in set(role_ids)]
        if not held:
            return None
        active: int | None = None
        quota: int | None = None
        for tier in held:
            if tier.max_user_active is not None:
                active = max(active or 0, tier.max_user_active)
            if tier.daily_quota is not None:
                quota = 0 if 0 in (quota, tier.daily_quota) else max(quota or 0, tier.daily_quota)
        return Tier(role_id=held[0].role_id, daily_quota=quota, max_user_active=active)


class RequestOptions(Frozen):
    """What a member typed on a command (``None``: not given)."""

    prompt: str = ""
    count: int | None = None
    style: str | None = None
    aspect_ratio: AspectRatio | None = None
    provider: str | None = None
    guidance: float | None = None
    safety_tolerance: int | None = None
    output_format: OutputFormat | None = None
    seed: int | None = None


class Resolved(Frozen):
    """The values a request runs with, and where each came from (for Info)."""

    prompt: str  # the full prompt sent to the provider
    request_prompt: str  # the member's own words
    style: str | None
    provider: str
    params: JobParams
    origins: dict[str, Origin]
    ping_when_done: bool


class BatchItemStatus(StrEnum):
    PENDING = "pending"  # not submitted yet
    RUNNING = "running"  # accepted: its handle is saved
    DONE = "done"  # finished: its result is saved
    FAILED = "failed"


class BatchItem(Frozen):
    """One provider request of a batch made by separate requests."""

    job_id: int
    index: int  # 0-based; the image's number is index + 1
    seed: int | None = None
    status: BatchItemStatus
    provider_handle: str | None = None
    result_json: str | None = None
    error_code: str | None = None
    error_message: str | None = None  # why it failed, in English
    error_text: str | None = None  # the same as a stored Text (JSON)

    def failure_text(self) -> Text | str:
        """Why this image failed, to word in any language (see ``Job.failure_text``)."""
        return stored_text(self.error_text, self.error_message)


class BatchFailure(Frozen):
    number: int  # 1-based
    code: str
    text: InstanceOf[Text] | str  # why, to word in the reader's language

    @property
    def reason(self) -> str:
        """Why, in English."""
        return render(self.text)


class BatchReport(Frozen):
    """Which images of a job were delivered and which failed, and why."""

    job_id: int
    count: int
    delivered: tuple[int, ...]  # numbers, 1-based
    failed: tuple[BatchFailure, ...]

    @property
    def partial(self) -> bool:
        return bool(self.failed) and bool(self.delivered)


class PickResult(Frozen):
    """A chosen image of a batch, recorded as a child job in the history tree."""

    job: Job  # the pick (kind ``pick``, already done)
    output: Output  # its output: the chosen image's bytes
    source: Output  # the batch output it was chosen from
    created: bool  # False: this image had been picked before (the same pick is returned)
