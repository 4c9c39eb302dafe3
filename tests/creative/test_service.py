"""The creative service on real storage (SQLite and PostgreSQL): the resolver's precedence
and origins, server maxima, knobs per provider, styles, preferences, tiers and picks."""

from __future__ import annotations

import pytest

from bot.access import NotAllowed
from bot.clock import ManualClock
from bot.creative.resolve import OptionRefused
from bot.creative.service import CreativeService, reply_number
from bot.creative.styles import PRESETS, StyleError
from bot.creative_models import Origin, RequestOptions
from bot.models import (
    AspectRatio,
    GuildSettings,
    IteratePolicy,
    JobKind,
    JobParams,
    JobStatus,
    NewJob,
    OutputFormat,
)
from bot.providers import CAPABILITIES
from bot.providers.errors import UnsupportedKnob
from storage.sql import Repository
from tests.storage.conftest import T0

G, U = 1, 10


def service(repo: Repository, default: str = "aimlapi") -> CreativeService:
    return CreativeService(repo, ManualClock(T0), catalog=CAPABILITIES, default_provider=default)


async def test_precedence_option_member_server_provider(repo: Repository) -> None:
    svc = service(repo)
    await repo.save_guild_settings(
        GuildSettings(guild_id=G, default_aspect_ratio=AspectRatio.R4_3, max_user_active=4), now=T0
    )
    await svc.update_settings(G, {"default_count": 2, "default_style": "night"}, manage_guild=True)
    plain = await svc.resolve(G, U, RequestOptions(prompt="a cat"))
    assert (plain.params.num_images, plain.params.aspect_ratio) == (2, AspectRatio.R4_3)
    assert plain.style == "night" and plain.params.guidance is None
    assert plain.origins["count"] is Origin.SERVER
    assert plain.origins["guidance"] is Origin.PROVIDER
    assert plain.origins["provider"] is Origin.PROVIDER  # the deployment's default

    await svc.set_prefs(G, U, {"count": 3, "aspect_ratio": "16:9", "guidance": 4.0})
    member = await svc.resolve(G, U, RequestOptions(prompt="a cat"))
    assert (member.params.num_images, member.params.aspect_ratio) == (3, AspectRatio.R16_9)
    assert member.params.guidance == 4.0 and member.origins["guidance"] is Origin.MEMBER

    option = await svc.resolve(
        G,
        U,
        RequestOptions(prompt="a cat", count=1, aspect_ratio=AspectRatio.R1_1, style="sticker"),
    )
    assert option.params.num_images == 1 and option.origins["count"] is Origin.OPTION
    assert option.style == "sticker" and option.origins["style"] is Origin.OPTION
    bare = await svc.resolve(G, U, RequestOptions(prompt="a cat", style="none"))
    assert bare.prompt == "a cat" and bare.style is None
    assert bare.origins["style"] is Origin.OPTION
    # What Info shows: the member's words, the style, the full prompt, and the origins.
    assert option.prompt == f"a cat. {PRESETS['sticker'].prompt}"
    assert option.params.request_prompt == "a cat" and option.params.style == "sticker"
    assert option.params.origins["aspect_ratio"] == "option"


async def test_server_maxima_refuse_options_and_cap_preferences(repo: Repository) -> None:
    svc = service(repo)
    await repo.save_guild_settings(GuildSettings(guild_id=G, max_user_active=4), now=T0)
    await svc.set_prefs(G, U, {"count": 4, "safety_tolerance": 2})
    await svc.update_settings(G, {"max_count": 2, "max_safety_tolerance": 1}, manage_guild=True)
    with pytest.raises(OptionRefused, match="1 to 2 images") as too_many:
        await svc.resolve(G, U, RequestOptions(prompt="x", count=3))
    assert too_many.value.option == "count"
    with pytest.raises(OptionRefused, match="at most 1") as too_loose:
        await svc.resolve(G, U, RequestOptions(prompt="x", safety_tolerance=3))
    assert too_loose.value.option == "safety_tolerance"
    capped = await svc.resolve(G, U, RequestOptions(prompt="x"))
    assert capped.params.num_images == 2 and capped.params.safety_tolerance == 1
    # The active-job limit bounds a batch too (a batch counts once per image).
    await repo.save_guild_settings(GuildSettings(guild_id=G, max_user_active=1), now=T0)
    assert (await svc.resolve(G, U, RequestOptions(prompt="x"))).params.num_images == 1


async def test_members_choose_the_provider_only_when_allowed(repo: Repository) -> None:
    svc = service(repo)
    with pytest.raises(OptionRefused, match="does not let members choose"):
        await svc.resolve(G, U, RequestOptions(prompt="x", provider="wavespeed"))
    with pytest.raises(OptionRefused, match="does not let members choose"):
        await svc.set_prefs(G, U, {"provider": "wavespeed"})
    await svc.update_settings(G, {"members_choose_provider": True}, manage_guild=True)
    await svc.set_prefs(G, U, {"provider": "modelslab"})
    assert (await svc.resolve(G, U, RequestOptions(prompt="x"))).provider == "modelslab"
    chosen = await svc.resolve(G, U, RequestOptions(prompt="x", provider="wavespeed"))
    assert chosen.provider == "wavespeed" and chosen.origins["provider"] is Origin.OPTION
    with pytest.raises(OptionRefused, match="not available here"):
        await svc.resolve(G, U, RequestOptions(prompt="x", provider="nowhere"))


async def test_knobs_are_refused_where_the_provider_does_not_take_them(repo: Repository) -> None:
    svc = service(repo, default="wavespeed")
    with pytest.raises(UnsupportedKnob) as guidance:
        await svc.resolve(G, U, RequestOptions(prompt="x", guidance=15))
    assert guidance.value.knob == "guidance" and guidance.value.provider == "wavespeed"
    assert guidance.value.alternatives == ("aimlapi", "modelslab", "fal")
    assert "from 1 to 10" in guidance.value.user_message
    ml = service(repo, default="modelslab")
    with pytest.raises(UnsupportedKnob) as safety:
        await ml.resolve(G, U, RequestOptions(prompt="x", safety_tolerance=1))
    assert safety.value.knob == "safety_tolerance"
    assert safety.value.alternatives == ("aimlapi", "bfl", "fal", "replicate")
    # A stored preference the provider cannot take is dropped, not refused.
    await ml.set_prefs(G, U, {"safety_tolerance": 2})
    dropped = await ml.resolve(G, U, RequestOptions(prompt="x"))
    assert dropped.params.safety_tolerance is None
    assert dropped.origins["safety_tolerance"] is Origin.PROVIDER
    with pytest.raises(UnsupportedKnob):
        await svc.set_prefs(G, U, {"guidance": 15})
    ok = await svc.resolve(G, U, RequestOptions(prompt="x", output_format=OutputFormat.JPEG))
    assert ok.params.output_format is OutputFormat.JPEG


async def test_server_styles_and_the_remix_suffix(repo: Repository) -> None:
    svc = service(repo)
    with pytest.raises(NotAllowed):
        await svc.add_style(G, "neon", "Neon lights.", by_user_id=U, manage_guild=False)
    added = await svc.add_style(
        G, " Neon Noir ", "In neon noir colors", by_user_id=U, manage_guild=True
    )
    assert added.name == "neon-noir"
    with pytest.raises(StyleError, match="already has a style"):
        await svc.add_style(G, "neon-noir", "Other", by_user_id=U, manage_guild=True)
    with pytest.raises(StyleError, match="built-in"):
        await svc.add_style(G, "night", "Other", by_user_id=U, manage_guild=True)
    await svc.add_block_rule(G, "gore", manage_guild=True)
    with pytest.raises(StyleError, match="blocks"):
        await svc.add_style(G, "bad", "Lots of gore", by_user_id=U, manage_guild=True)
    listed = await svc.list_styles(G)
    assert [s.name for s in listed.server] == ["neon-noir"] and len(listed.presets) == 11
    assert [c.name for c in await svc.search_styles(G, "neon")] == ["neon-noir"]

    styled = await svc.resolve(
        G, U, RequestOptions(prompt="a street", style="neon-noir"), remix_suffix="film grain"
    )
    assert styled.prompt == "a street. In neon noir colors, film grain"
    remix_only = await svc.resolve(G, U, RequestOptions(prompt="a street"), remix_suffix="ink")
    assert remix_only.prompt == "a street, ink" and remix_only.style is None
    with pytest.raises(
        OptionRefused, match=r"no style called `neon-nior` here\. Did you mean neon-noir\?"
    ):
        await svc.resolve(G, U, RequestOptions(prompt="x", style="neon-nior"))

    await svc.remove_style(G, "neon-noir", manage_guild=True)
    with pytest.raises(StyleError, match="no style called"):
        await svc.remove_style(G, "neon-noir", manage_guild=True)
    with pytest.raises(StyleError, match="cannot be removed"):
        await svc.remove_style(G, "night", manage_guild=True)


async def test_preferences_are_validated_and_cleared(repo: Repository) -> None:
    svc = service(repo)
    with pytest.raises(OptionRefused, match="no preference called colour"):
        await svc.set_prefs(G, U, {"colour": "red"})
    with pytest.raises(OptionRefused, match="aspect_ratio"):
        await svc.set_prefs(G, U, {"aspect_ratio": "5:1"})
    with pytest.raises(OptionRefused, match="no style called"):
        await svc.set_prefs(G, U, {"style": "missing"})
    prefs = await svc.set_prefs(G, U, {"style": "Night", "ping_when_done": True})
    assert prefs.style == "night" and prefs.ping_when_done
    assert (await svc.resolve(G, U, RequestOptions(prompt="x"))).ping_when_done
    cleared = await svc.set_prefs(G, U, {}, clear=["style"])
    assert cleared.style is None and cleared.ping_when_done
    assert await svc.get_prefs(G, U) == cleared


async def test_tiers_and_blocklist_administration(repo: Repository) -> None:
    svc = service(repo)
    with pytest.raises(OptionRefused, match="daily quota, an active-job limit"):
        await svc.set_tier(G, 5, daily_quota=None, max_user_active=None, manage_guild=True)
    await svc.set_tier(G, 5, daily_quota=100, max_user_active=None, manage_guild=True)
    await svc.set_tier(G, 6, daily_quota=None, max_user_active=8, manage_guild=True)
    settings = await svc.get_settings(G)
    best = settings.best_tier([5, 6, 7])
    assert best is not None and (best.daily_quota, best.max_user_active) == (100, 8)
    assert settings.best_tier([7]) is None
    assert await svc.remove_tier(G, 5, manage_guild=True)
    assert not await svc.remove_tier(G, 5, manage_guild=True)
    await svc.add_block_rule(G, r"sp[a4]m+", regex=True, manage_guild=True)
    assert await svc.remove_block_rule(G, r"sp[a4]m+", manage_guild=True)
    assert not await svc.remove_block_rule(G, "never", manage_guild=True)
    with pytest.raises(OptionRefused, match="cannot be above"):
        await svc.update_settings(G, {"default_count": 4, "max_count": 2}, manage_guild=True)


async def test_pick_refusals(repo: Repository) -> None:
    svc = service(repo)
    job = await repo.enqueue(
        NewJob(
            guild_id=G,
            channel_id=2,
            user_id=U,
            kind=JobKind.IMAGINE,
            prompt="p",
            provider="aimlapi",
            params=JobParams(num_images=2),
        ),
        now=T0,
    )
    with pytest.raises(OptionRefused, match="not finished"):
        await svc.pick(job.id, 1, by_user_id=U)
    for status in (JobStatus.SUBMITTING, JobStatus.DELIVERING, JobStatus.DONE):
        await repo.transition(job.id, expected=list(JobStatus), to=status, now=T0)
    await repo.add_output(
        job.id,
        index=1,
        data=b"img",
        format=OutputFormat.PNG,
        width=1,
        height=1,
        nsfw=False,
        now=T0,
        retention_seconds=None,
    )
    with pytest.raises(OptionRefused, match="no image 1 \\(it has 2\\)"):
        await svc.pick(job.id, 1, by_user_id=U)
    report = await svc.batch_report(job.id)
    assert report.delivered == (2,) and [f.number for f in report.failed] == [1]
    await repo.save_guild_settings(
        GuildSettings(guild_id=G, iterate_policy=IteratePolicy.REQUESTER), now=T0
    )
    with pytest.raises(NotAllowed):
        await svc.pick(job.id, 2, by_user_id=99)
    picked = await svc.pick(job.id, 2, by_user_id=U)
    assert picked.output.number == 1 and picked.source.number == 2


async def test_the_server_safety_setting_is_the_members_ceiling(repo: Repository) -> None:
    svc = service(repo)
    await repo.save_guild_settings(GuildSettings(guild_id=G, safety_tolerance=4), now=T0)
    assert (await svc.resolve(G, U, RequestOptions(prompt="x"))).params.safety_tolerance == 4
    stricter = await svc.resolve(G, U, RequestOptions(prompt="x", safety_tolerance=1))
    assert stricter.params.safety_tolerance == 1
    with pytest.raises(OptionRefused, match="at most 4"):
        await svc.resolve(G, U, RequestOptions(prompt="x", safety_tolerance=5))
    await svc.update_settings(G, {"max_safety_tolerance": 5}, manage_guild=True)
    looser = await svc.resolve(G, U, RequestOptions(prompt="x", safety_tolerance=5))
    assert looser.params.safety_tolerance == 5


def test_a_reply_may_start_with_the_image_number() -> None:
    assert reply_number("2: make it night", 4) == (2, "make it night")
    assert reply_number(" #3 - add snow", 4) == (3, "add snow")
    assert reply_number("5: too far", 4) == (None, "5: too far")
    assert reply_number("make 2 cats", 4) == (None, "make 2 cats")


async def test_only_a_chosen_provider_pins_the_request(repo: Repository) -> None:
    svc = service(repo)

    async def request_provider(options: RequestOptions) -> str | None:
        resolved = await svc.resolve(G, U, options)
        made = svc.edit_request(resolved, guild_id=G, channel_id=2, user_id=U, kind=JobKind.IMAGINE)
        return made.provider

    # Nobody chose: the deployment's default is left to routing.
    assert await request_provider(RequestOptions(prompt="x")) is None
    await svc.update_settings(G, {"members_choose_provider": True}, manage_guild=True)
    assert await request_provider(RequestOptions(prompt="x", provider="wavespeed")) == "wavespeed"
    await repo.save_guild_settings(GuildSettings(guild_id=G, provider="modelslab"), now=T0)
    assert await request_provider(RequestOptions(prompt="x")) == "modelslab"
