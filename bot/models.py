"""Domain values shared by every layer: plain, frozen pydantic models and str enums.

Nothing here imports Discord, httpx or a database driver. Ids are Discord snowflakes (ints);
times are epoch seconds (floats) taken from an injectable :class:`bot.clock.Clock`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.i18n import Text, stored_text

MAX_PROMPT_LENGTH = 4000
MAX_REFERENCES = 4


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def fields_for(
        self, target: type[BaseModel], *, exclude: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """This model's values of the fields ``target`` declares too (less ``exclude``): what
        carries over when one model is built from another."""
        ours = type(self).model_fields
        return {n: getattr(self, n) for n in target.model_fields if n in ours and n not in exclude}


class AspectRatio(StrEnum):
    """The ratios every FLUX.1 Kontext provider here understands, widest first."""

    R21_9 = "21:9"
    R16_9 = "16:9"
    R4_3 = "4:3"
    R3_2 = "3:2"
    R1_1 = "1:1"
    R2_3 = "2:3"
    R3_4 = "3:4"
    R9_16 = "9:16"
    R9_21 = "9:21"

    @property
    def value_ratio(self) -> float:
        width, height = self.value.split(":")
        return int(width) / int(height)

    @classmethod
    def closest(cls, width: int, height: int) -> AspectRatio:
        """The ratio nearest to ``width``×``height``, compared on a log scale."""
        import math

        target = math.log(width / height)
        return min(cls, key=lambda r: abs(math.log(r.value_ratio) - target))


class OutputFormat(StrEnum):
    PNG = "png"
    JPEG = "jpeg"


class JobKind(StrEnum):
    EDIT = "edit"
    IMAGINE = "imagine"
    REROLL = "reroll"
    REPLY = "reply"
    REMIX = "remix"
    PICK = "pick"  # one image of a batch, chosen and posted alone (no provider call)


class JobStatus(StrEnum):
    """The job lifecycle. Every transition is stored before its side effect."""

    QUEUED = "queued"
    SUBMITTING = "submitting"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    MODERATED = "moderated"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def active(self) -> bool:
        """Claimed by a worker and not finished (between queued and a terminal status)."""
        return self in ACTIVE_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        JobStatus.DONE,
        JobStatus.FAILED,
        JobStatus.MODERATED,
        JobStatus.CANCELLED,
        JobStatus.EXPIRED,
    }
)
ACTIVE_STATUSES = frozenset(
    {JobStatus.SUBMITTING, JobStatus.RUNNING, JobStatus.DOWNLOADING, JobStatus.DELIVERING}
)


class ReferenceSource(StrEnum):
    ATTACHMENT = "attachment"  # a Discord attachment on the command or message
    OUTPUT = "output"  # an earlier output of this bot
    UPLOAD = "upload"  # local bytes (the CLI)
    URL = "url"  # any other allowlisted URL


class NsfwPolicy(StrEnum):
    BLOCK = "block"  # never post flagged outputs
    SPOILER = "spoiler"  # post as spoilers, and only in age-restricted channels


class IteratePolicy(StrEnum):
    ANYONE = "anyone"
    REQUESTER = "requester"


class JobParams(Frozen):
    """Generation parameters chosen by the user (or their guild's defaults)."""

    aspect_ratio: AspectRatio | None = None
    seed: int | None = Field(default=None, ge=1)
    guidance: float | None = Field(default=None, ge=0, le=20)
    safety_tolerance: int | None = Field(default=None, ge=1, le=6)
    output_format: OutputFormat = OutputFormat.PNG
    num_images: int = Field(default=1, ge=1, le=4)  # the batch size: images in one job
    style: str | None = None  # the style applied to the member's words (its name)
    request_prompt: str | None = None  # the member's own words, when a style changed them
    ping: bool = True  # mention (and so ping) the requester when the result is posted
    #: The language of the job's public messages (status, result), chosen when it was queued
    #: (a worker has no gateway cache to look the server's locale up); None: the default.
    language: str | None = None
    #: Where each resolved value came from ("option", "member", "server", "provider").
    origins: dict[str, str] = Field(default_factory=dict)


#: A server's language setting: one of the catalog's languages, or "auto".
LANGUAGE_AUTO: Final = "auto"
GuildLanguage = Literal["auto", "en", "de", "ja"]


class GuildSettings(Frozen):
    """A guild's configuration; :meth:`defaults` is what a new guild gets."""

    guild_id: int
    provider: str | None = None  # None: the deployment's KONTEXT_PROVIDER
    #: Providers this guild allows, in order of preference; a job goes to the one expected
    #: to finish it soonest (unless ``provider`` or the member pins one). Empty: not routed.
    providers: tuple[str, ...] = ()
    model: str | None = None
    default_aspect_ratio: AspectRatio | None = None
    safety_tolerance: int = Field(default=2, ge=1, le=6)
    max_user_active: int = Field(default=3, ge=1)  # waiting + running, per user
    max_guild_running: int = Field(default=4, ge=1)
    max_guild_queue: int = Field(default=100, ge=1)
    daily_quota: int = Field(default=50, ge=0)  # per user per day; 0 = unlimited
    nsfw_policy: NsfwPolicy = NsfwPolicy.BLOCK
    allowed_role_ids: tuple[int, ...] = ()  # empty: everyone
    allowed_channel_ids: tuple[int, ...] = ()  # empty: everywhere
    gallery_channel_id: int | None = None
    iterate_policy: IteratePolicy = IteratePolicy.ANYONE
    #: Credits (as the providers report them) the whole server may spend per UTC day; 0: no cap.
    daily_credit_cap: float = Field(default=0.0, ge=0)
    #: Where every finished, failed or refused request is logged for moderators; None: nowhere.
    modlog_channel_id: int | None = None
    #: The language the bot speaks here, or "auto": each member's Discord language for
    #: answers to them, the server's for public messages.
    language: GuildLanguage = LANGUAGE_AUTO

    @classmethod
    def defaults(cls, guild_id: int) -> GuildSettings:
        return cls(guild_id=guild_id)


class RemixChannel(Frozen):
    guild_id: int
    channel_id: int
    style_suffix: str | None = None


#: The ``content_hash`` of an attachment queued before its bytes were read: the worker
#: downloads, checks and stores it before the job goes to a provider (bot.jobs.attachments).
NOT_FETCHED = "not-fetched"


class NewReference(Frozen):
    """A reference image as it is queued: its bytes are stored as a blob (by hash), or, for
    an attachment, fetched by the worker first (``content_hash`` is ``NOT_FETCHED``)."""

    source: ReferenceSource
    content_hash: str  # sha256 hex of the validated bytes, stored with Repository.put_blob
    url: str | None = None  # a public URL a provider may fetch (e.g. a Discord attachment)
    message_id: int | None = None
    attachment_id: int | None = None
    output_id: int | None = None  # when source is OUTPUT
    width: int | None = None
    height: int | None = None

    @property
    def fetched(self) -> bool:
        """Whether the bytes are stored (an attachment may still wait for the worker)."""
        return self.content_hash != NOT_FETCHED


class Reference(NewReference):
    job_id: int
    position: int


class JobOrigin(Frozen):
    """Who asks for a job, where, and what: what a request and the job it queues share."""

    guild_id: int  # 0 outside a guild (DMs, the CLI)
    channel_id: int
    thread_id: int | None = None
    user_id: int
    kind: JobKind
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_LENGTH)
    params: JobParams = JobParams()
    parent_output_id: int | None = None  # lineage: the output this job edits
    reply_to_message_id: int | None = None  # post the result as a reply to this message
    #: The server's attachment upload limit in bytes (its boost level decides), as the front
    #: end saw it; stored on the job for whichever process posts the result. None: unknown.
    upload_limit: int | None = Field(default=None, gt=0)


class NewJob(JobOrigin):
    """Everything needed to queue a job; built by a front end, persisted by the engine."""

    provider: str
    model: str | None = None
    references: tuple[NewReference, ...] = Field(default=(), max_length=MAX_REFERENCES)
    deadline_at: float | None = None  # epoch seconds; past it the job ends as expired
    route_reason: str | None = None  # why the job went to its provider (shown by Info)
    route_text: str | None = None  # the same as a stored Text (JSON), see Job.route_reason_text


class Job(Frozen):
    id: int
    guild_id: int
    channel_id: int
    thread_id: int | None
    user_id: int
    kind: JobKind
    prompt: str
    params: JobParams
    provider: str
    model: str | None
    parent_output_id: int | None
    reply_to_message_id: int | None
    status: JobStatus
    attempts: int = 0
    provider_handle: str | None = None  # the provider's job id, saved before polling
    result_json: str | None = None  # a finished provider result kept until downloaded
    error_code: str | None = None
    error_message: str | None = None  # why it failed or was cancelled, in English
    error_text: str | None = None  # the same as a stored Text (JSON), see failure_text
    credits: float | None = None
    cost: float | None = None
    status_message_id: int | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    deadline_at: float | None = None
    run_after: float | None = None  # not claimable before this time (retry backoff)
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    route_reason: str | None = None  # why the job went to its provider (shown by Info), in English
    route_text: str | None = None  # the same as a stored Text (JSON), see route_reason_text
    upload_limit: int | None = None  # the guild's upload limit in bytes when queued
    image_count: int = 1  # what the job counts for against limits and quota (a pick: 0)

    @property
    def erased(self) -> bool:
        """Retention or an erasure request removed this finished job's prompt (its images
        expired with it): it can be shown, but not rerolled."""
        return not self.prompt

    def failure_text(self) -> Text | str:
        """Why the job failed, expired or was cancelled, to word in any language: the stored
        Text, else (a row written before texts were kept, or one this version cannot word)
        the English ``error_message``, else an empty string."""
        return stored_text(self.error_text, self.error_message)

    def route_reason_text(self) -> Text | str:
        """Why the job went to its provider, to word in any language: the stored Text, else
        (a row written before texts were kept, or one this version cannot word) the English
        ``route_reason``, else an empty string."""
        return stored_text(self.route_text, self.route_reason)

    @property
    def delivery_nonce(self) -> str:
        """A stable nonce for the result message, so a repeated post is deduplicated."""
        return f"kx{self.id}"


class Output(Frozen):
    id: int
    job_id: int
    index: int
    content_hash: str
    size: int
    format: OutputFormat
    width: int
    height: int
    nsfw: bool = False
    channel_id: int | None = None
    message_id: int | None = None
    attachment_id: int | None = None
    created_at: float
    expires_at: float | None = None

    @property
    def number(self) -> int:
        """The image's number in its batch, from 1 (what a member sees and picks by)."""
        return self.index + 1


class MessageKind(StrEnum):
    STATUS = "status"
    RESULT = "result"
    REQUEST = "request"  # the member's message that asked for a job (reply, remix post)


class MessageRef(Frozen):
    message_id: int
    channel_id: int
    job_id: int
    output_id: int | None = None
    kind: MessageKind


class UsageRow(Frozen):
    guild_id: int
    user_id: int
    day: str  # YYYY-MM-DD (UTC)
    jobs: int
    images: int
    credits: float
    cost: float


class ProviderPause(Frozen):
    """A provider paused for every process: its key was refused or its credits ran out."""

    provider: str
    code: str  # "auth" or "credits"
    detail: str | None = None  # what the provider said, for the operator
    paused_at: float


class DataErased(Frozen):
    """What an erasure removed (a member's data, or a server's)."""

    jobs: int  # jobs whose prompts and images were erased (or deleted)
    images: int  # distinct images whose bytes were deleted
    still_running: int = 0  # unfinished jobs left alone (erase again once they finished)
