"""What operating the bot needs from storage, shared by both backends: provider pauses, the
numbers behind ``/metrics``, retention, erasure of a member's data and of a server's data."""

from __future__ import annotations

import logging

from bot.models import DataErased, ProviderPause
from storage.rows import OPEN_SQL, TERMINAL_SQL
from storage.sqlbase import SqlBase, Tx

log = logging.getLogger(__name__)

#: Hashes of the images a set of jobs used or made; ``{jobs}`` selects the jobs (alias ``j``).
_HASHES_OF = """
SELECT o.content_hash FROM outputs o JOIN jobs j ON j.id = o.job_id WHERE {jobs}
UNION SELECT r.content_hash FROM job_references r JOIN jobs j ON j.id = r.job_id WHERE {jobs}
"""
#: Delete the catalogue rows of those hashes that no live output and no reference of another
#: job still needs. Arguments: the ``{jobs}`` arguments twice, ``now``, then them once more.
_DELETE_UNNEEDED = f"""
DELETE FROM blobs WHERE content_hash IN ({_HASHES_OF})
    AND NOT EXISTS (SELECT 1 FROM outputs o WHERE o.content_hash = blobs.content_hash
        AND (o.expires_at IS NULL OR o.expires_at > ?))
    AND NOT EXISTS (SELECT 1 FROM job_references r JOIN jobs j ON j.id = r.job_id
        WHERE r.content_hash = blobs.content_hash AND NOT ({{jobs}}))
RETURNING content_hash
"""  # noqa: S608 - composed from constants


class OperationsMixin(SqlBase):
    # --- provider pauses --------------------------------------------------------------------
    async def pause_provider(
        self, provider: str, *, code: str, detail: str | None, now: float
    ) -> bool:
        """Pause ``provider`` for everyone; ``True`` only for the call that paused it (so
        exactly one process tells the operator)."""
        row = await self._fetchrow(
            "INSERT INTO provider_pauses (provider, code, detail, paused_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (provider) DO NOTHING RETURNING provider",
            provider,
            code,
            detail,
            float(now),
        )
        return row is not None

    async def resume_provider(self, provider: str) -> bool:
        """Lift a pause; ``True`` when there was one."""
        return await self._changed_any(
            "DELETE FROM provider_pauses WHERE provider = ? RETURNING provider", provider
        )

    async def provider_pauses(self) -> list[ProviderPause]:
        return await self._fetch_all(
            lambda r: ProviderPause.model_validate(dict(r)),
            "SELECT * FROM provider_pauses ORDER BY provider",
        )

    # --- registered commands ----------------------------------------------------------------
    async def command_digest(self, scope: str) -> str | None:
        """The hash of the command tree last registered for ``scope``, if any."""
        async with self._session() as tx:
            row = await tx.fetchrow("SELECT digest FROM command_sync WHERE scope = ?", scope)
        return None if row is None else str(row["digest"])

    async def set_command_digest(self, scope: str, digest: str, *, now: float) -> None:
        async with self._session() as tx:
            await tx.execute(
                "INSERT INTO command_sync (scope, digest, synced_at) VALUES (?, ?, ?) "
                "ON CONFLICT (scope) DO UPDATE SET digest = excluded.digest, "
                "synced_at = excluded.synced_at",
                scope,
                digest,
                float(now),
            )

    # --- numbers for metrics ----------------------------------------------------------------
    async def queue_depths(self) -> dict[str, int]:
        """Jobs waiting per provider."""
        found = await self._fetch(
            "SELECT provider, CAST(SUM(queued) AS BIGINT) AS n FROM queue_lanes GROUP BY provider"
        )
        return {r["provider"]: int(r["n"] or 0) for r in found}

    async def spend_by_provider(self) -> dict[str, tuple[float, float]]:
        """``(credits, cost)`` the providers reported for delivered jobs, per provider."""
        found = await self._fetch(
            "SELECT provider, COALESCE(SUM(credits), 0) AS credits, "
            "COALESCE(SUM(cost), 0) AS cost FROM jobs WHERE status = 'done' "
            "GROUP BY provider"
        )
        return {r["provider"]: (float(r["credits"]), float(r["cost"])) for r in found}

    # --- retention --------------------------------------------------------------------------
    async def retire_before(self, *, cutoff: float, now: float) -> tuple[int, int]:
        """Erase the prompts (and saved provider results) of jobs finished before ``cutoff``
        and expire outputs made before it; ``purge_expired`` then deletes the bytes. Returns
        ``(jobs, outputs)`` changed."""
        async with self._transaction() as tx:
            jobs = await tx.fetch(
                "UPDATE jobs SET prompt = '', result_json = NULL WHERE finished_at IS NOT NULL "
                "AND finished_at < ? AND (prompt <> '' OR result_json IS NOT NULL) RETURNING id",
                float(cutoff),
            )
            outputs = await tx.fetch(
                "UPDATE outputs SET expires_at = ? WHERE created_at < ? "
                "AND (expires_at IS NULL OR expires_at > ?) RETURNING id",
                float(now),
                float(cutoff),
                float(now),
            )
        return len(jobs), len(outputs)

    # --- erasure ----------------------------------------------------------------------------
    async def erase_user(self, user_id: int, *, guild_id: int | None, now: float) -> DataErased:
        """Erase a member's prompts and images (in one server, or everywhere): their finished
        jobs keep only their numbers, their outputs expire, and bytes nobody else needs are
        deleted at once. Unfinished jobs are left alone and counted."""
        where = f"j.user_id = ? AND j.status IN ({TERMINAL_SQL})"
        args: list[object] = [user_id]
        if guild_id is not None:
            where += " AND j.guild_id = ?"
            args.append(guild_id)
        async with self._transaction() as tx:
            running = await tx.fetchrow(
                f"SELECT COUNT(*) AS n FROM jobs j WHERE j.user_id = ? "  # noqa: S608
                f"AND j.status IN ({OPEN_SQL})"
                + (" AND j.guild_id = ?" if guild_id is not None else ""),
                *args,
            )
            erased = await tx.fetch(
                f"UPDATE jobs SET prompt = '', result_json = NULL WHERE id IN "  # noqa: S608
                f"(SELECT j.id FROM jobs j WHERE {where}) RETURNING id",
                *args,
            )
            await tx.execute(
                f"UPDATE outputs SET expires_at = ? WHERE job_id IN "  # noqa: S608
                f"(SELECT j.id FROM jobs j WHERE {where}) "
                "AND (expires_at IS NULL OR expires_at > ?)",
                float(now),
                *args,
                float(now),
            )
            await tx.execute(
                f"UPDATE job_references SET url = NULL WHERE job_id IN "  # noqa: S608
                f"(SELECT j.id FROM jobs j WHERE {where})",
                *args,
            )
            images = await self._delete_unneeded(tx, where, args, now)
        count = 0 if running is None else int(running["n"])
        return DataErased(jobs=len(erased), images=images, still_running=count)

    async def _delete_unneeded(self, tx: Tx, where: str, args: list[object], now: float) -> int:
        found = await tx.fetch(_DELETE_UNNEEDED.format(jobs=where), *args, *args, float(now), *args)
        hashes = [r["content_hash"] for r in found]
        if hashes:
            await self._delete_blobs(tx, hashes)
        return len(hashes)

    # --- servers the bot left ---------------------------------------------------------------
    async def mark_guild_departed(self, guild_id: int, *, now: float) -> None:
        """Remember when the bot left a server (the first time, if told twice)."""
        await self._execute(
            "INSERT INTO departed_guilds (guild_id, left_at) VALUES (?, ?) "
            "ON CONFLICT (guild_id) DO NOTHING",
            guild_id,
            float(now),
        )

    async def mark_guild_present(self, guild_id: int) -> None:
        await self._execute("DELETE FROM departed_guilds WHERE guild_id = ?", guild_id)

    async def departed_guilds(self, *, left_before: float) -> list[int]:
        found = await self._fetch(
            "SELECT guild_id FROM departed_guilds WHERE left_at < ? ORDER BY guild_id",
            float(left_before),
        )
        return [int(r["guild_id"]) for r in found]

    async def guilds_with_data(self) -> list[int]:
        """Every server anything is stored for."""
        found = await self._fetch(
            "SELECT guild_id FROM guild_load UNION SELECT guild_id FROM guild_settings "
            "UNION SELECT guild_id FROM remix_channels ORDER BY guild_id"
        )
        return [int(r["guild_id"]) for r in found]

    async def delete_guild_data(self, guild_id: int, *, now: float) -> DataErased | None:
        """Delete everything stored for a server; ``None`` (nothing deleted) while it still
        has unfinished jobs: cancel them first."""
        async with self._transaction() as tx:
            await self._lock_guild_queue(tx, guild_id)
            busy = await tx.fetchrow(
                f"SELECT COUNT(*) AS n FROM jobs WHERE guild_id = ? AND status IN ({OPEN_SQL})",  # noqa: S608
                guild_id,
            )
            if busy is not None and int(busy["n"]):
                return None
            hashes = await tx.fetch(_HASHES_OF.format(jobs="j.guild_id = ?"), guild_id, guild_id)
            jobs = await tx.fetch("DELETE FROM jobs WHERE guild_id = ? RETURNING id", guild_id)
            for table in (
                "guild_settings",
                "remix_channels",
                "usage_daily",
                "queue_user_lanes",
                "queue_lanes",
                "guild_load",
                "departed_guilds",
            ):
                await tx.execute(f"DELETE FROM {table} WHERE guild_id = ?", guild_id)  # noqa: S608
            deleted: list[str] = []
            candidates = [r["content_hash"] for r in hashes]
            for start in range(0, len(candidates), 500):
                chunk = candidates[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                found = await tx.fetch(
                    f"DELETE FROM blobs WHERE content_hash IN ({marks}) "  # noqa: S608
                    "AND NOT EXISTS (SELECT 1 FROM outputs o "
                    "WHERE o.content_hash = blobs.content_hash) "
                    "AND NOT EXISTS (SELECT 1 FROM job_references r "
                    "WHERE r.content_hash = blobs.content_hash) RETURNING content_hash",
                    *chunk,
                )
                deleted += [r["content_hash"] for r in found]
            if deleted:
                await self._delete_blobs(tx, deleted)
        log.info(
            "deleted the data of server %d: %d jobs, %d images", guild_id, len(jobs), len(deleted)
        )
        return DataErased(jobs=len(jobs), images=len(deleted))
