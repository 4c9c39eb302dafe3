"""``/kontext prefs``, ``style``, ``blocklist``, ``tier`` and ``creative`` end to end: who may
change what, precedence (option > preference > server > provider), and what members see."""

from __future__ import annotations

from typing import Any

from tests.bot.conftest import Harness
from tests.discord_fake.models import Perm, Role, StoredMessage


async def _run(h: Harness, who: str, command: str, **options: Any) -> StoredMessage:
    handle = await h.member(who).run_command(command, in_channel="general", **options)
    return await handle.response()


async def test_preferences_take_their_place_in_the_precedence(kontext: Harness) -> None:
    shown = await _run(kontext, "bob", "kontext prefs show")
    assert "Your preferences here" in shown.content and "Style: —" in shown.content
    await _run(kontext, "alice", "kontext-admin creative", default_style="night", default_count=2)

    server = await kontext.edit_done("a cat", who="bob")
    job = await kontext.job(server.job_id)
    assert job.params.style == "night" and job.params.num_images == 2
    assert job.params.origins["style"] == "server" and job.params.origins["count"] == "server"

    saved = await _run(kontext, "bob", "kontext prefs set", style="watercolor", count=1)
    assert "Saved" in saved.content and "Style: watercolor" in saved.content
    member = await kontext.job((await kontext.edit_done("a cat", who="bob")).job_id)
    assert member.params.style == "watercolor" and member.params.num_images == 1
    assert member.params.origins["style"] == "member"

    option = await kontext.job(
        (await kontext.edit_done("a cat", who="bob", style="none", count=3)).job_id
    )
    assert option.params.style is None and option.params.num_images == 3
    assert option.params.origins["count"] == "option" and option.prompt == "a cat"

    cleared = await _run(kontext, "bob", "kontext prefs clear", which="all")
    assert "Style: —" in cleared.content
    again = await kontext.job((await kontext.edit_done("a cat", who="bob")).job_id)
    assert again.params.style == "night"


async def test_preferences_are_checked_against_the_server(kontext: Harness) -> None:
    refused = await _run(kontext, "bob", "kontext prefs set", safety_tolerance=5)
    assert "at most 2" in refused.content
    refused = await _run(kontext, "bob", "kontext prefs set", provider="aimlapi")
    assert "does not let members choose" in refused.content
    refused = await _run(kontext, "bob", "kontext prefs set", style="nope")
    assert "no style called `nope`" in refused.content
    shown = await _run(kontext, "bob", "kontext prefs show")
    assert "Safety tolerance: —" in shown.content and "Style: —" in shown.content


async def test_a_server_style_is_added_used_listed_and_removed(kontext: Harness) -> None:
    denied = await _run(
        kontext, "bob", "kontext-admin style add", name="noir", prompt="in film noir"
    )
    assert "Manage Server" in denied.content
    added = await _run(
        kontext, "alice", "kontext-admin style add", name="noir", prompt="Make {prompt} film noir"
    )
    assert "Added the style `noir`" in added.content
    listed = await _run(kontext, "bob", "kontext-admin style list")
    assert "`noir`: Make {prompt} film noir" in listed.content and "`watercolor`" in listed.content
    choices = await (
        await kontext.member("bob").autocomplete("edit", focused="style", style="no")
    ).choices()
    assert choices[0]["value"] == "noir"

    job = await kontext.job((await kontext.edit_done("the street", style="noir")).job_id)
    assert job.prompt == "Make the street film noir" and job.params.request_prompt == "the street"

    removed = await _run(kontext, "alice", "kontext-admin style remove", name="noir")
    assert "Removed" in removed.content
    _, ack = await kontext.edit("the street", style="noir")
    assert "no style called `noir`" in ack.content


async def test_a_blocked_prompt_is_refused_without_naming_the_rule(kontext: Harness) -> None:
    denied = await _run(kontext, "bob", "kontext-admin blocklist add", text="zebra")
    assert "Manage Server" in denied.content
    added = await _run(kontext, "alice", "kontext-admin blocklist add", text="zebra")
    assert "zebra" in added.content
    _, ack = await kontext.edit("draw a Zebra here", who="bob")
    assert "does not allow some of the words" in ack.content
    assert "zebra" not in ack.content.lower()
    assert kontext.provider.submits == 0
    listed = await _run(kontext, "alice", "kontext-admin blocklist list")
    assert "words: zebra" in listed.content
    removed = await _run(kontext, "alice", "kontext-admin blocklist remove", text="zebra")
    assert "no longer blocked" in removed.content
    await kontext.edit_done("draw a zebra here", who="bob")


async def test_a_role_tier_raises_the_members_batch_limit(kontext: Harness) -> None:
    fake = kontext.fake
    guild = fake.guild
    boosters = Role(fake.ids.next(), "Boosters", Perm.EVERYONE_DEFAULT, 1)
    guild.roles[boosters.id] = boosters
    await fake.gateway.dispatch(
        "GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": boosters.to_dict()}
    )
    guild.members[kontext.member("bob").user.id].roles.append(boosters.id)

    _, ack = await kontext.edit("four", who="bob", count=4)
    assert "1 to 3 images" in ack.content
    saved = await _run(kontext, "alice", "kontext-admin tier set", role=boosters, active_jobs=4)
    assert "Saved" in saved.content and f"<@&{boosters.id}>" in saved.content
    done = await kontext.edit_done("four", who="bob", count=4)
    assert len(done.result.attachments) == 4
    listed = await _run(kontext, "bob", "kontext-admin tier list")
    assert "active jobs 4" in listed.content
    removed = await _run(kontext, "alice", "kontext-admin tier remove", role=boosters)
    assert "server's limits again" in removed.content


async def test_creative_settings_are_shown_and_checked(kontext: Harness) -> None:
    shown = await _run(kontext, "alice", "kontext-admin creative")
    assert "Images at once (most): 4" in shown.content
    denied = await _run(kontext, "bob", "kontext-admin creative")
    assert "Manage Server" in denied.content
    refused = await _run(kontext, "alice", "kontext-admin creative", default_count=4, max_count=2)
    assert "cannot be above the maximum" in refused.content


async def test_a_member_may_choose_the_provider_once_the_server_allows_it(
    kontext: Harness,
) -> None:
    await _run(kontext, "alice", "kontext-admin creative", members_choose_provider=True)
    saved = await _run(kontext, "bob", "kontext prefs set", provider="aimlapi")
    assert "Image service: aimlapi" in saved.content
    job = await kontext.job((await kontext.edit_done("a cat", who="bob")).job_id)
    assert job.provider == "aimlapi" and job.params.origins["provider"] == "member"
    refused = await _run(kontext, "bob", "kontext prefs set", provider="fal")
    assert "not available here" in refused.content
