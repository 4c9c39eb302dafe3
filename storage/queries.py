"""The SQL text both backends share (``?`` placeholders; PostgreSQL rewrites them).

Only constants and the argument order that goes with them: the logic is in storage.sql and
storage.records.
"""

from __future__ import annotations

from bot.models import NewJob
from storage.rows import ACTIVE_SQL, OPEN_SQL, UNCOUNTED_SQL

DAY = 86_400.0
#: A blob younger than this is never purged: it may have been stored for a job that is
#: about to be queued.
BLOB_GRACE_SECONDS = DAY
#: How long the reference images of a finished job are kept (for rerolls and edits).
DEFAULT_REFERENCE_RETENTION = 30 * DAY


#: ``{source}`` is JOB_VALUES, or a ``SELECT`` of the same values guarded by limits.
JOB_INSERT = """
INSERT INTO jobs (guild_id, channel_id, thread_id, user_id, kind, prompt, params, provider,
    model, parent_output_id, reply_to_message_id, status, created_at, updated_at, deadline_at,
    route_reason, route_text, upload_limit)
{source}
RETURNING *
"""
JOB_VALUES = "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)"
JOB_SELECT = "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?"  # + WHERE guards


def job_values(job: NewJob, now: float) -> tuple[object, ...]:
    """The values of JOB_INSERT, in order."""
    return (
        job.guild_id,
        job.channel_id,
        job.thread_id,
        job.user_id,
        job.kind.value,
        job.prompt,
        job.params.model_dump_json(),
        job.provider,
        job.model,
        job.parent_output_id,
        job.reply_to_message_id,
        float(now),
        float(now),
        None if job.deadline_at is None else float(job.deadline_at),
        job.route_reason,
        job.route_text,
        job.upload_limit,
    )


def job_weight(job: NewJob) -> int:
    """What a new job counts for against the per-user limit and the daily quota (the
    ``image_count`` column computes the same for stored jobs)."""
    return job.params.num_images


REFERENCE_INSERT = """
INSERT INTO job_references (job_id, position, source, content_hash, url, message_id,
    attachment_id, output_id, width, height)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
#: One count per limit, each a scalar subquery over the arguments shown. A batch counts for
#: each image it asks for (``image_count``) against the per-user limit and the daily quota.
USER_ACTIVE_COUNT = (  # guild_id, user_id
    "(SELECT COALESCE(SUM(image_count), 0) FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608
    f"AND status IN ({OPEN_SQL}))"
)
GUILD_QUEUE_COUNT = (  # guild_id
    "(SELECT CAST(COALESCE(SUM(queued), 0) AS BIGINT) FROM queue_lanes WHERE guild_id = ?)"
)
TODAY_COUNT = (  # guild_id, user_id, start of the day
    "(SELECT COALESCE(SUM(image_count), 0) FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608
    "AND created_at >= ? "
    f"AND status NOT IN ({UNCOUNTED_SQL}))"
)
LIMIT_COUNTS = (
    f"SELECT {USER_ACTIVE_COUNT} AS user_active, {GUILD_QUEUE_COUNT} AS guild_queue, "
    f"{TODAY_COUNT} AS today"
)


def day_start(now: float) -> float:
    """00:00 UTC of ``now``'s day (epoch seconds count UTC days)."""
    return float(now) - float(now) % DAY


#: Active jobs whose lease ran out, oldest first; ``{lock}`` is the backend's row lock.
RECLAIM = f"""
UPDATE jobs SET lease_owner = ?, lease_expires_at = ?, updated_at = ?
WHERE lease_expires_at <= ? AND id IN (
    SELECT id FROM jobs WHERE lease_owner IS NOT NULL AND lease_expires_at <= ?
        AND status IN ({ACTIVE_SQL}) ORDER BY lease_expires_at LIMIT 100{{lock}})
RETURNING *
"""  # noqa: S608 - composed from constants
#: The claim's order, shared by both backends' claims and by queue_position: guild lanes
#: least recently served first, skipping guilds at their running cap and lanes whose every
#: job waits for a later ``run_after``. The runnable-job test is a scalar subquery, not
#: EXISTS, so PostgreSQL cannot turn it into a join over every queued job: the plan must walk
#: the lanes in order and stop at the first that qualifies, even without table statistics.
CANDIDATE_GUILDS = """
SELECT l.guild_id FROM queue_lanes l JOIN guild_load g ON g.guild_id = l.guild_id
WHERE l.provider = ? AND l.queued > 0 AND g.running < g.max_running
    AND (SELECT j.id FROM jobs j WHERE j.status = 'queued' AND j.provider = l.provider
        AND j.guild_id = l.guild_id AND (j.run_after IS NULL OR j.run_after <= ?)
        LIMIT 1) IS NOT NULL
ORDER BY l.last_served, l.guild_id
"""
USER_LANES = """
SELECT user_id FROM queue_user_lanes
WHERE provider = ? AND guild_id = ? AND queued > 0
ORDER BY last_served, user_id
"""
NEXT_JOB_OF_USER = """
SELECT id FROM jobs
WHERE status = 'queued' AND provider = ? AND guild_id = ? AND user_id = ?
    AND (run_after IS NULL OR run_after <= ?)
ORDER BY id LIMIT 1
"""
CLAIM_SET = """
UPDATE jobs SET status = 'submitting', lease_owner = ?, lease_expires_at = ?, started_at = ?,
    updated_at = ?
"""
