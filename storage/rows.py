"""Rows to models and back: the one place that knows how columns map to domain fields."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bot.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    GuildSettings,
    Job,
    JobParams,
    JobStatus,
    MessageKind,
    MessageRef,
    Output,
    Reference,
    RemixChannel,
    UsageRow,
)

Row = Mapping[str, Any]

#: Columns ``transition`` may set beside the status.
TRANSITION_FIELDS = frozenset(
    {
        "provider",
        "provider_handle",
        "result_json",
        "attempts",
        "error_code",
        "error_message",
        "error_text",
        "credits",
        "cost",
        "run_after",
        "status_message_id",
        "thread_id",
        "route_reason",
        "route_text",
    }
)
#: Columns ``update_job`` may set (never the status, the lease or the bookkeeping times).
UPDATE_FIELDS = TRANSITION_FIELDS | {"deadline_at", "model"}

_FLOAT_FIELDS = frozenset({"credits", "cost", "run_after", "deadline_at"})


def status_list(statuses: Iterable[JobStatus]) -> str:
    """A SQL ``IN`` list of statuses. Inlined, not bound: the values are enum members, and a
    fixed text lets SQLite match its partial indexes."""
    return ", ".join(f"'{JobStatus(s).value}'" for s in sorted(statuses))


OPEN_SQL = status_list({JobStatus.QUEUED} | ACTIVE_STATUSES)
ACTIVE_SQL = status_list(ACTIVE_STATUSES)
#: Waiting for, or holding, a provider slot.
BACKLOG_SQL = status_list({JobStatus.QUEUED, JobStatus.SUBMITTING, JobStatus.RUNNING})
TERMINAL_SQL = status_list(TERMINAL_STATUSES)
#: Ended without producing anything: these do not count against the daily quota.
UNCOUNTED_SQL = status_list({JobStatus.CANCELLED, JobStatus.FAILED, JobStatus.EXPIRED})


def column_values(fields: Mapping[str, object], allowed: frozenset[str]) -> dict[str, object]:
    """Validate keyword columns for an update; unknown names are a programming error."""
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"cannot set job column(s) {sorted(unknown)}")
    values: dict[str, object] = {}
    for name, value in fields.items():
        if name in _FLOAT_FIELDS and isinstance(value, int):
            value = float(value)
        values[name] = value
    return values


def job_from_row(row: Row) -> Job:
    data = dict(row)
    data["params"] = JobParams.model_validate_json(data["params"])
    return Job.model_validate(data)


def reference_from_row(row: Row) -> Reference:
    return Reference.model_validate(dict(row))


def output_from_row(row: Row) -> Output:
    data = dict(row)
    data["index"] = data.pop("image_index")
    data["nsfw"] = bool(data["nsfw"])
    return Output.model_validate(data)


def settings_from_row(row: Row) -> GuildSettings:
    data = dict(row)
    data.pop("updated_at", None)
    data["allowed_role_ids"] = tuple(json.loads(data["allowed_role_ids"]))
    data["allowed_channel_ids"] = tuple(json.loads(data["allowed_channel_ids"]))
    data["providers"] = tuple(json.loads(data["providers"]))
    return GuildSettings.model_validate(data)


def settings_values(settings: GuildSettings) -> dict[str, object]:
    data: dict[str, object] = settings.model_dump(mode="json")
    data["allowed_role_ids"] = json.dumps(list(settings.allowed_role_ids))
    data["allowed_channel_ids"] = json.dumps(list(settings.allowed_channel_ids))
    data["providers"] = json.dumps(list(settings.providers))
    return data


def remix_from_row(row: Row) -> RemixChannel:
    return RemixChannel(
        guild_id=row["guild_id"], channel_id=row["channel_id"], style_suffix=row["style_suffix"]
    )


def message_ref_from_row(row: Row) -> MessageRef:
    return MessageRef(
        message_id=row["message_id"],
        channel_id=row["channel_id"],
        job_id=row["job_id"],
        output_id=row["output_id"],
        kind=MessageKind(row["kind"]),
    )


def usage_from_row(row: Row) -> UsageRow:
    return UsageRow.model_validate(dict(row))
