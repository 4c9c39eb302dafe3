"""Job engine benchmark: ``python -m bench.queue`` (add ``--quick`` for a smaller run).

1. throughput: jobs from many guilds through a zero-latency provider on SQLite: jobs/s and
   the dispatch latency (a slot frees -> the next job starts), p50/p99.
2. fairness: one guild queues a flood, then many small guilds one job each; the small
   guilds' p95 wait under the engine's fair claim vs. a single global FIFO.
3. utilisation: share of provider slots busy while work is queued (during run 2).
4. memory: RSS growth with many queued jobs, each with its own reference image.

Prints progress lines, then one JSON line with every number.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import io
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.fakeprovider import FakeProvider, Plan, capabilities
from bot.jobs import EditRequest, EngineConfig, JobEngine, JobEvent, ProviderLimits, ResultImage
from bot.jobs.requests import ReferenceInput
from bot.models import GuildSettings, Job, JobKind, ReferenceSource
from storage import open_repository
from storage.sql import Repository


class NullDeliverer:
    def __init__(self) -> None:
        self.count = 0

    async def deliver(self, job: Job, images: list[ResultImage]) -> None:
        self.count += 1


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def rss_mb() -> float:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def open_repo(folder: str, name: str) -> Repository:
    repo = open_repository(f"sqlite:///{Path(folder) / name}")
    await repo.connect()
    return repo


def imagine(guild: int, user: int, prompt: str) -> EditRequest:
    return EditRequest(
        guild_id=guild, channel_id=1, user_id=user, kind=JobKind.IMAGINE, prompt=prompt
    )


async def fast_validate(data: bytes) -> object:
    """The benchmark's provider returns a known PNG: skip the Pillow probe's thread hop."""
    from bot.jobs.requests import OutputInfo
    from bot.models import OutputFormat

    return OutputInfo(format=OutputFormat.PNG, width=8, height=8, data=data)


# --- 1. throughput --------------------------------------------------------------------------


async def throughput(folder: str, jobs: int, guilds: int, concurrency: int) -> dict[str, float]:
    repo = await open_repo(folder, "throughput.db")
    provider = FakeProvider(capabilities("fake", concurrency=concurrency), default=Plan())
    config = EngineConfig(
        default_provider="fake", providers={"fake": ProviderLimits(concurrency=concurrency)}
    )
    deliverer = NullDeliverer()
    engine = JobEngine(
        repo,
        {"fake": provider},
        deliverer,
        config=config,
        validate_output=fast_validate,  # type: ignore[arg-type]
    )
    started = time.perf_counter()
    for i in range(jobs):
        await engine.submit(imagine(1 + i % guilds, i, f"job {i}"))
    submit_seconds = time.perf_counter() - started
    print(f"throughput: queued {jobs} jobs in {submit_seconds:.1f}s")
    started = time.perf_counter()
    await engine.start()
    await engine.run_until_idle()
    run_seconds = time.perf_counter() - started
    await engine.stop()
    assert deliverer.count == jobs, deliverer.count
    done = await repo.count_queued()
    assert done == 0
    await repo.close()
    latencies = [v * 1000 for v in engine.dispatch_latencies]
    result = {
        "jobs": jobs,
        "guilds": guilds,
        "concurrency": concurrency,
        "submit_per_s": round(jobs / submit_seconds, 1),
        "jobs_per_s": round(jobs / run_seconds, 1),
        "dispatch_p50_ms": round(percentile(latencies, 0.50), 3),
        "dispatch_p99_ms": round(percentile(latencies, 0.99), 3),
        "dispatch_samples": len(latencies),
    }
    print(f"throughput: {result}")
    return result


# --- 2 + 3. fairness and utilisation -----------------------------------------------------------


async def fairness(
    folder: str, flood: int, small: int, latency: float, concurrency: int, spread: float = 0.0
) -> dict[str, float]:
    """``spread`` > 0: the small guilds arrive one by one over that many seconds after the
    flood instead of all at once."""
    repo = await open_repo(folder, f"fairness-{spread}.db")
    provider = FakeProvider(
        capabilities("fake", concurrency=concurrency), default=Plan(latency=latency)
    )
    config = EngineConfig(
        default_provider="fake", providers={"fake": ProviderLimits(concurrency=concurrency)}
    )
    # The flooding guild's admin lifted its limits, so only the scheduler stands between
    # it and every slot.
    await repo.save_guild_settings(
        GuildSettings(
            guild_id=1,
            max_user_active=flood,
            max_guild_queue=flood,
            max_guild_running=flood,
            daily_quota=0,
        ),
        now=time.time(),
    )
    engine = JobEngine(
        repo,
        {"fake": provider},
        NullDeliverer(),
        config=config,
        validate_output=fast_validate,  # type: ignore[arg-type]
    )
    queued_at: dict[int, float] = {}
    started_at: dict[int, float] = {}
    small_ids: set[int] = set()

    async def on_event(event: JobEvent) -> None:
        if event.kind == "started":
            started_at.setdefault(event.job.id, time.perf_counter())

    engine.events.add(on_event)
    await engine.start()
    busy_samples: list[float] = []
    total = flood + small
    finished = asyncio.Event()

    async def sample() -> None:
        while not finished.is_set():
            await asyncio.sleep(0.005)
            if len(started_at) < total and len(queued_at) == total:
                busy_samples.append(provider.in_flight / concurrency)

    sampler = asyncio.create_task(sample())
    for i in range(flood):
        job = await engine.submit(imagine(1, 1, f"flood {i}"))
        queued_at[job.id] = time.perf_counter()
    first_small = time.perf_counter()
    for g in range(small):
        await asyncio.sleep(max(0.0, first_small + g * spread / small - time.perf_counter()))
        job = await engine.submit(imagine(100 + g, 1000 + g, f"small {g}"))
        queued_at[job.id] = time.perf_counter()
        small_ids.add(job.id)
    await engine.run_until_idle()
    finished.set()
    await sampler
    await engine.stop()
    await repo.close()
    fair_waits = [started_at[j] - queued_at[j] for j in small_ids]
    flood_waits = [started_at[j] - queued_at[j] for j in queued_at if j not in small_ids]

    fifo_waits = await global_fifo(flood, small, latency, concurrency, spread)
    fair_p95 = percentile(fair_waits, 0.95)
    fifo_p95 = percentile(fifo_waits, 0.95)
    result = {
        "small_arrival_spread_s": spread,
        "flood_jobs": flood,
        "small_guilds": small,
        "latency_ms": latency * 1000,
        "concurrency": concurrency,
        "small_p95_wait_s": round(fair_p95, 3),
        "small_p50_wait_s": round(percentile(fair_waits, 0.5), 3),
        "flood_p95_wait_s": round(percentile(flood_waits, 0.95), 3),
        "fifo_small_p95_wait_s": round(fifo_p95, 3),
        "fifo_ratio": round(fifo_p95 / fair_p95, 1) if fair_p95 > 0 else float("inf"),
        "utilisation": round(statistics.fmean(busy_samples), 4) if busy_samples else 0.0,
        "utilisation_samples": len(busy_samples),
    }
    print(f"fairness: {result}")
    return result


async def global_fifo(
    flood: int, small: int, latency: float, concurrency: int, spread: float
) -> list[float]:
    """The same load through one global first-in-first-out queue and the same slots."""
    queue: asyncio.Queue[tuple[bool, float]] = asyncio.Queue()
    waits: list[float] = []

    async def worker() -> None:
        while True:
            is_small, enqueued = await queue.get()
            if is_small:
                waits.append(time.perf_counter() - enqueued)
            await asyncio.sleep(latency)
            queue.task_done()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    for _ in range(flood):
        queue.put_nowait((False, time.perf_counter()))
    first_small = time.perf_counter()
    for g in range(small):
        await asyncio.sleep(max(0.0, first_small + g * spread / small - time.perf_counter()))
        queue.put_nowait((True, time.perf_counter()))
    await queue.join()
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return waits


# --- 4. memory ----------------------------------------------------------------------------------


def noise_png(seed: int, side: int = 40) -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def memory(folder: str, jobs: int) -> dict[str, float]:
    repo = await open_repo(folder, "memory.db")
    stuck = FakeProvider(
        capabilities("fake", asynchronous=True, concurrency=1),
        default=Plan(sync=False, finish_after=1e9),
    )
    engine = JobEngine(
        repo, {"fake": stuck}, NullDeliverer(), config=EngineConfig(default_provider="fake")
    )
    await engine.start()
    image_bytes = 0

    def request(i: int) -> EditRequest:
        nonlocal image_bytes
        data = noise_png(i)
        image_bytes += len(data)
        return EditRequest(
            guild_id=1 + i % 500,
            channel_id=1,
            user_id=i,
            kind=JobKind.EDIT,
            prompt=f"job {i}",
            images=(
                ReferenceInput(
                    data=data,
                    mime="image/png",
                    width=40,
                    height=40,
                    content_hash=hashlib.sha256(data).hexdigest(),
                    source=ReferenceSource.ATTACHMENT,
                ),
            ),
        )

    await engine.submit(request(-1))  # warm up imports and caches
    gc.collect()
    before = rss_mb()
    for i in range(jobs):
        await engine.submit(request(i))
    gc.collect()
    after = rss_mb()
    queued = await repo.count_queued()
    await engine.stop()
    await repo.close()
    result = {
        "queued_jobs": queued,
        "reference_mb_total": round(image_bytes / 2**20, 1),
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1),
    }
    print(f"memory: {result}")
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the load")
    parser.add_argument("--only", choices=["throughput", "fairness", "memory"])
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kontext-bench-") as folder:
        if args.only in (None, "throughput"):
            results["throughput"] = await throughput(folder, 10_000 // scale, 1_000 // scale, 64)
        if args.only in (None, "fairness"):
            results["fairness"] = await fairness(folder, 2_000 // scale, 200 // scale, 0.05, 8)
            # The same guilds arriving one by one during the flood's first 5 s (the usual case).
            results["fairness_arriving"] = await fairness(
                folder, 2_000 // scale, 200 // scale, 0.05, 8, spread=5.0 / scale
            )
        if args.only in (None, "memory"):
            results["memory"] = await memory(folder, 10_000 // scale)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
