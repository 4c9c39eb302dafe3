"""The repository API: everything the bot knows, behind one async interface, two backends.

``storage.open_repository(url)`` picks the backend from ``KONTEXT_DATABASE_URL``
(``sqlite:///path`` or ``postgresql://...``). SQL lives only in this package.

Times are epoch seconds passed in by the caller (``now``), never read from the system clock
here, so tests control time. Every write that changes a job's status is a compare-and-set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.creative_models import BatchItem, CreativeSettings, MemberPrefs, Style
from bot.errors import KontextError
from bot.i18n import Text, t
from bot.models import (
    DataErased,
    Frozen,
    GuildSettings,
    Job,
    JobStatus,
    MessageKind,
    MessageRef,
    NewJob,
    Output,
    OutputFormat,
    ProviderPause,
    Reference,
    RemixChannel,
    UsageRow,
)


class StorageError(KontextError):
    code = "storage"


class DatabaseTooNew(StorageError):
    code = "database_too_new"


class DatabaseUnusable(StorageError):
    """Not a database of ours (corrupted, foreign or unreadable)."""

    code = "database_unusable"


class FaultKind(StrEnum):
    FULL = "full"
    READ_ONLY = "read-only"
    LOCKED = "locked"
    GONE = "gone"


class DatabaseFault(StorageError):
    """The database stopped working under a running bot: full, read-only, locked or gone.
    The failed operation left nothing behind (its transaction was rolled back)."""

    code = "database_fault"

    def __init__(self, kind: FaultKind, where: str, detail: Text | str) -> None:
        if kind is FaultKind.FULL:
            message = t("errors.storage.full", where=where, detail=detail)
        elif kind is FaultKind.READ_ONLY:
            message = t("errors.storage.read_only", where=where, detail=detail)
        elif kind is FaultKind.LOCKED:
            message = t("errors.storage.locked", where=where, detail=detail)
        else:
            message = t("errors.storage.gone", where=where, detail=detail)
        super().__init__(message)
        self.kind = kind
        self.where = where


class LimitKind(StrEnum):
    USER_ACTIVE = "user_active"  # jobs waiting + running for one user in one guild
    GUILD_QUEUE = "guild_queue"  # jobs waiting in one guild
    DAILY_QUOTA = "daily_quota"  # jobs started by one user in one guild today (UTC)
    DAILY_CREDITS = "daily_credits"  # credits one guild spent today (UTC), from the ledger


class LimitExceeded(StorageError):
    """Enqueue refused by a limit; nothing was written. The engine words the refusal."""

    code = "limit"

    def __init__(self, limit: LimitKind, current: int, maximum: int, *, requested: int = 1):
        super().__init__(f"{limit.value} limit reached ({current}+{requested}/{maximum})")
        self.limit = limit
        self.current = current
        self.maximum = maximum
        self.requested = requested  # what the refused job counts for (a batch: its size)


class EnqueueLimits(Frozen):
    """Checked inside the enqueue transaction, so two racing requests cannot both pass."""

    max_user_active: int | None = None
    max_guild_queue: int | None = None
    daily_quota: int | None = None  # None or 0: unlimited
    max_guild_running: int | None = None  # stored on the guild's lane, used by claim


class AccountLimits(Frozen):
    """One provider account's limits, shared by every process that uses its key."""

    concurrency: int  # jobs the provider works on at once (``submitting`` + ``running``)
    rate_per_minute: float | None = None  # submits per minute; None: unlimited
    burst: int = 1  # submits the bucket holds after a quiet spell


class SignalKind(StrEnum):
    QUEUED = "queued"  # a job of ``provider`` became claimable
    FREED = "freed"  # a job of ``provider`` no longer holds an account slot
    CANCELLED = "cancelled"  # job ``job_id`` was cancelled
    RESYNC = "resync"  # signals may have been missed (the listening connection was lost)


@dataclass(frozen=True, slots=True)
class QueueSignal:
    """A change another process made, announced through the database."""

    kind: SignalKind
    provider: str | None = None
    job_id: int | None = None


class Subscription(Protocol):
    async def close(self) -> None: ...


class Repository(Protocol):
    #: Several processes may share this database: account limits are enforced in the claim
    #: and changes are announced to :meth:`subscribe` (PostgreSQL). When False (SQLite, one
    #: process) the engine's own gate holds the account and nothing needs announcing.
    multi_process: bool

    # --- lifecycle -----------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the connection (pool) and apply migrations. Raises DatabaseTooNew or
        DatabaseUnusable with a clear message."""
        ...

    async def close(self) -> None: ...

    async def schema_version(self) -> int: ...

    # --- blobs (image bytes, content-addressed by sha256 hex) ------------------------------
    async def put_blob(self, data: bytes, *, now: float) -> str:
        """Store bytes (idempotent) and return their sha256 hex."""
        ...

    async def get_blob(self, content_hash: str) -> bytes | None: ...

    # --- guild settings and remix channels ------------------------------------------------
    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        """Stored settings, or ``GuildSettings.defaults(guild_id)``."""
        ...

    async def save_guild_settings(self, settings: GuildSettings, *, now: float) -> None: ...

    async def add_remix_channel(self, channel: RemixChannel, *, now: float) -> None: ...

    async def remove_remix_channel(self, guild_id: int, channel_id: int) -> bool: ...

    async def list_remix_channels(self, guild_id: int) -> list[RemixChannel]: ...

    async def get_remix_channel(self, channel_id: int) -> RemixChannel | None: ...

    # --- the queue ------------------------------------------------------------------------
    async def enqueue(self, job: NewJob, *, now: float, limits: EnqueueLimits | None = None) -> Job:
        """Persist a job and its references as ``queued`` in one transaction, after checking
        ``limits`` in that same transaction (raises LimitExceeded, writing nothing)."""
        ...

    async def claim(
        self,
        *,
        worker_id: str,
        provider: str,
        now: float,
        lease_seconds: float,
        limit: int = 1,
        account: AccountLimits | None = None,
        release: Sequence[int] = (),
    ) -> list[Job]:
        """Atomically take up to ``limit`` runnable queued jobs for ``provider``, fairly:
        guilds take turns (least recently served first), inside a guild users take turns,
        inside a user oldest first. Skips guilds already running their ``max_guild_running``
        and jobs whose ``run_after`` is in the future. Claimed jobs move to ``submitting``
        with a lease owned by ``worker_id``. Safe across processes (PostgreSQL:
        ``FOR UPDATE SKIP LOCKED``).

        With ``account`` (``multi_process`` backends), each claim also takes a slot and a
        rate token of the provider's account inside its transaction: the provider's jobs in
        ``submitting`` or ``running`` are counted in the database and a token bucket row is
        kept per provider, so all processes together stay within the account. SQLite serves
        one process, whose engine gate holds the account, and ignores it.

        ``release``: jobs the provider has finished with (see :meth:`release_account`),
        freed in the first claim's transaction, so their slots pass straight to the jobs
        claimed here; other processes hear only of the slots this claim leaves free."""
        ...

    async def account_wait(self, provider: str, *, now: float, account: AccountLimits) -> float:
        """Seconds until the account's rate (or a provider's "slow down") admits another
        submit; 0 when it admits one now."""
        ...

    async def release_account(self, job_id: int) -> None:
        """The provider has finished with the job (its outputs are still being stored): it
        no longer holds an account slot, though its status still says so until the next
        step is written. Other processes hear of the freed slot."""
        ...

    async def block_account(self, provider: str, *, until: float) -> None:
        """No process submits to ``provider`` before ``until`` (it answered 429)."""
        ...

    async def subscribe(self, on_signal: Callable[[QueueSignal], None]) -> Subscription | None:
        """Call ``on_signal`` (on the event loop) whenever any process queues a job, frees
        an account slot or cancels a job; ``None`` when the backend has no other processes
        to hear from. Close the subscription when done."""
        ...

    async def heartbeat(
        self, *, worker_id: str, job_ids: Sequence[int], now: float, lease_seconds: float
    ) -> int:
        """Extend the leases this worker still holds; returns how many were extended."""
        ...

    async def reclaim_expired(
        self, *, worker_id: str, now: float, lease_seconds: float
    ) -> list[Job]:
        """Take over active jobs whose lease expired (their worker died), keeping their
        status and provider handle, so they are resumed (polled), never resubmitted."""
        ...

    async def transition(
        self,
        job_id: int,
        *,
        expected: JobStatus | Sequence[JobStatus],
        to: JobStatus,
        now: float,
        **fields: object,
    ) -> Job | None:
        """Compare-and-set the status (and the given columns: provider, provider_handle,
        result_json, attempts, error_code, error_message, error_text, credits, cost,
        run_after, status_message_id, thread_id). Returns the updated job, or ``None`` when
        the job was not in ``expected``. A terminal job never changes status again. Moving back to
        ``queued`` releases the lease; a terminal status releases it and records
        ``finished_at``; the time of every transition is recorded."""
        ...

    async def update_job(self, job_id: int, *, now: float, **fields: object) -> Job | None:
        """Set non-status columns (status_message_id, thread_id, ...)."""
        ...

    async def get_job(self, job_id: int) -> Job | None: ...

    async def job_history(self, job_id: int) -> list[tuple[JobStatus, float]]:
        """Every status the job went through, with its time, oldest first."""
        ...

    async def list_jobs(
        self,
        *,
        guild_id: int | None = None,
        user_id: int | None = None,
        statuses: Sequence[JobStatus] | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Newest first."""
        ...

    async def queue_position(self, job_id: int) -> int | None:
        """1-based position among the queued jobs of the job's provider, in claim order
        (an estimate under fair scheduling: jobs of guilds served before it); ``None`` when
        not queued."""
        ...

    async def count_active(self, *, guild_id: int, user_id: int | None = None) -> int:
        """Jobs waiting or running (non-terminal) in a guild, or for one user in it."""
        ...

    async def count_queued(self, *, guild_id: int | None = None) -> int: ...

    async def count_running(self, *, guild_id: int | None = None) -> int: ...

    async def provider_backlog(self, provider: str) -> int:
        """Jobs of the provider that are queued, submitting or running (all processes)."""
        ...

    async def recent_durations(self, provider: str, *, limit: int = 20) -> list[float]:
        """Seconds from started to finished of the provider's last successful jobs."""
        ...

    # --- references, outputs, lineage ------------------------------------------------------
    async def get_references(self, job_id: int) -> list[Reference]: ...

    async def set_reference_image(
        self,
        job_id: int,
        position: int,
        *,
        content_hash: str,
        width: int,
        height: int,
        url: str | None,
    ) -> None:
        """The bytes (stored with ``put_blob``) of an attachment the worker fetched, with
        their size and the link that still stands for them (``None`` once re-encoded)."""
        ...

    async def add_output(
        self,
        job_id: int,
        *,
        index: int,
        data: bytes,
        format: OutputFormat,
        width: int,
        height: int,
        nsfw: bool,
        now: float,
        retention_seconds: float | None,
    ) -> Output:
        """Keep an output's bytes (idempotent per (job_id, index))."""
        ...

    async def get_output(self, output_id: int) -> Output | None: ...

    async def outputs_for_job(self, job_id: int) -> list[Output]: ...

    async def set_output_message(
        self, output_id: int, *, channel_id: int, message_id: int, attachment_id: int | None
    ) -> None: ...

    async def lineage(self, output_id: int) -> list[tuple[Job, Output]]:
        """The chain from the root job's output to ``output_id`` (root first)."""
        ...

    async def children(self, output_id: int) -> list[Job]:
        """Jobs that edited this output (branches)."""
        ...

    async def purge_expired(
        self, *, now: float, reference_retention_seconds: float | None = None
    ) -> int:
        """Delete output bytes past their retention (and unreferenced blobs)."""
        ...

    # --- message index ----------------------------------------------------------------------
    async def index_message(self, ref: MessageRef, *, now: float) -> None: ...

    async def lookup_message(self, message_id: int) -> MessageRef | None: ...

    async def delete_message_ref(self, message_id: int) -> None: ...

    # --- usage ledger -----------------------------------------------------------------------
    async def record_usage(
        self,
        *,
        guild_id: int,
        user_id: int,
        day: str,
        jobs: int = 1,
        images: int = 0,
        credits: float = 0.0,
        cost: float = 0.0,
    ) -> None: ...

    async def usage(
        self, *, guild_id: int, since_day: str, user_id: int | None = None
    ) -> list[UsageRow]: ...

    # --- batches, styles, preferences, creative settings, picks (storage.creative) ---------
    async def init_batch_items(
        self, job_id: int, seeds: Sequence[int | None], *, now: float
    ) -> list[BatchItem]:
        """Create a batch's items once (a repeat keeps the saved ones); return them all."""
        ...

    async def batch_items(self, job_id: int) -> list[BatchItem]: ...

    async def update_batch_item(
        self, job_id: int, index: int, *, now: float, **fields: object
    ) -> BatchItem | None: ...

    async def add_guild_style(
        self, guild_id: int, name: str, prompt: str, *, created_by: int, now: float
    ) -> bool:
        """``False`` (nothing written) when the server already has a style of that name."""
        ...

    async def remove_guild_style(self, guild_id: int, name: str) -> bool: ...

    async def list_guild_styles(self, guild_id: int) -> list[Style]: ...

    async def get_member_prefs(self, guild_id: int, user_id: int) -> MemberPrefs: ...

    async def save_member_prefs(
        self, guild_id: int, user_id: int, prefs: MemberPrefs, *, now: float
    ) -> None: ...

    async def get_creative_settings(self, guild_id: int) -> CreativeSettings: ...

    async def save_creative_settings(self, settings: CreativeSettings, *, now: float) -> None: ...

    async def record_pick(
        self, source: Output, job: NewJob, *, now: float
    ) -> tuple[Job, Output, bool]:
        """A finished ``pick`` job, child of ``source``, sharing its bytes (one transaction);
        ``False`` and the earlier pick when the image was picked before."""
        ...

    # --- operations (storage.operations) ----------------------------------------------------
    async def pause_provider(
        self, provider: str, *, code: str, detail: str | None, now: float
    ) -> bool:
        """Pause a provider for every process; ``True`` only for the call that paused it."""
        ...

    async def resume_provider(self, provider: str) -> bool: ...

    async def provider_pauses(self) -> list[ProviderPause]: ...

    async def queue_depths(self) -> dict[str, int]: ...

    async def command_digest(self, scope: str) -> str | None:
        """The hash of the command tree last registered with Discord for ``scope``."""
        ...

    async def set_command_digest(self, scope: str, digest: str, *, now: float) -> None: ...

    async def spend_by_provider(self) -> dict[str, tuple[float, float]]: ...

    async def retire_before(self, *, cutoff: float, now: float) -> tuple[int, int]:
        """Erase prompts of jobs finished before ``cutoff``, expire outputs made before it."""
        ...

    async def erase_user(self, user_id: int, *, guild_id: int | None, now: float) -> DataErased:
        """Erase a member's prompts and images (in one server, or everywhere)."""
        ...

    async def mark_guild_departed(self, guild_id: int, *, now: float) -> None: ...

    async def mark_guild_present(self, guild_id: int) -> None: ...

    async def departed_guilds(self, *, left_before: float) -> list[int]: ...

    async def guilds_with_data(self) -> list[int]: ...

    async def delete_guild_data(self, guild_id: int, *, now: float) -> DataErased | None:
        """Delete everything stored for a server; ``None`` while it has unfinished jobs."""
        ...


# MessageKind is re-exported for convenience of callers building MessageRef.
__all__ = [
    "AccountLimits",
    "DatabaseFault",
    "DatabaseTooNew",
    "DatabaseUnusable",
    "EnqueueLimits",
    "FaultKind",
    "LimitExceeded",
    "LimitKind",
    "MessageKind",
    "QueueSignal",
    "Repository",
    "SignalKind",
    "StorageError",
    "Subscription",
]
