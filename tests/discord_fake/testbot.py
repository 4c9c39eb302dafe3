"""A tiny discord.py bot that exercises every feature of the fake (used by the self-tests)."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from bot.shards import IdentifyPacer


class RetryButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"retry:(?P<job>\d+)"):
    """A persistent button: the job id lives in the custom_id."""

    def __init__(self, job: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Retry", style=discord.ButtonStyle.primary, custom_id=f"retry:{job}"
            )
        )
        self.job = job

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RetryButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.edit_message(content=f"retrying job {self.job}")


class QuietButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"quiet:(?P<job>\d+)"):
    """Deferred update (type 6), then an edit of the original message."""

    def __init__(self, job: int) -> None:
        super().__init__(discord.ui.Button(label="Quiet", custom_id=f"quiet:{job}"))
        self.job = job

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> QuietButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.edit_original_response(content=f"quietly updated {self.job}")


class RemixModal(discord.ui.Modal, title="Remix"):
    prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
        label="New prompt", custom_id="remix_prompt", max_length=200
    )

    def __init__(self, source: discord.Message) -> None:
        super().__init__()
        self.source = source

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"remix of {self.source.id}: {self.prompt.value}", ephemeral=False
        )


class FakeTestBot(commands.Bot):
    """Commands: /ping, /edit (defer, CDN download, follow-up file, thread), /bad, Remix."""

    def __init__(self, *, intents: discord.Intents | None = None, guild_id: int = 0) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents or discord.Intents.default(),
            guild_ready_timeout=0.05,
            help_command=None,
        )
        self.guild_id = guild_id
        self.gate = asyncio.Event()
        self.errors: list[BaseException] = []
        self.seen: list[discord.Message] = []
        self.downloads: list[bytes] = []
        self.tree.on_error = self.on_tree_error  # type: ignore[method-assign]
        self._add_commands()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(RetryButton, QuietButton)
        await self.tree.sync()
        if self.guild_id:
            guild = discord.Object(self.guild_id)
            self.tree.add_command(self._guild_only(), guild=guild)
            await self.tree.sync(guild=guild)

    async def on_tree_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        self.errors.append(error.__cause__ or error)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)

    @staticmethod
    def _guild_only() -> app_commands.Command[Any, Any, Any]:
        @app_commands.command(name="status", description="Guild-only status")
        async def status(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("all good", ephemeral=True)

        return status

    def _add_commands(self) -> None:
        tree = self.tree

        @tree.command(description="Answer pong")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message(
                "pong", view=_view(RetryButton(7), QuietButton(7))
            )

        @tree.command(description="Edit an image")
        @app_commands.describe(prompt="What to change", image="The image", strength="1-10")
        async def edit(
            interaction: discord.Interaction,
            prompt: str,
            image: discord.Attachment,
            strength: int = 5,
        ) -> None:
            await interaction.response.defer(thinking=True)
            data = await image.read()
            self.downloads.append(data)
            message = await interaction.followup.send(
                f"{interaction.user.mention} {prompt} (strength {strength})",
                file=discord.File(io.BytesIO(data), filename="result.png"),
                view=_view(RetryButton(interaction.id % 1000)),
                allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
                wait=True,
            )
            channel = interaction.channel
            assert isinstance(channel, discord.TextChannel)
            thread = await channel.create_thread(name=f"edit: {prompt}"[:100], message=message)
            await thread.send("details in the thread")

        @tree.command(description="Every webhook route: edit @original, follow-ups, delete")
        async def steps(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            await interaction.edit_original_response(
                content="step 1", attachments=[discord.File(io.BytesIO(b"one"), "one.txt")]
            )
            original = await interaction.original_response()
            second = await interaction.followup.send(
                "step 2", file=discord.File(io.BytesIO(b"two"), "two.txt"), wait=True
            )
            await second.edit(content="step 2 edited")
            await interaction.followup.send("only you", ephemeral=True)
            doomed = await interaction.followup.send("doomed too", wait=True)
            await doomed.delete()
            await interaction.edit_original_response(content=f"done {original.id}")

        @tree.command(description="Misbehave on purpose")
        async def bad(interaction: discord.Interaction, kind: str) -> None:
            await self._misbehave(interaction, kind)

        job = app_commands.Group(name="job", description="Jobs")

        @job.command(name="status", description="A job's status")
        async def job_status(
            interaction: discord.Interaction,
            job_id: int,
            owner: discord.Member | None = None,
            where: discord.TextChannel | None = None,
        ) -> None:
            whose = owner.name if owner else "nobody"
            place = where.name if where else "nowhere"
            await interaction.response.send_message(f"job {job_id} of {whose} in {place}")

        tree.add_command(job)

        @tree.context_menu(name="Wave")
        async def wave(interaction: discord.Interaction, user: discord.Member) -> None:
            await interaction.response.send_message(f"waves at {user.name}")

        @tree.context_menu(name="Remix")
        async def remix(interaction: discord.Interaction, message: discord.Message) -> None:
            await interaction.response.send_modal(RemixModal(message))

    async def _misbehave(self, interaction: discord.Interaction, kind: str) -> None:
        channel_id = interaction.channel_id
        if kind == "long":
            await interaction.response.send_message("x" * 2001)
        elif kind == "six-buttons":
            await interaction.response.defer()
            row = {
                "type": 1,
                "components": [
                    {"type": 2, "style": 1, "label": str(i), "custom_id": f"b{i}"} for i in range(6)
                ],
            }
            route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
            await self.http.request(route, json={"content": "six", "components": [row]})
        elif kind == "late":
            await self.gate.wait()
            await interaction.response.defer()
        elif kind == "twice":
            await interaction.response.send_message("first")
            route = Route(
                "POST",
                "/interactions/{webhook_id}/{webhook_token}/callback",
                webhook_id=interaction.id,
                webhook_token=interaction.token,
            )
            await self.http.request(route, json={"type": 4, "data": {"content": "second"}})
        elif kind == "big-file":
            await interaction.response.defer()
            big = discord.File(io.BytesIO(b"\0" * (11 * 1024 * 1024)), filename="big.png")
            await interaction.followup.send("too big", file=big)
        elif kind == "expired":
            await interaction.response.defer()
            await self.gate.wait()
            await interaction.followup.send("too late")
        elif kind == "attach":
            await interaction.response.defer(ephemeral=True)
            channel = interaction.channel
            assert isinstance(channel, discord.TextChannel)
            await channel.send("with file", file=discord.File(io.BytesIO(b"abc"), "a.txt"))


def _view(*items: discord.ui.Item[Any]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


class ShardedTestClient(discord.AutoShardedClient):
    """An AutoShardedClient as a large bot runs one: member caching off, and IDENTIFYs paced
    by ``session_start_limit.max_concurrency`` (``pace=False``: one attempt per shard without
    waiting, then the window, to provoke the fake's refusal)."""

    def __init__(self, *, identify_window: float = 5.0, pace: bool = True, **options: Any) -> None:
        super().__init__(
            intents=discord.Intents.default(),
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            guild_ready_timeout=0.05,
            **options,
        )
        self.identify_window = identify_window
        self.pace = pace
        self.pacer: IdentifyPacer | None = None
        self.attempts: dict[int, int] = {}
        self.seen: list[discord.Message] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        shard = shard_id or 0
        self.attempts[shard] = self.attempts.get(shard, 0) + 1
        if not self.pace:
            if self.attempts[shard] > 1:
                await asyncio.sleep(self.identify_window)
            return
        if self.pacer is None:
            limits = await self.fetch_session_start_limits()
            self.pacer = IdentifyPacer(limits.max_concurrency, window=self.identify_window)
        await self.pacer.wait(shard)

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)
