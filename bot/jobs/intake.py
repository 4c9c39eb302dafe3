"""What a request must pass before it is queued: the provider's check (with the guild's
defaults applied), the server's prompt blocklist, and the limits of the member's best tier;
and its images, stored as the job's references."""

from __future__ import annotations

from bot.blocklist import screen_prompt
from bot.models import GuildSettings, JobParams, NewReference
from bot.providers.base import Provider
from storage.base import EnqueueLimits
from storage.sql import Repository

from .limits import enqueue_limits
from .requests import EditRequest


def checked_params(request: EditRequest, settings: GuildSettings, provider: Provider) -> JobParams:
    """The request's parameters with the guild's defaults, checked against ``provider``
    (raises UnsupportedRequest). A batch the provider makes one image per request is checked
    as one of those requests."""
    caps = provider.capabilities
    params = request.params
    if params.aspect_ratio is None and settings.default_aspect_ratio is not None:
        params = params.model_copy(update={"aspect_ratio": settings.default_aspect_ratio})
    if params.safety_tolerance is None and caps.safety_tolerance:
        params = params.model_copy(update={"safety_tolerance": settings.safety_tolerance})
    per_request = 1 if params.num_images > caps.max_num_images else params.num_images
    provider.check(
        request.generation_request(params.model_copy(update={"num_images": per_request}))
    )
    return params


async def store_references(
    repo: Repository, request: EditRequest, now: float
) -> tuple[NewReference, ...]:
    """The request's images as references, their bytes stored as blobs; an attachment not
    fetched yet has no bytes here (the worker stores them, :mod:`bot.jobs.attachments`)."""
    references = []
    for img in request.images:
        content_hash = await repo.put_blob(img.data, now=now) if img.fetched else img.content_hash
        fields = img.fields_for(NewReference, exclude=frozenset({"content_hash"}))
        references.append(NewReference(content_hash=content_hash, **fields))
    return tuple(references)


async def community_limits(
    repo: Repository, request: EditRequest, settings: GuildSettings
) -> EnqueueLimits:
    """Refuse a blocked prompt (PromptBlocked); the limits for this member's roles."""
    creative = await repo.get_creative_settings(request.guild_id)
    screen_prompt(request.prompt, creative.blocklist)
    return enqueue_limits(settings, creative.best_tier(request.role_ids))
