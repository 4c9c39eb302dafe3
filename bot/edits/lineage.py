"""Lineage: which output a message shows, the history of an output, Undo and sharing.

Outputs form a tree (every job may edit an earlier output). **Undo** re-posts the parent
output as the new tip: the new message is indexed as a result of the *parent's* job and
output, so a reply to it continues from the parent and its buttons act on the parent.
Nothing is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import history
from bot.access import check_can_iterate, check_same_server
from bot.errors import BadRequest
from bot.history import HistoryTree
from bot.i18n import t
from bot.models import Job, MessageKind, MessageRef, Output

from .base import EditBase, ImageGone, check_not_erased
from .inputs import Requester


class NoHistory(BadRequest, code="no_history"):
    """A history, Undo or Share asked of something that has none (or is not ours)."""


NOT_A_RESULT = t("errors.edit.not_a_result")


@dataclass(frozen=True)
class History:
    """The chain of edits to one output and its contact sheet (PNG)."""

    tree: HistoryTree
    sheet: bytes


@dataclass(frozen=True)
class UndoTarget:
    """The parent output to re-post."""

    job: Job  # the parent output's job: the buttons and the index act on it
    output: Output
    data: bytes
    step: int  # its step number in the chain


@dataclass(frozen=True)
class SharedResult:
    """A result to post to the gallery; ``data`` is ``None`` when its bytes were purged."""

    job: Job
    output: Output
    data: bytes | None
    gallery_channel_id: int


class Lineage(EditBase):
    async def result_of(self, message_id: int) -> MessageRef | None:
        """The index entry when ``message_id`` is one of the bot's results with an output."""
        ref = await self.message_ref(message_id)
        if ref is None or ref.kind is not MessageKind.RESULT or ref.output_id is None:
            return None
        return ref

    async def result_output(self, who: Requester, message_id: int) -> int:
        """The output result message ``message_id`` shows, refused unless it is one of ours
        from ``who``'s server."""
        ref = await self.result_of(message_id)
        if ref is None or ref.output_id is None:
            raise NoHistory(NOT_A_RESULT)
        await self.owned_job(who, ref.job_id)
        return ref.output_id

    async def output_of(self, who: Requester, job_id: int, message_id: int | None) -> int:
        """The output a result message shows (an Undo re-post shows its parent's), else the
        job's first output."""
        await self.owned_job(who, job_id)
        if message_id is not None:
            ref = await self.result_of(message_id)
            if ref is not None and ref.output_id is not None and ref.job_id == job_id:
                return ref.output_id
        outputs = await self.repo.outputs_for_job(job_id)
        if not outputs:
            raise NoHistory(t("errors.edit.no_history_output", job_id=job_id))
        return outputs[0].id

    async def history(self, who: Requester, output_id: int) -> History:
        """The chain (with branch markers) to ``output_id`` and its contact sheet."""
        job, _output = await self.owned_output(who, output_id)
        check_not_erased(job)
        tree = await history.load_tree(self.repo, output_id)
        if tree is None:
            raise NoHistory(t("errors.edit.no_history"))
        return History(tree=tree, sheet=await history.contact_sheet(tree))

    async def undo(self, who: Requester, job_id: int) -> UndoTarget:
        """The parent output of ``job_id``'s result, checked and with its bytes."""
        job = await self.owned_job(who, job_id)
        check_not_erased(job)
        settings = await self.allowed(who)
        check_can_iterate(settings, job, user_id=who.user_id, moderator=who.moderator)
        if job.parent_output_id is None:
            raise BadRequest(t("errors.edit.nothing_to_undo"))
        output = await self.repo.get_output(job.parent_output_id)
        parent = await self.repo.get_job(output.job_id) if output is not None else None
        data = await self.repo.get_blob(output.content_hash) if output is not None else None
        if parent is not None:
            check_not_erased(parent)
        if output is None or parent is None or data is None:
            raise ImageGone(t("errors.edit.previous_gone"))
        lineage = await self.repo.lineage(output.id)
        return UndoTarget(job=parent, output=output, data=data, step=max(1, len(lineage)))

    async def index_result(self, *, message_id: int, channel_id: int, output: Output) -> None:
        """Make ``message_id`` (an Undo re-post) a result of ``output``: replies continue it."""
        await self.repo.index_message(
            MessageRef(
                message_id=message_id,
                channel_id=channel_id,
                job_id=output.job_id,
                output_id=output.id,
                kind=MessageKind.RESULT,
            ),
            now=self.clock.now(),
        )

    async def gallery_of(self, guild_id: int) -> int | None:
        return (await self.repo.get_guild_settings(guild_id)).gallery_channel_id

    async def shareable(
        self, guild_id: int, message_id: int, *, job_id: int | None = None
    ) -> SharedResult:
        """The result ``message_id`` shows, checked for the gallery of ``guild_id``; with
        ``job_id`` (a Share button's), that job is checked first and must be the message's."""
        if job_id is not None:
            check_same_server(await self.job(job_id), guild_id=guild_id)
        ref = await self.result_of(message_id)
        if ref is not None and job_id is not None and ref.job_id != job_id:
            ref = None
        output = await self.repo.get_output(ref.output_id) if ref and ref.output_id else None
        job = await self.repo.get_job(output.job_id) if output is not None else None
        if output is None or job is None:
            raise NoHistory(t("errors.edit.not_shareable"))
        check_same_server(job, guild_id=guild_id)
        gallery = await self.gallery_of(guild_id)
        if gallery is None:
            raise NoHistory(t("errors.edit.no_gallery"))
        if output.nsfw:
            raise NoHistory(t("errors.edit.nsfw_not_shared"))
        data = await self.repo.get_blob(output.content_hash)
        return SharedResult(job=job, output=output, data=data, gallery_channel_id=gallery)
