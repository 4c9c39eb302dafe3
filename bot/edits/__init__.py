"""The edit service: every request of every front end, in plain values (no discord import).

A front end turns its input into a :class:`Requester` plus a few strings, numbers and
:class:`ImageInput` values, calls one method of :class:`EditService`, and words the data it
gets back. The service is split by feature: creating jobs (:mod:`.creating`), the lineage of
outputs (:mod:`.lineage`) and reading and configuring (:mod:`.admin`), on one shared base
(:mod:`.base`) that holds the first checks of every request.
"""

from __future__ import annotations

from .admin import Admin, JobInfo, QueueSnapshot, UsageReport
from .base import Engine, ImageGone
from .creating import CreatingJobs, Fallback
from .inputs import (
    ImageInput,
    Requester,
    provider_and_model,
    provider_label,
    random_seed,
    result_seed,
)
from .lineage import History, Lineage, NoHistory, SharedResult, UndoTarget


class EditService(CreatingJobs, Lineage, Admin):
    """One service for ``/edit`` and everything around it (see the parts it is made of)."""


__all__ = [
    "EditService",
    "Engine",
    "Fallback",
    "History",
    "ImageGone",
    "ImageInput",
    "JobInfo",
    "NoHistory",
    "QueueSnapshot",
    "Requester",
    "SharedResult",
    "UndoTarget",
    "UsageReport",
    "provider_and_model",
    "provider_label",
    "random_seed",
    "result_seed",
]
