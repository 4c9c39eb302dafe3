"""/edit end to end: the real bot on the fake Discord with the AIML API fake."""

from __future__ import annotations

from tests.bot.conftest import Harness
from tests.discord_fake import png_file


async def test_edit_posts_status_thread_and_result(kontext: Harness) -> None:
    fake = kontext.fake
    alice = kontext.member("alice")
    general = fake.channel("general")
    handle = await alice.run_command("edit", general, prompt="make it blue", image=png_file())
    assert await handle.acknowledged() == 5
    ack = await handle.response()
    assert "Queued as job" in ack.content
    status = await fake.wait_for_message(general, lambda m: "make it blue" in m.content)
    thread = fake.channels[status.id]
    assert thread.is_thread
    result = await kontext.result_in(thread.id)
    assert result.attachments
    assert "make it blue" in result.content
    await fake.wait_for(lambda: "Done" in fake.messages[status.id].content, what="status done")
