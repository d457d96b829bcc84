"""The live tail against the real local S3 server: exactly once, flat cost, restarts survived."""

from __future__ import annotations

import asyncio
import time

import pytest

from perstack_tui import keys
from perstack_tui.follow import JobFollower
from perstack_tui.models import EventMeta
from perstack_tui.storage.base import dump_compact
from perstack_tui.storage.s3 import S3Storage
from tests.s3server import S3Server
from tests.test_follow import JOB, Writer, all_ids, collect_until, event, ids

pytestmark = pytest.mark.s3


def same_bucket(storage: S3Storage) -> S3Storage:
    """A second client on the same bucket (the writer), so ``stats`` count only the reader."""
    return S3Storage(
        storage.bucket,
        storage.prefix,
        region=storage.region,
        endpoint=storage.endpoint,
        force_path_style=True,
        access_key_id=storage.access_key_id,
        secret_access_key=storage.secret_access_key,
    )


async def test_s3_tail_shows_each_new_event_once_in_order(s3_storage: S3Storage) -> None:
    writer_storage = same_bucket(s3_storage)
    writer = Writer(writer_storage)
    follower = JobFollower(s3_storage, JOB, interval=0.1)
    writing = asyncio.create_task(writer.job(steps=4, pause=0.01))
    try:
        updates = await collect_until(follower.updates(), lambda seen: seen[-1].state == "idle")
    finally:
        await writing
        await writer_storage.close()
    assert all_ids(updates) == writer.written
    assert sorted(r for u in updates for r in u.new_runs) == [
        "run-coordinator",
        "run-coordinator-2",
        "run-helper",
    ]
    # checkpoints arrive with the events that carry them
    steps = [c.stepNumber for u in updates for c in u.checkpoints]
    assert steps == [1, 2, 3, 4, 5, 5, 6]


async def existing_history(
    storage: S3Storage, job_id: str, count: int
) -> dict[str, list[EventMeta]]:
    """``count`` events written an hour ago in one run; returns them as listed, by run."""
    start = int(time.time() * 1000) - 3_600_000
    data = [
        event("run-a", start + i, 1, "streamReasoning", f"old{i}") | {"jobId": job_id}
        for i in range(count)
    ]
    event_keys = [
        keys.event_key(job_id, "run-a", d["timestamp"], 1, "streamReasoning") for d in data
    ]
    limit = asyncio.Semaphore(16)

    async def put(key: str, value: dict) -> None:
        async with limit:
            await storage.write_bytes(key, dump_compact(value))

    await asyncio.gather(*(put(k, d) for k, d in zip(event_keys, data, strict=True)))
    return {"run-a": await storage.list_event_metas(job_id, "run-a")}


async def poll_cost(storage: S3Storage, follower: JobFollower) -> tuple[dict[str, int], int]:
    before = dict(storage.stats)
    update = await follower.poll()
    return {k: storage.stats[k] - before[k] for k in ("list", "get")}, len(update.new_events)


async def test_requests_per_poll_do_not_grow_with_existing_events(
    s3_storage: S3Storage,
) -> None:
    writer_storage = same_bucket(s3_storage)
    costs = {}
    try:
        for count in (100, 1000):
            job_id = f"history{count}"
            seen = await existing_history(writer_storage, job_id, count)
            follower = JobFollower(s3_storage, job_id, seen=seen, settle=0.2)
            assert (await follower.poll()).is_empty
            await asyncio.sleep(0.3)  # the history is older than `settle`: the next poll
            assert (await follower.poll()).is_empty  # moves the cursor past it for good
            idle, idle_events = await poll_cost(s3_storage, follower)
            new = event("run-a", int(time.time() * 1000), 1, "callTools", "new") | {"jobId": job_id}
            await writer_storage.store_event(new)
            one, one_events = await poll_cost(s3_storage, follower)
            assert (idle_events, one_events) == (0, 1)
            costs[count] = (idle, one)
    finally:
        await writer_storage.close()
    assert costs[100] == costs[1000]
    idle, one = costs[1000]
    assert idle == {"list": 2, "get": 0}  # the runs, and the one run after its cursor
    assert one == {"list": 2, "get": 1}


async def test_s3_tail_survives_a_server_restart_without_loss_or_repeat(
    s3_server: S3Server, s3_storage: S3Storage
) -> None:
    writer_storage = same_bucket(s3_storage)
    writer = Writer(writer_storage)
    follower = JobFollower(s3_storage, JOB, interval=0.1, backoff_initial=0.1, backoff_max=0.5)
    updates = follower.updates()
    try:
        await writer.add("run-coordinator", 1, "startRun")
        await writer.add("run-coordinator", 1, "callTools")
        before = await collect_until(updates, lambda seen: len(all_ids(seen)) == 2)
        await writer.add("run-coordinator", 1, "resolveToolResults")  # may land before the stop
        await asyncio.to_thread(s3_server.stop)
        try:
            down = await collect_until(
                updates, lambda seen: seen[-1].state == "reconnecting", deadline=30
            )
            assert "cannot reach" in (down[-1].error or "")
        finally:
            await asyncio.to_thread(s3_server.start)
        await writer.add("run-coordinator", 2, "continueToNextStep")
        await writer.add("run-helper", 3, "startRun")
        await writer.add("run-helper", 3, "completeRun")
        back = await collect_until(updates, lambda seen: seen[-1].state == "idle", deadline=30)
    finally:
        await updates.aclose()
        await writer_storage.close()
    assert all_ids(before + down + back) == writer.written
    assert [u.state for u in back][-1] == "idle"
    assert ids(back[-1].new_events)[-1] == writer.written[-1]
