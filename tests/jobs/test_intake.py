"""Intake: the server's blocklist refuses before anything is stored; role tiers raise limits."""

from __future__ import annotations

import pytest

from bot.blocklist import PromptBlocked, make_rule
from bot.creative_models import CreativeSettings, Tier
from bot.jobs import LimitReached
from bot.models import GuildSettings

from .conftest import T0, Harness, edit


async def test_a_blocked_prompt_queues_nothing(harness: Harness) -> None:
    await harness.repo.save_creative_settings(
        CreativeSettings(guild_id=1, blocklist=(make_rule("forbidden", is_regex=False),)),
        now=T0,
    )
    engine = harness.engine()
    with pytest.raises(PromptBlocked):
        await engine.submit(edit("draw the FORBIDDEN thing"))
    assert await harness.repo.count_queued() == 0
    assert harness.events == []
    await engine.submit(edit("draw a thing"))  # other guilds' rules and clean prompts pass
    await engine.submit(edit("draw the forbidden thing", guild=2))


async def test_the_best_role_tier_raises_the_member_limits(harness: Harness) -> None:
    await harness.repo.save_guild_settings(
        GuildSettings(guild_id=1, max_user_active=1, daily_quota=2), now=T0
    )
    await harness.repo.save_creative_settings(
        CreativeSettings(
            guild_id=1,
            tiers=(
                Tier(role_id=50, max_user_active=3),
                Tier(role_id=60, daily_quota=0),  # unlimited
            ),
        ),
        now=T0,
    )
    engine = harness.engine()
    await engine.submit(edit("one"))
    with pytest.raises(LimitReached):
        await engine.submit(edit("two"))  # no tiered role: the server's limit of 1
    booster = edit("two").model_copy(update={"role_ids": (50, 60, 70)})
    await engine.submit(booster)
    await engine.submit(booster)
    with pytest.raises(LimitReached):
        await engine.submit(booster)  # the tier's 3 active
