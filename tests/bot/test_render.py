"""Pure pieces of the Discord front end: wording, escaping, custom ids, access rules."""

from __future__ import annotations

import logging

import discord
import pytest
from discord import app_commands

from bot.access import (
    NotAllowed,
    check_can_configure,
    check_can_iterate,
    check_can_manage,
    check_can_request,
)
from bot.discord import custom_ids, render
from bot.discord.custom_ids import Action
from bot.discord.error_handler import user_message
from bot.discord.mentions import NO_MENTIONS, mentions_for
from bot.edits import JobInfo, result_seed
from bot.errors import BadRequest
from bot.models import GuildSettings, IteratePolicy, Job, JobKind, JobParams, JobStatus
from bot.text import check_prompt
from storage.base import DatabaseFault, FaultKind


def _job(**fields: object) -> Job:
    values: dict[str, object] = {
        "id": 7,
        "guild_id": 1,
        "channel_id": 2,
        "thread_id": None,
        "user_id": 100,
        "kind": JobKind.EDIT,
        "prompt": "a hat",
        "params": JobParams(seed=9),
        "provider": "aimlapi",
        "model": None,
        "parent_output_id": None,
        "reply_to_message_id": None,
        "status": JobStatus.DONE,
        "created_at": 0.0,
        "updated_at": 0.0,
    }
    values.update(fields)
    return Job.model_validate(values)


@pytest.mark.parametrize(
    ("raw", "forbidden"),
    [
        ("@everyone look", "@everyone"),
        ("hi @here", "@here"),
        ("<@123> and <@&456>", "<@"),
        ("**bold** and `code`", "**bold**"),
        ("<#789>", "<#"),
    ],
)
def test_echoed_prompts_cannot_ping_or_format(raw: str, forbidden: str) -> None:
    assert forbidden not in render.quote_prompt(raw)


def test_quote_prompt_flattens_and_shortens() -> None:
    quoted = render.quote_prompt("line one\n\nline two " + "x" * 3000, limit=50)
    assert "\n" not in quoted and len(quoted) <= 60 and quoted.endswith("…")


def test_thread_name_fits_discord() -> None:
    assert len(render.thread_name("y" * 500)) == 100
    assert render.thread_name("   ") == "Kontext edit"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "a moment"), (0.2, "1 s"), (12.4, "12 s"), (125, "2 min 5 s"), (3720, "1 h 2 min")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert render.format_duration(seconds) == text


def test_status_lines() -> None:
    assert "position 3, about 45 s" in render.status_queued("p", 3, 45)
    assert "Editing…" in render.status_running("p", 0.5, "AIML API")
    assert "50%" in render.status_running("p", 0.5)
    assert "Failed:" in render.status_failed("p", "provider down")
    assert "trying again in 12 s: busy" in render.status_delayed("p", "busy", 12)
    assert "Cancelled" in render.status_for_terminal(_job(status=JobStatus.CANCELLED))
    assert "Expired" in render.status_for_terminal(_job(status=JobStatus.EXPIRED))


def test_result_caption_and_info() -> None:
    caption = render.result_caption(
        prompt="a hat @everyone",
        requester_id=100,
        provider_label="AIML API",
        model="flux/kontext-max",
        seed=9,
        duration=4,
        notes=["Re-encoded to fit Discord's upload limit."],
    )
    assert "<@100>" in caption and "seed 9" in caption and "4 s" in caption
    assert "@everyone" not in caption
    info = render.info_text(
        JobInfo(
            job=_job(cost=0.08),
            provider_label="AIML API",
            model=None,
            seed=9,
            duration=3,
            chain=((1, "root"), (7, "a hat")),
            reference_count=1,
        )
    )
    assert "Job 7" in info and "$0.0800" in info and "Chain of edits" in info


def test_custom_ids_round_trip_and_fit() -> None:
    for action in Action:
        cid = custom_ids.build(action, 2**63 - 1)
        assert len(cid) <= 100
        assert custom_ids.parse(cid) == (action, 2**63 - 1)
    assert custom_ids.parse("kx:reroll:abc") is None
    assert custom_ids.parse("other:1") is None
    with pytest.raises(ValueError):
        custom_ids.build(Action.INFO, 0)


def test_access_rules() -> None:
    settings = GuildSettings(guild_id=1, allowed_channel_ids=(5,), allowed_role_ids=(9,))
    with pytest.raises(NotAllowed, match="not enabled in this channel"):
        check_can_request(settings, channel_id=6, parent_channel_id=None, role_ids=(9,))
    with pytest.raises(NotAllowed, match="certain roles"):
        check_can_request(settings, channel_id=5, parent_channel_id=None, role_ids=(8,))
    check_can_request(settings, channel_id=77, parent_channel_id=5, role_ids=(9,))  # a thread
    job = _job()
    strict = GuildSettings(guild_id=1, iterate_policy=IteratePolicy.REQUESTER)
    check_can_iterate(GuildSettings(guild_id=1), job, user_id=5, moderator=False)
    with pytest.raises(NotAllowed):
        check_can_iterate(strict, job, user_id=5, moderator=False)
    check_can_iterate(strict, job, user_id=5, moderator=True)
    check_can_manage(job, user_id=100, moderator=False, what="x")
    with pytest.raises(NotAllowed):
        check_can_manage(job, user_id=5, moderator=False, what="x")
    with pytest.raises(NotAllowed, match="Manage Server"):
        check_can_configure(manage_guild=False)


def test_prompt_checks() -> None:
    with pytest.raises(BadRequest, match="empty"):
        check_prompt(" \n ")
    with pytest.raises(BadRequest, match="4001 characters long; the limit is 4000"):
        check_prompt("x" * 4001)
    assert check_prompt("  ok ") == "ok"


def test_result_seed_prefers_the_providers_report() -> None:
    assert result_seed(_job(result_json='{"seed": 42}')) == 42
    assert result_seed(_job(result_json="not json")) == 9
    assert result_seed(_job()) == 9


def test_allowed_mentions_ping_at_most_the_requester() -> None:
    assert NO_MENTIONS.to_dict() == {"parse": []}
    data = mentions_for(100).to_dict()
    assert data == {"parse": [], "users": ["100"]}
    merged = discord.AllowedMentions.none().merge(mentions_for(5))
    assert merged.users and not merged.everyone and not merged.roles


def test_error_messages(caplog: pytest.LogCaptureFixture) -> None:
    assert user_message(BadRequest("nope")) == "nope"
    wrapped = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    wrapped.original = NotAllowed("not you")
    assert user_message(wrapped) == "not you"
    assert "servers only" in user_message(app_commands.NoPrivateMessage())
    with caplog.at_level(logging.ERROR):
        text = user_message(RuntimeError("boom"), context="/edit")
    error_id = text.split("`")[1]
    assert len(error_id) == 6 and "boom" not in text
    assert error_id in caplog.text and "boom" in caplog.text


def test_a_database_fault_is_told_to_the_operator_not_the_member(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fault = DatabaseFault(FaultKind.FULL, "/srv/kontext/kontext.db", "database or disk is full")
    with caplog.at_level(logging.ERROR):
        text = user_message(fault)
    assert "storage is not working" in text
    assert "/srv/kontext" not in text and "disk" not in text
    assert "/srv/kontext/kontext.db is full" in caplog.text


def test_intents_are_the_defaults_plus_guild_messages() -> None:
    from bot.config import Settings
    from bot.discord.client import intents_for

    plain = intents_for(Settings(_env_file=None))
    assert plain.value == discord.Intents.default().value
    assert plain.guild_messages and not plain.message_content and not plain.members
    assert intents_for(Settings(_env_file=None, message_content=True)).message_content


def test_modal_values_are_found_in_rows_and_labels() -> None:
    from bot.discord.views import submitted_text

    rows = [{"type": 1, "components": [{"type": 4, "custom_id": "prompt", "value": "a"}]}]
    labelled = [{"type": 18, "component": {"type": 4, "custom_id": "prompt", "value": "b"}}]
    assert submitted_text(rows, "prompt") == "a"
    assert submitted_text(labelled, "prompt") == "b"
    assert submitted_text([], "prompt") == ""
