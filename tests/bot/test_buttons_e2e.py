"""Result and status buttons, including after a restart of the bot over the same database."""

from __future__ import annotations

import re

from tests.bot.conftest import Harness
from tests.fakes import ModelsLabFake, Outcome, docs_dir


def _seed(content: str) -> int:
    return int(re.findall(r"seed (\d+)", content)[0])


async def test_info_shows_prompt_parameters_and_provider(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat", seed=1234)
    handle = await kontext.member("bob").click(done.result, "Info")
    info = await handle.response()
    assert info.flags & 64
    assert "add a hat" in info.content and "1234" in info.content
    assert "AIML API" in info.content and f"Job {done.job_id}" in info.content


async def test_reroll_makes_a_new_result_with_a_new_seed(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat", seed=1234)
    handle = await kontext.member("alice").click(done.result, "Reroll")
    assert "Queued as job" in (await handle.response()).content
    second = await kontext.fake.wait_for(
        lambda: len(kontext.results(done.thread_id)) == 2 and kontext.results(done.thread_id)[1],
        what="the rerolled result",
    )
    assert "add a hat" in second.content
    assert _seed(second.content) != 1234
    assert kontext.provider.submits == 2
    first, again = (
        {k: v for k, v in b.items() if k not in ("seed", "image_url")}
        for b in kontext.provider.bodies("submit")
    )
    assert first == again  # the same inputs; the stored bytes are sent (URLs expire)
    assert kontext.provider.bodies("submit")[1]["image_url"].startswith("data:image/png")


async def test_edit_button_opens_a_modal_and_chains_the_output(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    alice = kontext.member("alice")
    handle = await alice.click(done.result, "Edit")
    assert await handle.acknowledged() == 9  # a modal
    submitted = await alice.submit_modal({"What should change?": "now make it red"})
    ack = await submitted.response()
    job_id = int(re.findall(r"job (\d+)", ack.content)[0])
    result = await kontext.fake.wait_for(
        lambda: len(kontext.results(done.thread_id)) == 2 and kontext.results(done.thread_id)[1],
        what="the edited result",
    )
    assert "now make it red" in result.content
    child = await kontext.job(job_id)
    assert child.parent_output_id is not None
    info = await (await kontext.member("bob").click(result, "Info")).response()
    assert "Chain of edits" in info.content and "add a hat" in info.content


async def test_delete_by_requester_and_refusal_for_others(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    refused = await (await kontext.member("bob").click(done.result, "Delete")).response()
    assert "Only the person who asked" in refused.content
    assert not kontext.fake.messages[done.result.id].deleted
    ok = await (await kontext.member("alice").click(done.result, "Delete")).response()
    assert "Deleted" in ok.content
    assert kontext.fake.messages[done.result.id].deleted


async def test_cancel_button_on_the_status_message(kontext: Harness) -> None:
    fake = kontext.fake
    kontext.provider.script("submit", Outcome.stall(), Outcome.stall())
    first_ack = (await kontext.edit("blocker"))[1]
    _, ack = await kontext.edit("to cancel")
    job_id = int(re.findall(r"job (\d+)", ack.content)[0])
    job = await kontext.job(job_id)
    assert job.status_message_id is not None
    status = fake.messages[job.status_message_id]
    refused = await (await kontext.member("bob").click(status, "Cancel")).response()
    assert "Only the person who asked" in refused.content
    ok = await (await kontext.member("alice").click(status, "Cancel")).response()
    assert f"Job {job_id} is cancelled" in ok.content
    await fake.wait_for(lambda: "Cancelled" in fake.messages[status.id].content, what="cancelled")
    assert not fake.messages[status.id].components
    assert (await kontext.job(job_id)).status.value == "cancelled"
    assert "Queued" in first_ack.content
    await fake.wait_for(lambda: kontext.provider.submits >= 1, what="the first submit")
    kontext.provider.release()


async def test_buttons_work_after_a_restart(harness: Harness) -> None:
    await harness.start()
    done = await harness.edit_done("add a hat", seed=77)
    await harness.restart()
    info = await (await harness.member("bob").click(done.result, "Info")).response()
    assert "add a hat" in info.content and "77" in info.content
    handle = await harness.member("alice").click(done.result, "Reroll")
    assert "Queued" in (await handle.response()).content
    await harness.fake.wait_for(
        lambda: len(harness.results(done.thread_id)) == 2, what="a reroll after restart"
    )


async def test_a_modal_opened_before_a_restart_is_handled_after_it(harness: Harness) -> None:
    await harness.start()
    done = await harness.edit_done("add a hat")
    alice = harness.member("alice")
    opened = await alice.click(done.result, "Edit")
    assert await opened.acknowledged() == 9
    await harness.restart()
    submitted = await alice.submit_modal({"What should change?": "after the restart"})
    assert "Queued as job" in (await submitted.response()).content
    result = await harness.fake.wait_for(
        lambda: len(harness.results(done.thread_id)) == 2 and harness.results(done.thread_id)[1],
        what="the edited result",
    )
    assert "after the restart" in result.content


async def test_a_moderator_may_delete_and_cancel_others_jobs(harness: Harness) -> None:
    from tests.discord_fake import Perm
    from tests.discord_fake.models import Role

    fake = harness.fake
    mods = Role(fake.ids.next(), "mods", Perm.MANAGE_MESSAGES, position=1)
    fake.guild.roles[mods.id] = mods
    fake.guild.members[fake.user("bob").id].roles.append(mods.id)
    await harness.start()
    done = await harness.edit_done("alice's picture")
    bob = harness.member("bob")
    harness.provider.script("submit", Outcome.stall())
    _, ack = await harness.edit("alice's slow one")
    job_id = int(re.findall(r"job (\d+)", ack.content)[0])
    cancelled = await (
        await bob.run_command("kontext cancel", in_channel="general", job=job_id)
    ).response()
    assert "cancelled" in cancelled.content
    deleted = await (await bob.click(done.result, "Delete")).response()
    assert "Deleted" in deleted.content and fake.messages[done.result.id].deleted
    harness.provider.release()


async def test_a_server_routes_between_its_providers_and_info_says_why(harness: Harness) -> None:
    async with ModelsLabFake(docs=docs_dir()) as modelslab:
        await harness.start(
            modelslab_api_key=modelslab.api_key, modelslab_base_url=modelslab.base_url
        )
        alice = harness.member("alice")
        saved = await (
            await alice.run_command(
                "kontext-admin settings", in_channel="general", providers="aimlapi, modelslab"
            )
        ).response()
        assert "route between (preferred first): aimlapi, modelslab" in saved.content
        refused = await (
            await alice.run_command(
                "kontext-admin settings", in_channel="general", providers="nope"
            )
        ).response()
        assert "Unknown provider 'nope'" in refused.content
        done = await harness.edit_done("add a hat")
        job = await harness.job(done.job_id)
        assert job.provider in {"aimlapi", "modelslab"} and job.route_reason
        assert "expected in about" in job.route_reason
        info = await (await alice.click(done.result, "Info")).response()
        assert "Why this provider:" in info.content
        await harness.stop()
