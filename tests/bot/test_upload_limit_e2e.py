"""A worker process posts each result within its server's upload limit, which only the gateway
can see (a server's boost level raises it): the gateway stores it on the job when it queues.

One gateway and one worker (real ``kontext-bot`` processes on PostgreSQL) against the fake
Discord. The default limit is scaled down to 3,000 bytes so the provider fake's outputs (about
4 KB) are over it; a server at boost level 2 takes 50 MiB, as on Discord.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage import open_repository
from tests import pg
from tests.bot.test_scale_e2e import Cluster, HeldProvider, _edit, _job
from tests.discord_fake import FakeDiscord
from tests.fakes import docs_dir

BOOSTED_LIMIT = 50 * 1024 * 1024  # boost level 2
PLAIN_LIMIT = 3_000


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    yield from pg.session_database()


@pytest.mark.timeout(120)
async def test_a_worker_posts_within_each_servers_upload_limit(
    fake_discord: FakeDiscord, pg_url: str
) -> None:
    await pg.reset_database(pg_url)
    fake = fake_discord
    fake.attachment_size_limit = PLAIN_LIMIT
    alice = fake.user("alice")
    plain = fake.add_guild("Plain", humans=(), members=[alice], shard=(0, 2))
    boosted = fake.add_guild("Boosted", humans=(), members=[alice], shard=(0, 2))
    boosted.premium_tier = 2
    repo = open_repository(pg_url)
    await repo.connect()
    async with HeldProvider(docs=docs_dir()) as provider:
        provider.release()
        cluster = Cluster(fake, provider, pg_url)
        try:
            gateway = await cluster.gateway(0)
            worker = await cluster.worker(0)
            posted = {}
            for guild in (plain, boosted):
                _, job_id = await _edit(fake, guild, f"a result for {guild.name}")
                job = await _job(repo, job_id)
                result = await fake.wait_for_message(
                    job.thread_id or job.channel_id,
                    lambda m, j=job_id: f"kx:reroll:{j}" in str(m.components),
                    timeout=30,
                )
                finished = f"job {job_id} finished: done"  # the worker ran it
                await fake.wait_for(lambda f=finished: worker.said(f), timeout=30, what=finished)
                posted[guild.name] = (await _job(repo, job_id), result)
        finally:
            await cluster.close()
            for proc in cluster.procs:  # shown by pytest when the test fails
                print(f"--- {proc.name}", *proc.lines[-30:], sep="\n")
            await repo.close()
    plain_job, plain_result = posted["Plain"]
    boosted_job, boosted_result = posted["Boosted"]
    assert plain_job.upload_limit == PLAIN_LIMIT
    assert boosted_job.upload_limit == BOOSTED_LIMIT
    for job in (plain_job, boosted_job):  # the gateway ran neither job
        assert not gateway.said(f"job {job.id} finished")
    [shrunk] = plain_result.attachments
    assert shrunk["size"] <= PLAIN_LIMIT
    assert "Re-encoded to fit" in plain_result.content
    [whole] = boosted_result.attachments
    assert whole["size"] > PLAIN_LIMIT  # as the provider made it: it fits the boosted limit
    assert "Re-encoded" not in boosted_result.content
    assert not any(p.said("Traceback") for p in cluster.procs)
