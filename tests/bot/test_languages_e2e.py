"""Kontext speaks English, German and Japanese on Discord: the commands carry German and
Japanese descriptions, answers to one member follow their Discord language, public
messages the server's, and a server may pin one language for everything."""

from __future__ import annotations

import re
from typing import Any

from tests.bot.conftest import Harness
from tests.discord_fake import png_file

LOCALIZED = ("de", "ja")


def _job_id(content: str) -> int:
    return int(re.findall(r"\d+", content)[0])


def _missing(item: dict[str, Any], field: str, where: str) -> list[str]:
    found = item.get(field) or {}
    return [f"{where} {field} {lang}" for lang in LOCALIZED if not found.get(lang)]


def _walk(node: dict[str, Any], where: str) -> list[str]:
    missing = _missing(node, "description_localizations", where)
    assert not node.get("name_localizations"), f"{where}: names stay English"
    for option in node.get("options") or []:
        inner = f"{where} {option['name']}"
        if option["type"] in (1, 2):  # a subcommand or a group
            missing += _walk(option, inner)
            continue
        missing += _missing(option, "description_localizations", inner)
        assert not option.get("name_localizations"), f"{inner}: option names stay English"
        for choice in option.get("choices") or []:
            missing += _missing(choice, "name_localizations", f"{inner}={choice['value']}")
    return missing


async def test_every_command_option_and_choice_is_described_in_german_and_japanese(
    kontext: Harness,
) -> None:
    registered = kontext.fake.guild_commands[kontext.fake.guild.id]
    slash = [c for c in registered if c.get("type", 1) == 1]
    assert {c["name"] for c in slash} >= {"edit", "imagine", "kontext", "kontext-admin"}
    missing = [m for command in slash for m in _walk(command, "/" + command["name"])]
    assert not missing, missing
    edit = next(c for c in slash if c["name"] == "edit")
    assert edit["description_localizations"]["de"].startswith("Bearbeite bis zu vier Bilder")
    ratio = next(o for o in edit["options"] if o["name"] == "aspect_ratio")
    assert ratio["description_localizations"]["ja"] == "結果の形（既定: 最初の画像と同じ）"
    admin = next(c for c in slash if c["name"] == "kontext-admin")
    settings = next(o for o in admin["options"] if o["name"] == "settings")
    nsfw = next(o for o in settings["options"] if o["name"] == "nsfw")
    assert {c["name_localizations"]["de"] for c in nsfw["choices"]} >= {"zurückhalten"}


async def test_the_message_menus_are_named_in_german_and_japanese(kontext: Harness) -> None:
    registered = kontext.fake.guild_commands[kontext.fake.guild.id]
    menus = {c["name"]: c for c in registered if c.get("type") == 3}
    assert set(menus) == {"Edit image", "Edit history"}
    assert menus["Edit image"]["name_localizations"] == {
        "de": "Bild bearbeiten",
        "ja": "画像を編集",
    }
    assert menus["Edit history"]["name_localizations"]["ja"] == "編集履歴"


async def test_the_localizations_are_in_the_registration_hash(kontext: Harness) -> None:
    from bot.discord.command_sync import tree_payload

    assert kontext.app is not None
    payload = await tree_payload(kontext.app.bot.tree, kontext.fake.guild.id)
    edit = next(c for c in payload if c["name"] == "edit")
    assert edit["description_localizations"]["ja"]
    # Registered once; an unchanged restart registers nothing again.
    app = await kontext.restart()
    assert app.bot.synced_count == 0


async def test_a_german_member_gets_german_answers(kontext: Harness) -> None:
    kontext.fake.user("bob").locale = "de"
    bob = kontext.member("bob")
    queue = await (await bob.run_command("kontext queue")).response()
    assert queue.content.startswith("**Dieser Server:** laufend 0, wartend 0.")
    assert "Du hast keine wartenden oder laufenden Aufträge." in queue.content
    refused = await (await bob.run_command("kontext history", message="not a link")).response()
    assert refused.content.startswith("Gib einen Nachrichtenlink") and refused.flags & 64
    cancel = await (await bob.run_command("kontext cancel", job=424242)).response()
    assert cancel.content.startswith("Auftrag 424242 existiert nicht mehr"), cancel.content
    helped = await (await bob.run_command("kontext help")).response()
    assert "bearbeitet Bilder mit FLUX.1 Kontext" in helped.content
    # The same commands still answer Alice (en-US) in English.
    alice = kontext.member("alice")
    mine = await (await alice.run_command("kontext queue")).response()
    assert mine.content.startswith("**This server:** 0 running, 0 waiting.")


async def test_a_german_member_edits_in_an_english_server(kontext: Harness) -> None:
    kontext.fake.user("bob").locale = "de"
    handle = await kontext.member("bob").run_command(
        "edit", in_channel="general", prompt="make it blue", image=png_file()
    )
    ack = await handle.response()
    assert ack.content.startswith("Als Auftrag ") and "Verfolge ihn in <#" in ack.content
    job = await kontext.job(_job_id(ack.content))
    assert job.params.language == "en"  # the server's public language
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert "Reroll" in str(result.components)


async def test_a_japanese_servers_status_and_result_are_japanese(harness: Harness) -> None:
    harness.fake.guild.locale = "ja"
    await harness.start()
    handle = await harness.member("alice").run_command(
        "edit", in_channel="general", prompt="make it blue", image=png_file(), count=2
    )
    ack = await handle.response()
    assert ack.content.startswith("Queued as job "), ack.content  # Alice's own language
    job = await harness.job(_job_id(ack.content))
    assert job.params.language == "ja"
    assert job.status_message_id is not None
    status = harness.fake.messages[job.status_message_id]
    result = await harness.result_in(job.thread_id or job.channel_id)
    assert "画像の番号を押すと" in result.content
    labels = str(result.components)
    assert "再生成" in labels and "情報" in labels and "Reroll" not in labels
    done = await harness.fake.wait_for(
        lambda: "✅ **完了**" in status.content and status, what="the status to say 完了"
    )
    assert done.content.endswith("> make it blue")


async def test_a_pinned_language_overrides_the_members_locale(kontext: Harness) -> None:
    alice = kontext.member("alice")
    pinned = await (await alice.run_command("kontext-admin settings", language="de")).response()
    assert pinned.content.startswith("Gespeichert.\n**Kontext-Einstellungen dieses Servers**")
    assert "• Sprache: Deutsch (de)" in pinned.content
    kontext.fake.user("bob").locale = "ja"
    bob = kontext.member("bob")
    queue = await (await bob.run_command("kontext queue")).response()
    assert queue.content.startswith("**Dieser Server:**")
    handle = await bob.run_command("edit", in_channel="general", prompt="a hat", image=png_file())
    ack = await handle.response()
    assert ack.content.startswith("Als Auftrag ")
    job = await kontext.job(_job_id(ack.content))
    assert job.params.language == "de"
    result = await kontext.result_in(job.thread_id or job.channel_id)
    assert "Neu würfeln" in str(result.components)
    back = await (await alice.run_command("kontext-admin settings", language="auto")).response()
    assert "• language: auto" in back.content


async def test_a_german_member_gets_german_buttons_answers_and_forms(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    kontext.fake.user("bob").locale = "de"
    bob = kontext.member("bob")
    info = await (await bob.click(done.result, "Info")).response()
    assert info.content.startswith(f"**Auftrag {done.job_id}** · Bearbeitung · fertig")
    refused = await (await bob.click(done.result, "Delete")).response()
    assert refused.flags & 64 and "Delete" not in refused.content
    opened = await bob.click(done.result, "Edit")
    form = await opened.modal()
    assert form["title"] == "Dieses Ergebnis bearbeiten"
    submitted = await bob.submit_modal({"Was soll sich ändern?": "now make it red"})
    assert (await submitted.response()).content.startswith("Als Auftrag ")


async def test_replies_in_a_japanese_server_are_answered_in_japanese(harness: Harness) -> None:
    from tests.bot.iterating import answer_to, reply

    harness.fake.guild.locale = "ja"
    await harness.start()
    handle = await harness.member("alice").run_command(
        "edit", in_channel="general", prompt="add a hat", image=png_file()
    )
    job = await harness.job(_job_id((await handle.response()).content))
    result = await harness.result_in(job.thread_id or job.channel_id)
    asked = await reply(harness, "alice", result, "")
    refused = await answer_to(harness, asked)
    assert refused.content.startswith("返信に言葉がありません"), refused.content
    again = await reply(harness, "alice", result, "make it red")
    status = await answer_to(harness, again)
    assert status.content.startswith(("⏳ **順番待ち**", "🎨 **編集中…**", "✅ **完了**"))


async def test_style_autocomplete_describes_the_presets_in_the_members_language(
    kontext: Harness,
) -> None:
    kontext.fake.user("bob").locale = "ja"
    typed = await kontext.member("bob").autocomplete("edit", focused="style", style="water")
    choices = await typed.choices()
    assert choices[0] == {"name": "watercolor — やわらかな水彩画", "value": "watercolor"}


async def test_info_says_why_this_provider_in_the_members_language(kontext: Harness) -> None:
    done = await kontext.edit_done("add a hat")
    job = await kontext.job(done.job_id)
    assert job.route_reason is not None and job.route_text is not None
    label = job.route_reason.removesuffix(": the bot's default provider.")
    assert label != job.route_reason, job.route_reason
    english = await (await kontext.member("alice").click(done.result, "Info")).response()
    assert f"**Why this provider:** {label}: the bot's default provider." in english.content
    kontext.fake.user("bob").locale = "de"
    bob = kontext.member("bob")
    german = await (await bob.click(done.result, "Info")).response()
    assert f"**Warum dieser Dienst:** {label}: der Standarddienst des Bots." in german.content
    # A job routed before reasons were kept as texts still says why, in English.
    assert kontext.app is not None
    await kontext.app.repo.update_job(job.id, now=job.updated_at, route_text=None)
    legacy = await (await bob.click(done.result, "Info")).response()
    assert f"**Warum dieser Dienst:** {job.route_reason}" in legacy.content
