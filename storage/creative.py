"""Batch items, server styles, member preferences, a server's creative settings and picks,
shared by both backends."""

from __future__ import annotations

from collections.abc import Sequence

from bot.creative_models import (
    BatchItem,
    BatchItemStatus,
    CreativeSettings,
    MemberPrefs,
    Style,
)
from bot.models import Job, JobKind, NewJob, Output
from storage import rows
from storage.queries import JOB_INSERT, JOB_VALUES, job_values
from storage.sqlbase import SqlBase

_ITEM_FIELDS = frozenset(
    {
        "status",
        "provider_handle",
        "result_json",
        "error_code",
        "error_message",
        "error_text",
        "seed",
    }
)


def _item(row: rows.Row) -> BatchItem:
    data = dict(row)
    data["index"] = data.pop("item_index")
    data.pop("updated_at", None)
    return BatchItem.model_validate(data)


class CreativeRecordsMixin(SqlBase):
    # --- batch items --------------------------------------------------------------------------
    async def init_batch_items(
        self, job_id: int, seeds: Sequence[int | None], *, now: float
    ) -> list[BatchItem]:
        """Create the job's items (once: a repeat keeps the saved ones) and return them all."""
        async with self._transaction() as tx:
            await tx.executemany(
                "INSERT INTO batch_items (job_id, item_index, seed, status, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (job_id, item_index) DO NOTHING",
                [(job_id, index, seed, float(now)) for index, seed in enumerate(seeds)],
            )
            found = await tx.fetch(
                "SELECT * FROM batch_items WHERE job_id = ? ORDER BY item_index", job_id
            )
        return [_item(r) for r in found]

    async def batch_items(self, job_id: int) -> list[BatchItem]:
        return await self._fetch_all(
            _item, "SELECT * FROM batch_items WHERE job_id = ? ORDER BY item_index", job_id
        )

    async def update_batch_item(
        self, job_id: int, index: int, *, now: float, **fields: object
    ) -> BatchItem | None:
        """Set an item's columns (status, provider_handle, result_json, error_code,
        error_message, error_text, seed)."""
        unknown = set(fields) - _ITEM_FIELDS
        if unknown:
            raise TypeError(f"cannot set batch item column(s) {sorted(unknown)}")
        values = {k: (v.value if isinstance(v, BatchItemStatus) else v) for k, v in fields.items()}
        values["updated_at"] = float(now)
        sets = ", ".join(f"{name} = ?" for name in values)
        return await self._fetch_one(
            _item,
            f"UPDATE batch_items SET {sets} WHERE job_id = ? AND item_index = ? "  # noqa: S608
            "RETURNING *",
            *values.values(),
            job_id,
            index,
        )

    # --- server styles ------------------------------------------------------------------------
    async def add_guild_style(
        self, guild_id: int, name: str, prompt: str, *, created_by: int, now: float
    ) -> bool:
        """Store a style; ``False`` (nothing written) when the name is taken."""
        return await self._changed_any(
            "INSERT INTO guild_styles (guild_id, name, prompt, created_by, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, name) DO NOTHING RETURNING name",
            guild_id,
            name,
            prompt,
            created_by,
            float(now),
        )

    async def remove_guild_style(self, guild_id: int, name: str) -> bool:
        return await self._changed_any(
            "DELETE FROM guild_styles WHERE guild_id = ? AND name = ? RETURNING name",
            guild_id,
            name,
        )

    async def list_guild_styles(self, guild_id: int) -> list[Style]:
        found = await self._fetch(
            "SELECT name, prompt FROM guild_styles WHERE guild_id = ? ORDER BY name", guild_id
        )
        return [Style(name=r["name"], prompt=r["prompt"]) for r in found]

    # --- member preferences and creative settings ---------------------------------------------
    async def get_member_prefs(self, guild_id: int, user_id: int) -> MemberPrefs:
        row = await self._fetchrow(
            "SELECT prefs FROM member_prefs WHERE guild_id = ? AND user_id = ?",
            guild_id,
            user_id,
        )
        return MemberPrefs() if row is None else MemberPrefs.model_validate_json(row["prefs"])

    async def save_member_prefs(
        self, guild_id: int, user_id: int, prefs: MemberPrefs, *, now: float
    ) -> None:
        """Store ``prefs``; all-empty preferences delete the row."""
        async with self._session() as tx:
            if prefs == MemberPrefs():
                await tx.execute(
                    "DELETE FROM member_prefs WHERE guild_id = ? AND user_id = ?",
                    guild_id,
                    user_id,
                )
                return
            await tx.execute(
                "INSERT INTO member_prefs (guild_id, user_id, prefs, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, user_id) DO UPDATE SET "
                "prefs = excluded.prefs, updated_at = excluded.updated_at",
                guild_id,
                user_id,
                prefs.model_dump_json(exclude_defaults=True),
                float(now),
            )

    async def get_creative_settings(self, guild_id: int) -> CreativeSettings:
        row = await self._fetchrow(
            "SELECT settings FROM guild_creative WHERE guild_id = ?", guild_id
        )
        if row is None:
            return CreativeSettings.defaults(guild_id)
        return CreativeSettings.model_validate_json(row["settings"])

    async def save_creative_settings(self, settings: CreativeSettings, *, now: float) -> None:
        await self._execute(
            "INSERT INTO guild_creative (guild_id, settings, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET settings = excluded.settings, "
            "updated_at = excluded.updated_at",
            settings.guild_id,
            settings.model_dump_json(),
            float(now),
        )

    # --- picks --------------------------------------------------------------------------------
    async def record_pick(
        self, source: Output, job: NewJob, *, now: float
    ) -> tuple[Job, Output, bool]:
        """Record ``job`` (kind ``pick``, a child of ``source``) as done, with an output that
        shares ``source``'s bytes, in one transaction. An image is picked once: when it was
        picked before (even by a racing request), that pick is returned with ``False``."""
        assert job.kind is JobKind.PICK and job.parent_output_id == source.id
        done = JOB_VALUES.replace("'queued'", "'done'")
        async with self._transaction() as tx:
            row = await tx.fetchrow(
                JOB_INSERT.format(
                    source=f"{done} ON CONFLICT (parent_output_id) WHERE kind = 'pick' DO NOTHING"
                ),
                *job_values(job, now),
            )
            if row is None:
                found = await tx.fetchrow(
                    "SELECT * FROM jobs WHERE parent_output_id = ? AND kind = 'pick'", source.id
                )
                made_row = await tx.fetchrow(
                    "SELECT * FROM outputs WHERE job_id = ? AND image_index = 0",
                    None if found is None else found["id"],
                )
                assert found is not None and made_row is not None
                return rows.job_from_row(found), rows.output_from_row(made_row), False
            row = await tx.fetchrow(
                "UPDATE jobs SET finished_at = ? WHERE id = ? RETURNING *", float(now), row["id"]
            )
            assert row is not None
            made = await tx.fetchrow(
                "INSERT INTO outputs (job_id, image_index, content_hash, size, format, width, "
                "height, nsfw, created_at, expires_at) VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING *",
                row["id"],
                source.content_hash,
                source.size,
                source.format.value,
                source.width,
                source.height,
                source.nsfw,
                float(now),
                source.expires_at,
            )
            assert made is not None
        return rows.job_from_row(row), rows.output_from_row(made), True
