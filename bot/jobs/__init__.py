"""The job engine: takes edit requests from any front end, queues them durably and fairly,
runs them through a provider, and reports progress as events.

Front ends build an :class:`EditRequest`, ``await engine.submit(request)`` and render the
:class:`JobEvent` values their sink receives; results are posted by a :class:`Deliverer`.
"""

from .engine import JobEngine
from .errors import AlreadyFinished, JobNotFound, LimitReached, NotAllowed, UnknownProvider
from .events import (
    EventBus,
    EventSink,
    JobCancelled,
    JobDelayed,
    JobDone,
    JobEvent,
    JobExpired,
    JobFailed,
    JobFallback,
    JobProgress,
    JobQueued,
    JobStarted,
    ResultImage,
)
from .limits import EngineConfig, JobRetryPolicy, ProviderLimits
from .requests import Deliverer, EditRequest, OutputInfo, ReferenceInput, probe_output

__all__ = [
    "AlreadyFinished",
    "Deliverer",
    "EditRequest",
    "EngineConfig",
    "EventBus",
    "EventSink",
    "JobCancelled",
    "JobDelayed",
    "JobDone",
    "JobEngine",
    "JobEvent",
    "JobExpired",
    "JobFailed",
    "JobFallback",
    "JobNotFound",
    "JobProgress",
    "JobQueued",
    "JobRetryPolicy",
    "JobStarted",
    "LimitReached",
    "NotAllowed",
    "OutputInfo",
    "ProviderLimits",
    "ReferenceInput",
    "ResultImage",
    "UnknownProvider",
    "probe_output",
]
