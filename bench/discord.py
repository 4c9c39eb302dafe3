"""The Discord front end under load: N simultaneous ``/edit`` on the fake Discord.

Everything is real except the two network edges: the bot runs as its own process
(``python -m bot run``, as deployed) over a temporary SQLite database and talks to the fake
Discord (``tests/discord_fake``, in this process) over HTTP and a websocket, and to the AIML
API fake (``tests/fakes``), which answers at once.

Measured per job:

* acknowledgement latency: from the INTERACTION_CREATE being written to the bot's websocket
  to the deferral arriving at the fake (and, as Discord counts its 3 s, from the interaction's
  creation, which adds the fake's own time to send 200 events);
* the bot's own overhead: the time from the interaction to the result being posted, minus the
  provider phase (``submitting`` to ``delivering`` in the job's history: the provider call and
  the result download) and minus waiting for a provider slot (the engine's queue).

The fake's OpenAPI validation is off here (it costs the fake CPU, not the bot; the tests keep
it on). The provider keeps its documented concurrency (2), so most jobs wait in the engine's
queue; that wait is reported apart and not counted as overhead.
Prints readable lines, then one JSON line.

    python -m bench.discord [--jobs 200] [--isolated 30] [--postgres] [--roles gateway+worker]

``--roles gateway+worker`` (implies ``--postgres``) runs ``kontext-bot gateway`` and one
``kontext-bot worker`` instead of ``run``; the CPU reported for the bot is the gateway
process's. CPU is process time (user + system, every thread) read from ``/proc``, over the
burst until every status says Done, and until every command was answered (intake).

The burst's commands are sent back to back, one per turn of the fake's event loop, so the
fake answers the bot's requests in between (as Discord would); sending all 200 in one turn
would hold every acknowledgement behind the fake's own ~2 ms per event, which measures the
fake, not the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord

from bot.models import GuildSettings, JobStatus
from storage import open_repository
from tests import pg
from tests.discord_fake import FakeDiscord, InteractionHandle, png_file
from tests.discord_fake.actors import LOADING
from tests.fakes import AimlApiFake, env_for

ROOT = Path(__file__).resolve().parent.parent


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"


async def _send(fake: FakeDiscord, n: int, image: Any, sending: asyncio.Lock) -> dict[str, Any]:
    """Send one ``/edit``; the lock lets one out per turn of the fake's event loop, so the
    fake keeps answering the bot's requests between sends, as Discord's servers would,
    instead of queueing them behind all of the burst."""
    member = fake.member(("alice", "bob", "carol")[n % 3])
    async with sending:
        sent = time.time()
        handle = await member.run_command("edit", prompt=f"benchmark edit {n}", image=image)
        dispatched = time.time()  # the INTERACTION_CREATE is on the bot's websocket now
    return {"handle": handle, "sent": sent, "dispatched": dispatched}


def _answered(handle: InteractionHandle) -> bool:
    message = handle.original
    return message is not None and not message.flags & LOADING


async def _collect(fake: FakeDiscord, out: list[dict[str, Any]]) -> None:
    """Wait for every acknowledgement, then every answer (one waiter each, so the fake's own
    bookkeeping stays out of the measured times); fill in the times and job ids."""
    handles = [r["handle"] for r in out]
    await fake.wait_for(
        lambda: all(h.state.acknowledged for h in handles), timeout=60, what="acknowledgements"
    )
    await fake.wait_for(lambda: all(_answered(h) for h in handles), timeout=120, what="answers")
    answered = time.time()
    callbacks = {r.path: r for r in fake.requests if r.template == CALLBACK}
    for r in out:
        handle = r.pop("handle")
        at = next(c.at for path, c in callbacks.items() if f"/{handle.id}/" in path)
        r["ack"] = at - r.pop("dispatched")
        r["ack_from_creation"] = at - handle.state.created_at
        assert handle.original is not None
        r["job_id"] = int(handle.original.content.split("job ")[1].split(".")[0])
        r["answered"] = answered


async def _one(fake: FakeDiscord, n: int, image: Any, out: dict[str, Any]) -> None:
    """One ``/edit`` alone (the warm-up and the isolated ones)."""
    out.update(await _send(fake, n, image, asyncio.Lock()))
    await out["handle"].acknowledged(timeout=60)
    await out["handle"].response(timeout=120)
    results = [out]
    await _collect(fake, results)


def _bot_env(fake: FakeDiscord, provider: AimlApiFake, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KONTEXT_", "DISCORD_"))}
    env.update(env_for(provider))
    env.update(
        DISCORD_TOKEN=fake.token,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
        KONTEXT_DATABASE_URL=url,
        KONTEXT_DEV_GUILD_ID=str(fake.guild.id),
        KONTEXT_LOG_LEVEL="WARNING",
        PYTHONWARNINGS="ignore::DeprecationWarning",
    )
    return env


async def _prepare_database(url: str, guild_id: int) -> None:
    repo = open_repository(url)
    await repo.connect()
    try:
        await repo.save_guild_settings(
            GuildSettings(
                guild_id=guild_id,
                max_user_active=10_000,
                max_guild_running=10_000,
                max_guild_queue=10_000,
                daily_quota=0,
            ),
            now=time.time(),
        )
    finally:
        await repo.close()


async def _measure(url: str, fake: FakeDiscord, results: list[dict[str, Any]]) -> dict[str, Any]:
    repo = open_repository(url)
    await repo.connect()
    overheads, provider_s, waits, acks, failed = [], [], [], [], 0
    intakes, posts, acks_discord = [], [], []
    try:
        for r in results:
            acks.append(r["ack"])
            acks_discord.append(r["ack_from_creation"])
            job = await repo.get_job(r["job_id"])
            assert job is not None
            if job.status is not JobStatus.DONE:
                failed += 1
                continue
            history = dict(await repo.job_history(job.id))
            outputs = await repo.outputs_for_job(job.id)
            message = fake.messages[outputs[0].message_id or 0]
            posted = discord.utils.snowflake_time(message.id).timestamp()
            claimed = history[JobStatus.SUBMITTING]
            provider_phase = history[JobStatus.DELIVERING] - claimed
            waiting = claimed - history[JobStatus.QUEUED]
            provider_s.append(provider_phase)
            waits.append(waiting)
            overheads.append(posted - r["sent"] - provider_phase - waiting)
            intakes.append(history[JobStatus.QUEUED] - r["sent"])
            posts.append(posted - history[JobStatus.DELIVERING])
    finally:
        await repo.close()
    return {
        "failed": failed,
        "ack_p50_ms": round(_pct(acks, 50) * 1000, 1),
        "ack_p99_ms": round(_pct(acks, 99) * 1000, 1),
        "ack_max_ms": round(max(acks) * 1000, 1),
        "acks_over_3s": sum(1 for a in acks_discord if a > 3),
        "ack_from_creation_p99_ms": round(_pct(acks_discord, 99) * 1000, 1),
        "overhead_p50_ms": round(_pct(overheads, 50) * 1000, 1),
        "overhead_p99_ms": round(_pct(overheads, 99) * 1000, 1),
        "provider_phase_p50_ms": round(statistics.median(provider_s) * 1000, 1),
        "queue_wait_p50_ms": round(statistics.median(waits) * 1000, 1),
        "intake_p50_ms": round(_pct(intakes, 50) * 1000, 1),
        "intake_p99_ms": round(_pct(intakes, 99) * 1000, 1),
        "posting_p50_ms": round(_pct(posts, 50) * 1000, 1),
        "posting_p99_ms": round(_pct(posts, 99) * 1000, 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _done_count(fake: FakeDiscord) -> int:
    """Status messages that say Done (the engine announces done after storing it)."""
    return sum(
        1
        for m in fake.messages.values()
        if m.author_id == fake.bot_user.id and "**Done**" in m.content
    )


async def run(
    jobs: int, isolated: int, postgres: bool = False, roles: bool = False
) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    profile = os.environ.get("BENCH_PROFILE")  # a cProfile output path for the bot process
    with tempfile.TemporaryDirectory() as tmp:
        url = await pg.create_temp_database() if postgres else f"sqlite:///{Path(tmp) / 'bench.db'}"
        fake = FakeDiscord(validator=None)
        await fake.start()
        try:
            async with AimlApiFake() as provider:
                await _prepare_database(url, fake.guild.id)
                log = (Path(tmp) / "bot.log").open("wb")
                bot = await asyncio.create_subprocess_exec(
                    sys.executable,
                    *(["-m", "cProfile", "-o", profile] if profile else []),
                    "-m",
                    "bot",
                    "gateway" if roles else "run",
                    cwd=ROOT,
                    env=_bot_env(fake, provider, url),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                processes = [bot]
                if roles:
                    processes.append(
                        await asyncio.create_subprocess_exec(
                            sys.executable,
                            "-m",
                            "bot",
                            "worker",
                            cwd=ROOT,
                            env=_bot_env(fake, provider, url),
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
                try:
                    await fake.wait_for(
                        lambda: fake.guild_commands.get(fake.guild.id) and fake.gateway.connected(),
                        timeout=60,
                        what="the bot to connect",
                    )
                    image = png_file(width=512, height=384)
                    # One job first, not counted: the first use imports and opens things lazily.
                    await _one(fake, -1, image, {})
                    await fake.wait_for(lambda: _done_count(fake) >= 1, timeout=60, what="warm-up")
                    sending = asyncio.Lock()
                    started = time.time()
                    bot_cpu0, own_cpu0 = _cpu_seconds(bot.pid), time.process_time()
                    burst = list(
                        await asyncio.gather(*(_send(fake, n, image, sending) for n in range(jobs)))
                    )
                    await _collect(fake, burst)
                    intake_cpu = _cpu_seconds(bot.pid) - bot_cpu0  # every /edit answered
                    await fake.wait_for(
                        lambda: _done_count(fake) >= jobs + 1, timeout=600, what="every result"
                    )
                    wall = time.time() - started
                    bot_cpu = _cpu_seconds(bot.pid) - bot_cpu0
                    own_cpu = time.process_time() - own_cpu0
                    sent_in = max(r["sent"] for r in burst) - min(r["sent"] for r in burst)
                    answered_in = max(r["answered"] for r in burst) - started
                    alone: list[dict[str, Any]] = [{} for _ in range(isolated)]
                    for n in range(isolated):
                        await _one(fake, jobs + n, image, alone[n])
                        await fake.wait_for(
                            lambda n=n: _done_count(fake) >= jobs + n + 2,
                            timeout=60,
                            what="the isolated result",
                        )
                finally:
                    for process in processes:
                        process.send_signal(signal.SIGTERM)
                    for process in processes:
                        await asyncio.wait_for(process.wait(), timeout=30)
                    log.close()
                summary = await _measure(url, fake, burst)
                single = await _measure(url, fake, alone) if alone else {}
        finally:
            await fake.close()
            if postgres:
                await pg.drop_database(url)
    return {
        "jobs": jobs,
        "wall_seconds": round(wall, 2),
        "burst_sent_ms": round(sent_in * 1000, 1),
        "all_answered_s": round(answered_in, 2),
        "bot_cpu_ms_per_job": round(bot_cpu / jobs * 1000, 2),
        "bot_intake_cpu_ms_per_job": round(intake_cpu / jobs * 1000, 2),
        "fake_cpu_ms_per_job": round(own_cpu / jobs * 1000, 2),
        **summary,
        **{
            f"isolated_{k}": v
            for k, v in single.items()
            if k.startswith(("overhead", "intake", "posting"))
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="simultaneous /edit (burst)")
    parser.add_argument("--isolated", type=int, default=30, help="then /edit one at a time")
    parser.add_argument(
        "--roles",
        nargs="?",
        const="gateway+worker",
        default="run",
        choices=("run", "gateway+worker"),
        help="run: one kontext-bot run process (default); gateway+worker: a gateway and a "
        "worker process (PostgreSQL); the CPU reported is the gateway's",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="a throw-away PostgreSQL database (tests.pg)"
    )
    args = parser.parse_args()
    roles = args.roles == "gateway+worker"
    postgres = args.postgres or roles
    summary = asyncio.run(run(args.jobs, args.isolated, postgres, roles))
    print(f"storage: {'PostgreSQL' if postgres else 'SQLite'}")
    print(f"processes: {'gateway + worker' if roles else 'run'}")
    print(
        f"{summary['jobs']} simultaneous /edit, {summary['failed']} failed, "
        f"{summary['wall_seconds']} s"
    )
    print(
        f"acknowledgement: p50 {summary['ack_p50_ms']} ms, p99 {summary['ack_p99_ms']} ms, "
        f"max {summary['ack_max_ms']} ms (from the event reaching the bot's socket); "
        f"p99 {summary['ack_from_creation_p99_ms']} ms from the interaction's creation, "
        f"{summary['acks_over_3s']} over 3 s"
    )
    print(
        f"bot overhead per job: p50 {summary['overhead_p50_ms']} ms, "
        f"p99 {summary['overhead_p99_ms']} ms "
        f"(provider phase p50 {summary['provider_phase_p50_ms']} ms)"
    )
    print(
        f"  of which intake (interaction to queued): p50 {summary['intake_p50_ms']} ms, "
        f"p99 {summary['intake_p99_ms']} ms; posting (delivering to posted): "
        f"p50 {summary['posting_p50_ms']} ms, p99 {summary['posting_p99_ms']} ms"
    )
    who = "gateway process" if roles else "bot process"
    print(
        f"CPU per job during the burst: {who} {summary['bot_cpu_ms_per_job']} ms until every "
        f"status said Done, {summary['bot_intake_cpu_ms_per_job']} ms until every /edit was "
        f"answered; fake Discord + provider fake {summary['fake_cpu_ms_per_job']} ms"
    )
    print(
        f"  (process CPU time, user + system, all threads, from /proc/<pid>/stat; not wall "
        f"clock; the 2 cores are shared); the {summary['jobs']} commands went out in "
        f"{summary['burst_sent_ms']} ms and were all answered after "
        f"{summary['all_answered_s']} s"
    )
    if "isolated_overhead_p50_ms" in summary:
        print(
            f"{args.isolated} /edit one at a time: bot overhead per job "
            f"p50 {summary['isolated_overhead_p50_ms']} ms, "
            f"p99 {summary['isolated_overhead_p99_ms']} ms"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
