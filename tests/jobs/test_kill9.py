"""Kill the engine process with SIGKILL while 50 jobs are in flight, restart it, and check
that every job ends exactly once, nothing with a saved handle was submitted twice and
nothing was posted twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PROC = Path(__file__).with_name("engine_proc.py")
JOBS = 50


def _spawn(db: Path, fake_db: Path, lease: float, submit: int = 0) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(PROC), str(db), str(fake_db), str(lease)]
    if submit:
        args.append(str(submit))
    with (db.parent / f"engine-{submit}.log").open("ab") as log:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)


def _log(db: Path, submit: int) -> str:
    return (db.parent / f"engine-{submit}.log").read_text(errors="replace")[-3000:]


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # schema not there yet
        return []
    finally:
        conn.close()


def test_kill_9_mid_flight_then_restart(tmp_path: Path) -> None:
    db, fake_db = tmp_path / "kontext.db", tmp_path / "fake.db"
    first = _spawn(db, fake_db, lease=1.0, submit=JOBS)
    try:
        # Wait for observable progress: many jobs running with a handle, a few already done.
        for _ in range(1500):
            counts = dict(_query(db, "SELECT status, COUNT(*) FROM jobs GROUP BY status"))
            if int(counts.get("running", 0)) >= 10 and int(counts.get("done", 0)) >= 1:  # type: ignore[call-overload]
                break
            assert first.poll() is None, _log(db, JOBS)
            time.sleep(0.01)
        else:
            raise AssertionError(f"no progress before the kill: {counts}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.time()
    assert first.returncode == -signal.SIGKILL

    at_kill = {
        int(job_id): (str(status), handle)  # type: ignore[call-overload]
        for job_id, status, handle in _query(db, "SELECT id, status, provider_handle FROM jobs")
    }
    assert len(at_kill) == JOBS
    in_flight = [s for s, _ in at_kill.values() if s not in ("done", "queued")]
    assert len(in_flight) >= 10

    second = _spawn(db, fake_db, lease=1.0)
    second.wait(timeout=60)
    assert second.returncode == 0, _log(db, 0)

    final = dict(_query(db, "SELECT id, status FROM jobs"))
    assert set(final.values()) == {"done"}, final
    # Each job ended exactly once.
    endings = Counter(
        job_id for (job_id,) in _query(db, "SELECT job_id FROM job_events WHERE status = 'done'")
    )
    assert len(endings) == JOBS and set(endings.values()) == {1}

    prompts = {int(i): str(p) for i, p in _query(db, "SELECT id, prompt FROM jobs")}  # type: ignore[call-overload]
    submissions = Counter(str(p) for (p,) in _query(fake_db, "SELECT prompt FROM submissions"))
    handled = [job_id for job_id, (_, handle) in at_kill.items() if handle]
    assert handled, "some jobs must have had a handle at the kill"
    for job_id in handled:
        assert submissions[prompts[job_id]] == 1, f"job {job_id} was submitted twice"
    assert set(submissions) == set(prompts.values())
    resubmitted = [p for p, n in submissions.items() if n > 1]
    without_handle = {prompts[i] for i, (s, h) in at_kill.items() if s == "submitting" and not h}
    assert set(resubmitted) <= without_handle

    posted = Counter(int(j) for (j,) in _query(fake_db, "SELECT job_id FROM posted"))  # type: ignore[call-overload]
    assert len(posted) == JOBS and set(posted.values()) == {1}
    attempts = Counter(int(j) for (j,) in _query(fake_db, "SELECT job_id FROM delivery_attempts"))  # type: ignore[call-overload]
    repeated = {j for j, n in attempts.items() if n > 1}
    assert repeated <= {j for j, (s, _) in at_kill.items() if s == "delivering"}
    # Jobs that were running with a handle were polled again after the kill.
    polled_after = {
        str(h) for (h,) in _query(fake_db, f"SELECT handle FROM polls WHERE at > {killed_at}")
    }
    running = {str(h) for s, h in at_kill.values() if s == "running" and h}
    assert running and running <= polled_after
