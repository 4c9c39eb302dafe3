"""Scaling benchmark: ``python -m bench.scale`` (``--quick`` for a smaller run).

1. engines: 1, 2 and 4 engine processes (real subprocesses) on one PostgreSQL database,
   against a provider fake that takes 200 ms per job, with an account limit high enough not
   to bind: jobs/s and how close to linear (each process works on ``--slots`` jobs at once).
2. binding: 4 processes whose slots add up to more than the account allows: the most jobs
   the provider ever saw at once (must not exceed the limit) and the share of the account's
   slots that were busy while work was queued.
3. gateway: 10,000 guilds over 16 shards on the fake Discord; a separate client process
   (discord.py's AutoShardedClient, member caching off, IDENTIFYs paced by max_concurrency)
   reports the time until every shard is READY and its RSS.

Prints progress lines, then one JSON line with every number. Each engine process reports
the provider calls it made (start and end, wall clock) on stdout; the numbers come from
those, over the window in which every process was running and work was queued.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bench.queue import NullDeliverer, fast_validate, rss_mb
from bot.jobs import EngineConfig, JobEngine, ProviderLimits
from bot.models import JobKind, NewJob
from bot.providers.base import Finished, GenerationRequest, Submitted
from storage import open_repository
from tests import pg

LATENCY = 0.2
SLOTS = 2  # jobs one engine process works on at once
GUILDS = 100
PROCESS_TIMEOUT = 300.0


# --- the engine process ------------------------------------------------------------------


class TimedProvider(FakeProvider):
    """The fake provider, noting when each call started and ended (wall clock)."""

    calls: list[tuple[float, float]]

    async def submit(self, request: GenerationRequest) -> Submitted | Finished:
        start = time.time()
        try:
            return await super().submit(request)
        finally:
            self.calls.append((start, time.time()))


async def engine_process(url: str, account: int, slots: int, latency: float) -> None:
    repo = open_repository(url)
    await repo.connect()
    provider = TimedProvider(
        capabilities("fake", concurrency=account), default=Plan(latency=latency)
    )
    provider.calls = []
    config = EngineConfig(
        default_provider="fake",
        providers={"fake": ProviderLimits(concurrency=account)},
        worker_concurrency=slots,
        safety_poll_seconds=5.0,
        output_retention_seconds=None,
    )
    engine = JobEngine(
        repo,
        {"fake": provider},
        NullDeliverer(),
        config=config,
        validate_output=fast_validate,  # type: ignore[arg-type]
    )
    await engine.start()
    await engine.run_until_idle()
    await engine.stop()
    await repo.close()
    sys.stdout.write(json.dumps({"calls": provider.calls}) + "\n")


# --- measuring engines ---------------------------------------------------------------------


async def _enqueue(url: str, jobs: int) -> None:
    repo = open_repository(url)
    await repo.connect()
    try:
        now = time.time()
        for index in range(jobs):
            guild = 1 + index % GUILDS
            await repo.enqueue(
                NewJob(
                    guild_id=guild,
                    channel_id=guild,
                    user_id=index % 7,
                    kind=JobKind.IMAGINE,
                    prompt=f"job {index}",
                    provider="fake",
                ),
                now=now,
            )
    finally:
        await repo.close()


async def _run_engines(
    url: str, processes: int, jobs: int, account: int
) -> list[list[tuple[float, float]]]:
    await pg.reset_database(url)
    await _enqueue(url, jobs)
    args = ["worker", url, str(account), str(SLOTS), str(LATENCY)]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scale", *args, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(processes)
    ]
    try:
        outputs = await asyncio.wait_for(
            asyncio.gather(*(p.communicate() for p in procs)), PROCESS_TIMEOUT
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    results = []
    for proc, (out, _) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"an engine process failed ({proc.returncode})")
        last = out.decode().strip().splitlines()[-1]
        results.append([(float(a), float(b)) for a, b in json.loads(last)["calls"]])
    return results


def _window(per_process: list[list[tuple[float, float]]]) -> tuple[float, float]:
    """From when every process had started working to when the last job was handed out."""
    start = max(min(s for s, _ in calls) for calls in per_process)
    end = max(s for calls in per_process for s, _ in calls)
    return start, end


def _busy(calls: list[tuple[float, float]], start: float, end: float) -> tuple[int, float]:
    """The most calls at once overall, and the time-integral of calls in flight in the window."""
    edges = sorted([(s, 1) for s, _ in calls] + [(e, -1) for _, e in calls])
    running = peak = 0
    integral = 0.0
    previous = start
    for moment, step in edges:
        if start < moment:
            clipped = min(moment, end)
            if clipped > previous:
                integral += running * (clipped - previous)
                previous = clipped
        running += step
        peak = max(peak, running)
    return peak, integral


async def measure_engines(url: str, quick: bool) -> dict[str, Any]:
    per_process_jobs = 40 if quick else 80
    out: dict[str, Any] = {"latency_s": LATENCY, "slots_per_process": SLOTS}
    rates: dict[int, float] = {}
    for processes in (1, 2, 4):
        jobs = per_process_jobs * processes
        calls = await _run_engines(url, processes, jobs, account=1000)
        start, end = _window(calls)
        flat = [c for per in calls for c in per]
        done = sum(1 for s, _ in flat if start <= s < end)
        rates[processes] = done / (end - start)
        peak, _ = _busy(flat, start, end)
        print(
            f"  {processes} process(es): {rates[processes]:.1f} jobs/s "
            f"(ideal {processes * SLOTS / LATENCY:.0f}); at most {peak} at the provider"
        )
        out[f"jobs_per_s_{processes}"] = round(rates[processes], 1)
    for processes in (2, 4):
        out[f"linearity_{processes}"] = round(rates[processes] / (processes * rates[1]), 3)
    account = 6
    calls = await _run_engines(url, 4, per_process_jobs * 4, account=account)
    flat = [c for per in calls for c in per]
    start, end = _window(calls)
    peak, integral = _busy(flat, start, end)
    utilisation = integral / (account * (end - start))
    print(
        f"  binding limit {account} over 4 x {SLOTS} slots: at most {peak} at once, "
        f"slots busy {utilisation:.1%}"
    )
    out |= {
        "binding_limit": account,
        "binding_max_in_flight": peak,
        "binding_busy": round(utilisation, 4),
    }
    return out


# --- the gateway --------------------------------------------------------------------------


async def client_process(api_base: str, token: str) -> None:
    import discord

    from tests.discord_fake.testbot import ShardedTestClient

    discord.http.Route.BASE = api_base
    client = ShardedTestClient()
    shard_ready: dict[int, float] = {}
    began = time.perf_counter()

    async def on_shard_ready(shard_id: int) -> None:
        shard_ready[shard_id] = time.perf_counter() - began

    client.event(on_shard_ready)
    await client.login(token)
    runner = asyncio.create_task(client.connect())
    waiter = asyncio.create_task(client.wait_until_ready())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        runner.result()  # connecting failed: raise why
        raise RuntimeError("the client stopped before it was ready")
    ready = time.perf_counter() - began
    result = {
        "ready_s": ready,
        "shards": client.shard_count,
        "guilds": len(client.guilds),
        "slowest_shard_s": max(shard_ready.values()),
        "rss_mb": rss_mb(),
    }
    await client.close()
    with contextlib.suppress(Exception):
        await runner
    sys.stdout.write(json.dumps(result) + "\n")


async def measure_gateway(guilds: int, shards: int) -> dict[str, Any]:
    from tests.discord_fake import FakeDiscord

    fake = FakeDiscord()
    fake.max_concurrency = shards
    fake.guilds_per_shard = -(-guilds // shards)  # GET /gateway/bot recommends ``shards``
    people = [fake.user(name) for name in ("alice", "bob", "carol")]
    for index in range(guilds - 1):  # the fake starts with one guild
        fake.add_guild(
            f"guild {index}",
            channels=("general",),
            humans=(),
            members=people[: 1 + index % 3],
            shard=(index % shards, shards),
        )
    await fake.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.scale",
            "client",
            fake.api_base,
            fake.token,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), PROCESS_TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        await fake.close()
    if proc.returncode != 0:
        raise RuntimeError(f"the client process failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["violations"] = len(fake.violations)
    print(
        f"  {result['guilds']} guilds over {result['shards']} shards: every shard READY after "
        f"{result['ready_s']:.2f} s; client RSS {result['rss_mb']:.0f} MB; "
        f"{result['violations']} violations"
    )
    return {f"gateway_{key}": value for key, value in result.items()}


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("mode", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode[:1] == ["worker"]:
        url, account, slots, latency = args.mode[1:]
        await engine_process(url, int(account), int(slots), float(latency))
        return
    if args.mode[:1] == ["client"]:
        await client_process(*args.mode[1:3])
        return
    results: dict[str, Any] = {}
    url = await pg.create_temp_database()
    try:
        print("engine processes on PostgreSQL, 200 ms provider:")
        results |= await measure_engines(url, args.quick)
    finally:
        await pg.drop_database(url)
    print("gateway:")
    results |= await measure_gateway(2_000 if args.quick else 10_000, 16)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    asyncio.run(main(sys.argv[1:]))
