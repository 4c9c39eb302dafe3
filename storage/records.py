"""Everything but the queue, shared by both backends: guild settings, remix channels,
references, outputs and their bytes, lineage, the message index and the usage ledger."""

from __future__ import annotations

import logging

from bot.models import (
    GuildSettings,
    Job,
    MessageRef,
    Output,
    OutputFormat,
    Reference,
    RemixChannel,
    UsageRow,
)
from storage import rows
from storage.queries import BLOB_GRACE_SECONDS
from storage.sqlbase import SqlBase

log = logging.getLogger(__name__)


class RecordsMixin(SqlBase):
    # --- guild settings and remix channels ----------------------------------------------------
    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        """Stored settings, or ``GuildSettings.defaults(guild_id)``."""
        row = await self._fetchrow("SELECT * FROM guild_settings WHERE guild_id = ?", guild_id)
        return GuildSettings.defaults(guild_id) if row is None else rows.settings_from_row(row)

    async def save_guild_settings(self, settings: GuildSettings, *, now: float) -> None:
        values = rows.settings_values(settings)
        values["updated_at"] = float(now)
        names = list(values)
        updates = ", ".join(f"{n} = excluded.{n}" for n in names if n != "guild_id")
        async with self._transaction() as tx:
            await tx.execute(
                f"INSERT INTO guild_settings ({', '.join(names)}) "  # noqa: S608 - names are ours
                f"VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT (guild_id) DO UPDATE SET {updates}",
                *values.values(),
            )
            await tx.execute(
                "INSERT INTO guild_load (guild_id, max_running) VALUES (?, ?) "
                "ON CONFLICT (guild_id) DO UPDATE SET max_running = excluded.max_running",
                settings.guild_id,
                settings.max_guild_running,
            )

    async def add_remix_channel(self, channel: RemixChannel, *, now: float) -> None:
        await self._execute(
            "INSERT INTO remix_channels (channel_id, guild_id, style_suffix, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) DO UPDATE SET "
            "guild_id = excluded.guild_id, style_suffix = excluded.style_suffix",
            channel.channel_id,
            channel.guild_id,
            channel.style_suffix,
            float(now),
        )

    async def remove_remix_channel(self, guild_id: int, channel_id: int) -> bool:
        return await self._changed_any(
            "DELETE FROM remix_channels WHERE guild_id = ? AND channel_id = ? RETURNING channel_id",
            guild_id,
            channel_id,
        )

    async def list_remix_channels(self, guild_id: int) -> list[RemixChannel]:
        return await self._fetch_all(
            rows.remix_from_row,
            "SELECT * FROM remix_channels WHERE guild_id = ? ORDER BY channel_id",
            guild_id,
        )

    async def get_remix_channel(self, channel_id: int) -> RemixChannel | None:
        return await self._fetch_one(
            rows.remix_from_row, "SELECT * FROM remix_channels WHERE channel_id = ?", channel_id
        )

    # --- references, outputs, lineage ---------------------------------------------------------
    async def get_references(self, job_id: int) -> list[Reference]:
        return await self._fetch_all(
            rows.reference_from_row,
            "SELECT * FROM job_references WHERE job_id = ? ORDER BY position",
            job_id,
        )

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
        await self._execute(
            "UPDATE job_references SET content_hash = ?, width = ?, height = ?, url = ? "
            "WHERE job_id = ? AND position = ?",
            content_hash,
            width,
            height,
            url,
            job_id,
            position,
        )

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
        """Keep an output's bytes; ``retention_seconds=None`` means they never expire. A
        repeat of the same (job, index), as after a crash between storing and recording,
        returns the first."""
        content_hash = await self.put_blob(data, now=now)
        expires_at = None if retention_seconds is None else float(now + retention_seconds)
        # The no-op update makes RETURNING give the existing row on a repeat.
        row = await self._fetchrow(
            "INSERT INTO outputs (job_id, image_index, content_hash, size, format, width, "
            "height, nsfw, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id, image_index) DO UPDATE SET job_id = excluded.job_id "
            "RETURNING *",
            job_id,
            index,
            content_hash,
            len(data),
            OutputFormat(format).value,
            width,
            height,
            nsfw,
            float(now),
            expires_at,
        )
        assert row is not None
        return rows.output_from_row(row)

    async def get_output(self, output_id: int) -> Output | None:
        return await self._fetch_one(
            rows.output_from_row, "SELECT * FROM outputs WHERE id = ?", output_id
        )

    async def outputs_for_job(self, job_id: int) -> list[Output]:
        return await self._fetch_all(
            rows.output_from_row,
            "SELECT * FROM outputs WHERE job_id = ? ORDER BY image_index",
            job_id,
        )

    async def set_output_message(
        self, output_id: int, *, channel_id: int, message_id: int, attachment_id: int | None
    ) -> None:
        await self._execute(
            "UPDATE outputs SET channel_id = ?, message_id = ?, attachment_id = ? WHERE id = ?",
            channel_id,
            message_id,
            attachment_id,
            output_id,
        )

    async def lineage(self, output_id: int) -> list[tuple[Job, Output]]:
        """The chain from the root job's output to ``output_id`` (root first)."""
        chain: list[tuple[Job, Output]] = []
        seen: set[int] = set()
        next_id: int | None = output_id
        while next_id is not None and next_id not in seen:
            seen.add(next_id)
            output = await self.get_output(next_id)
            if output is None:
                break
            row = await self._fetchrow("SELECT * FROM jobs WHERE id = ?", output.job_id)
            if row is None:
                break
            job = rows.job_from_row(row)
            chain.append((job, output))
            next_id = job.parent_output_id
        chain.reverse()
        return chain

    async def children(self, output_id: int) -> list[Job]:
        """Jobs that edited this output (branches)."""
        return await self._fetch_all(
            rows.job_from_row,
            "SELECT * FROM jobs WHERE parent_output_id = ? ORDER BY id",
            output_id,
        )

    async def purge_expired(
        self, *, now: float, reference_retention_seconds: float | None = None
    ) -> int:
        """Delete output bytes past their retention (and unreferenced blobs).

        A blob goes when no unexpired output, no unfinished job and no job finished within
        the reference retention (``reference_retention_seconds``, default the repository's)
        still points at it (and it is past a grace period, since a reference is stored just
        before its job is queued). Returns how many were deleted."""
        keep_references = (
            self._reference_retention
            if reference_retention_seconds is None
            else reference_retention_seconds
        )
        async with self._transaction() as tx:
            found = await tx.fetch(
                "SELECT b.content_hash FROM blobs b WHERE b.created_at <= ? "
                "AND NOT EXISTS (SELECT 1 FROM outputs o WHERE o.content_hash = b.content_hash "
                "AND (o.expires_at IS NULL OR o.expires_at > ?)) "
                "AND NOT EXISTS (SELECT 1 FROM job_references r JOIN jobs j ON j.id = r.job_id "
                "WHERE r.content_hash = b.content_hash "
                "AND (j.finished_at IS NULL OR j.finished_at > ?))",
                float(now - BLOB_GRACE_SECONDS),
                float(now),
                float(now - keep_references),
            )
            hashes = [r["content_hash"] for r in found]
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                await tx.execute(
                    f"DELETE FROM blobs WHERE content_hash IN ({', '.join('?' * len(chunk))})",  # noqa: S608
                    *chunk,
                )
            if hashes:
                await self._delete_blobs(tx, hashes)
        if hashes:
            log.info("purged %d expired blob(s)", len(hashes))
        return len(hashes)

    # --- message index ------------------------------------------------------------------------
    async def index_message(self, ref: MessageRef, *, now: float) -> None:
        await self._execute(
            "INSERT INTO message_refs (message_id, channel_id, job_id, output_id, kind, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
            "channel_id = excluded.channel_id, job_id = excluded.job_id, "
            "output_id = excluded.output_id, kind = excluded.kind",
            ref.message_id,
            ref.channel_id,
            ref.job_id,
            ref.output_id,
            ref.kind.value,
            float(now),
        )

    async def lookup_message(self, message_id: int) -> MessageRef | None:
        return await self._fetch_one(
            rows.message_ref_from_row,
            "SELECT * FROM message_refs WHERE message_id = ?",
            message_id,
        )

    async def delete_message_ref(self, message_id: int) -> None:
        await self._execute("DELETE FROM message_refs WHERE message_id = ?", message_id)

    # --- usage ledger -------------------------------------------------------------------------
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
    ) -> None:
        await self._execute(
            "INSERT INTO usage_daily (guild_id, day, user_id, jobs, images, credits, cost) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, day, user_id) DO UPDATE SET "
            "jobs = usage_daily.jobs + excluded.jobs, "
            "images = usage_daily.images + excluded.images, "
            "credits = usage_daily.credits + excluded.credits, "
            "cost = usage_daily.cost + excluded.cost",
            guild_id,
            day,
            user_id,
            jobs,
            images,
            float(credits),
            float(cost),
        )

    async def usage(
        self, *, guild_id: int, since_day: str, user_id: int | None = None
    ) -> list[UsageRow]:
        sql = "SELECT * FROM usage_daily WHERE guild_id = ? AND day >= ?"
        args: list[object] = [guild_id, since_day]
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        return await self._fetch_all(rows.usage_from_row, sql + " ORDER BY day, user_id", *args)
