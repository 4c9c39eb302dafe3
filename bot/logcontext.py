"""The job a task is working on, named in every log line that task writes.

The engine binds a job to each job's task (:func:`bind_job`); the :class:`JobContext` filter
the logging setup installs (:mod:`bot.ops.logs`) adds its fields to each record, so nothing
has to pass them around.
"""

from __future__ import annotations

import contextvars
import logging

from bot.models import Job

#: The fields of the job a task is working on (set per task by :func:`bind_job`).
_JOB_FIELDS: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "kontext_job", default=None
)


def bind_job(job: Job) -> None:
    """Log lines of the current task (and the tasks it starts) now name this job."""
    _JOB_FIELDS.set(
        {
            "job_id": job.id,
            "guild_id": job.guild_id,
            "user_id": job.user_id,
            "provider": job.provider,
        }
    )


class JobContext(logging.Filter):
    """Adds the bound job's fields to each record (a field given in ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _JOB_FIELDS.get()
        if fields:
            for name, value in fields.items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True
