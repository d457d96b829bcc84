"""The live tail engine: JobFollower and JobsWatcher on the filesystem and memory backends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from perstack_tui import keys
from perstack_tui.follow import (
    FollowUpdate,
    JobFollower,
    JobsWatcher,
    _Waker,
    job_has_ended,
)
from perstack_tui.models import EventMeta, RunEvent, Unreadable, parse_event
from perstack_tui.storage.base import KeyValueStorage, StorageError, dump_compact
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.storage.memory import MemoryStorage
from tests.conftest import COORDINATOR_JOB, CORRUPT_EVENT, ERROR_JOB

JOB = "livejob0000000000000000001"
DEADLINE = 10.0


# --- a small writer: Perstack-shaped events, appended through the storage ----------------


def checkpoint(run_id: str, step: int, status: str, delegated_by: str | None = None) -> dict:
    data: dict[str, Any] = {
        "id": f"cp-{run_id}-{step}",
        "jobId": JOB,
        "runId": run_id,
        "status": status,
        "stepNumber": step,
        "messages": [],
        "expert": {"key": "coordinator", "name": "coordinator", "version": "1.0.0"},
        "usage": {"inputTokens": step, "outputTokens": 1, "totalTokens": step + 1},
    }
    if delegated_by:
        data["delegatedBy"] = {
            "expert": {"key": "coordinator"},
            "toolCallId": "call-1",
            "toolName": "helper",
            "checkpointId": "cp-x",
            "runId": delegated_by,
        }
    return data


def event(
    run_id: str, timestamp: int, step: int, kind: str, ident: str, **extra: Any
) -> dict[str, Any]:
    data = {
        "type": kind,
        "id": ident,
        "expertKey": "coordinator",
        "timestamp": timestamp,
        "jobId": JOB,
        "runId": run_id,
        "stepNumber": step,
    }
    if kind == "streamReasoning":
        data["delta"] = f"thinking {ident} "
    if kind in ("continueToNextStep", "completeRun", "stopRunByDelegate", "stopRunByError"):
        status = {"continueToNextStep": "proceeding", "completeRun": "completed"}.get(
            kind, "stoppedByDelegate"
        )
        data["checkpoint"] = checkpoint(run_id, step, status, extra.pop("delegated_by", None))
    data.update(extra)
    return data


def key_of(data: dict[str, Any]) -> str:
    return keys.event_key(
        data["jobId"], data["runId"], data["timestamp"], data["stepNumber"], data["type"]
    )


class Writer:
    """Appends a realistic job (a coordinator delegating to a helper) with increasing times."""

    KINDS = ("startGeneration", "streamReasoning", "callTools", "resolveToolResults")

    def __init__(self, storage: KeyValueStorage, start: int | None = None) -> None:
        self.storage = storage
        self.clock = start if start is not None else int(time.time() * 1000)
        self.written: list[str] = []  # event ids in write order

    async def add(self, run_id: str, step: int, kind: str, **extra: Any) -> dict[str, Any]:
        self.clock += 1
        data = event(run_id, self.clock, step, kind, f"ev{len(self.written)}", **extra)
        await self.storage.store_event(data)
        if "checkpoint" in data:
            await self.storage.store_checkpoint(data["checkpoint"])
        self.written.append(data["id"])
        return data

    async def job(self, steps: int, pause: float = 0.0) -> None:
        """startRun, steps of work, a delegation to a helper run, and the coordinator's end."""
        await self.add("run-coordinator", 1, "startRun")
        for step in range(1, steps + 1):
            for kind in self.KINDS:
                await self.add("run-coordinator", step, kind)
                await asyncio.sleep(pause)
            await self.add("run-coordinator", step, "continueToNextStep")
        await self.add("run-coordinator", steps + 1, "stopRunByDelegate")
        await self.add("run-helper", steps + 1, "startRun")
        await self.add("run-helper", steps + 1, "streamReasoning")
        await asyncio.sleep(pause)
        await self.add("run-helper", steps + 1, "completeRun", delegated_by="run-coordinator")
        await self.add("run-coordinator-2", steps + 2, "startRun")
        await asyncio.sleep(pause)
        await self.add("run-coordinator-2", steps + 2, "completeRun", text="done")


def ids(events: list[RunEvent | Unreadable]) -> list[str]:
    return [e.id if isinstance(e, RunEvent) else f"unreadable:{e.key}" for e in events]


async def collect_until(
    updates: AsyncIterator[FollowUpdate], done, deadline: float = DEADLINE
) -> list[FollowUpdate]:
    """Updates until ``done(all_so_far)`` is true; fails at the deadline."""
    seen: list[FollowUpdate] = []

    async def run() -> None:
        async for update in updates:
            seen.append(update)
            if done(seen):
                return

    try:
        await asyncio.wait_for(run(), deadline)
    except TimeoutError:
        pytest.fail(f"deadline passed; got {[(ids(u.new_events), u.state) for u in seen]}")
    return seen


def all_ids(updates: list[FollowUpdate]) -> list[str]:
    return [i for u in updates for i in ids(u.new_events)]


# --- tests --------------------------------------------------------------------------------


async def test_first_poll_reports_existing_runs_and_events_with_corrupt_file_unreadable(
    real_storage: FileSystemStorage,
) -> None:
    follower = JobFollower(real_storage, COORDINATOR_JOB)
    update = await follower.poll()
    assert sorted(update.new_runs) == ["hadyhjk3onqq4qi3j6ixtsng", "r3k7c4urwywzgewayor7pkse"]
    types = [e.type for e in update.new_events]
    assert types == [
        "startRun",
        "streamReasoning",
        "callTools",
        "resolveToolResults",
        "continueToNextStep",
        "callDelegate",
        "unreadable",
        "completeRun",
    ]
    corrupt = update.new_events[6]
    assert isinstance(corrupt, Unreadable) and corrupt.key == CORRUPT_EVENT
    assert [c.stepNumber for c in update.checkpoints] == [1, 4]
    # the helper's completeRun hands back to the coordinator: the job is not over
    assert update.state == "live"
    again = await follower.poll()
    assert again.is_empty and again.state == "live"


async def test_job_stopped_by_error_is_idle(real_storage: FileSystemStorage) -> None:
    update = await JobFollower(real_storage, ERROR_JOB).poll()
    assert [e.type for e in update.new_events] == ["stopRunByError"]
    assert update.state == "idle"


async def test_poll_reports_only_what_is_new_each_time() -> None:
    storage = MemoryStorage()
    writer = Writer(storage)
    follower = JobFollower(storage, JOB)
    assert (await follower.poll()).is_empty
    written = [await writer.add("run-a", 1, kind) for kind in ("startRun", "callTools")]
    first = await follower.poll()
    assert first.new_runs == ["run-a"] and ids(first.new_events) == ["ev0", "ev1"]
    assert first.event_keys == [key_of(data) for data in written]
    assert (await follower.poll()).is_empty
    await writer.add("run-a", 1, "resolveToolResults")
    await writer.add("run-b", 2, "startRun")
    second = await follower.poll()
    assert second.new_runs == ["run-b"] and ids(second.new_events) == ["ev2", "ev3"]


async def test_seen_events_are_not_reported_again() -> None:
    storage = MemoryStorage()
    writer = Writer(storage)
    for kind in ("startRun", "callTools"):
        await writer.add("run-a", 1, kind)
    follower = JobFollower(storage, JOB, seen=await listed(storage))
    update = await follower.poll()
    assert update.new_runs == [] and update.new_events == []
    await writer.add("run-a", 1, "resolveToolResults")
    assert ids((await follower.poll()).new_events) == ["ev2"]


async def test_seen_events_of_an_ended_job_make_it_idle() -> None:
    storage = MemoryStorage()
    writer = Writer(storage)
    await writer.job(steps=1)
    update = await JobFollower(storage, JOB, seen=await listed(storage)).poll()
    assert update.is_empty and update.state == "idle"


async def test_seen_history_keeps_only_the_look_back_window() -> None:
    """A long history costs the follower its last few seconds, not every event: what it
    keeps is what it would keep after taking every event one by one."""
    storage = MemoryStorage()
    writer = Writer(storage, start=1_000_000)
    for step in range(200):
        await writer.add("run-a", step, "streamReasoning")
        writer.clock += 97  # ~20 s of history: 31 events in the last 3 s
    follower = JobFollower(storage, JOB, seen=await listed(storage), lookback_ms=3000)
    cursor = follower._cursors["run-a"]
    assert len(cursor.recent) == 31
    assert cursor.floor == writer.clock - 97 - 3000
    assert (await follower.poll()).is_empty
    await writer.add("run-a", 200, "completeRun")
    assert ids((await follower.poll()).new_events) == ["ev200"]


async def listed(storage: KeyValueStorage) -> dict[str, list[EventMeta]]:
    """Every run's events as the job screen lists them."""
    return {r: await storage.list_event_metas(JOB, r) for r in await storage.list_run_ids(JOB)}


async def test_tail_shows_each_new_event_once_in_order_on_the_filesystem(tmp_path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    follower = JobFollower(storage, JOB, interval=0.05)
    writing = asyncio.create_task(writer.job(steps=6, pause=0.005))
    try:
        updates = await collect_until(follower.updates(), lambda seen: seen[-1].state == "idle")
    finally:
        await writing
    assert all_ids(updates) == writer.written
    runs = [r for u in updates for r in u.new_runs]
    assert sorted(runs) == ["run-coordinator", "run-coordinator-2", "run-helper"]
    assert len(runs) == 3
    assert updates[0].state == "live"


async def test_new_event_reaches_a_filesystem_tail_within_half_a_second(tmp_path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    await writer.add("run-a", 1, "startRun")
    # a long interval: only the filesystem watch (or its short poll) can be this quick
    follower = JobFollower(storage, JOB, interval=30.0)
    updates = follower.updates()
    assert ids((await anext(updates)).new_events) == ["ev0"]
    await asyncio.sleep(0.05)
    written_at = time.monotonic()
    await writer.add("run-a", 1, "callTools")
    update = await asyncio.wait_for(anext(updates), DEADLINE)
    assert ids(update.new_events) == ["ev1"]
    assert time.monotonic() - written_at < 0.5
    await updates.aclose()


async def test_the_watch_wakes_for_each_run_folder_it_was_given(tmp_path, monkeypatch) -> None:
    """A job is watched folder by folder (no walk of its events): a change in its runs
    folder, or in a run folder given to it, even one added later, wakes the tail at once."""
    monkeypatch.setattr(_Waker, "FILESYSTEM_INTERVAL", 60.0)  # only the watch can wake it

    async def installed() -> None:
        while not waker._watching:
            await asyncio.sleep(0.01)

    async def woken() -> None:
        await asyncio.wait_for(waker.wait(60.0), DEADLINE)

    runs = tmp_path / "runs"
    (runs / "run-a").mkdir(parents=True)
    before = set(threading.enumerate())
    waker = _Waker(runs, recursive=False)
    waker.watch_also(["run-a"])
    assert await waker.start()
    await asyncio.wait_for(installed(), DEADLINE)
    (runs / "run-a" / "event-1.json").write_text("{}")
    await woken()
    (runs / "run-b").mkdir()
    await woken()
    waker.watch_also(["run-a", "run-b"])  # run-b is new: the watch starts again with it
    assert not waker._watching and await waker.start()
    await asyncio.wait_for(installed(), DEADLINE)
    (runs / "run-b" / "event-2.json").write_text("{}")
    await woken()
    await waker.close()

    async def threads_gone() -> None:  # each watch's thread ends once it is stopped
        while any(t.name == "perstack-watch" for t in set(threading.enumerate()) - before):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(threads_gone(), DEADLINE)


async def test_partially_written_file_is_shown_once_complete(tmp_path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    await writer.add("run-a", 1, "startRun")
    follower = JobFollower(storage, JOB, pending_attempts=3, pending_timeout=5.0)
    assert ids((await follower.poll()).new_events) == ["ev0"]
    writer.clock += 1
    half = event("run-a", writer.clock, 1, "callTools", "ev1")
    raw = dump_compact(half)
    path = storage.path_of(key_of(half))
    path.write_bytes(raw[: len(raw) // 2])  # the writer is mid-way
    after = await writer.add("run-a", 1, "resolveToolResults")
    # neither the truncated file nor the event behind it comes out yet
    assert (await follower.poll()).new_events == []
    assert (await follower.poll()).new_events == []
    path.write_bytes(raw)
    assert ids((await follower.poll()).new_events) == ["ev1", after["id"]]
    assert (await follower.poll()).is_empty


async def test_file_that_stays_bad_is_reported_unreadable_once(tmp_path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    await writer.add("run-a", 1, "startRun")
    follower = JobFollower(storage, JOB, pending_attempts=2, pending_timeout=0.2)
    await follower.poll()
    bad_key = keys.event_key(JOB, "run-a", writer.clock + 1, 1, "streamRunResult")
    await storage.write_bytes(bad_key, b'{"type":"streamRunResult","delta":"a"}{"type":')
    writer.clock += 1
    await writer.add("run-a", 1, "completeRun")
    reported: list[RunEvent | Unreadable] = []
    deadline = time.monotonic() + DEADLINE
    while len(reported) < 2 and time.monotonic() < deadline:
        reported += (await follower.poll()).new_events
        await asyncio.sleep(0.05)
    assert ids(reported) == [f"unreadable:{bad_key}", "ev1"]
    assert "not valid JSON" in reported[0].reason
    assert (await follower.poll()).is_empty


async def test_two_events_sharing_a_file_name_do_not_break_the_tail() -> None:
    storage = MemoryStorage()
    writer = Writer(storage)
    follower = JobFollower(storage, JOB)
    await writer.add("run-a", 1, "startRun")
    # Perstack writes two stream deltas in the same millisecond: one file, the last wins.
    first = event("run-a", writer.clock + 1, 1, "streamRunResult", "delta-1", delta="a")
    second = event("run-a", writer.clock + 1, 1, "streamRunResult", "delta-2", delta="b")
    await storage.store_event(first)
    update = await follower.poll()
    await storage.store_event(second)
    writer.clock += 1
    await writer.add("run-a", 1, "completeRun")
    later = await follower.poll()
    assert ids(update.new_events) == ["ev0", "delta-1"]
    assert ids(later.new_events) == ["ev1"]


async def test_event_written_late_with_an_older_time_is_not_missed() -> None:
    storage = MemoryStorage()
    writer = Writer(storage)
    follower = JobFollower(storage, JOB)
    await writer.add("run-a", 1, "startRun")
    await writer.add("run-a", 1, "callTools")
    await follower.poll()
    # a racing write lands after a newer one was listed (names sort before the cursor)
    straggler = event("run-a", writer.clock - 1, 1, "callDelegate", "late")
    await storage.store_event(straggler)
    assert ids((await follower.poll()).new_events) == ["late"]
    assert (await follower.poll()).is_empty


class FlakyStorage(MemoryStorage):
    """A memory storage whose server can be "down" (every call fails like a lost network)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def check(self) -> None:
        if self.down:
            raise StorageError("cannot reach memory:flaky: connection refused")

    async def list_prefixes(self, prefix: str) -> list[str]:
        self.check()
        return await super().list_prefixes(prefix)

    async def list_objects(self, prefix: str, start_after: str | None = None):  # type: ignore[no-untyped-def]
        self.check()
        return await super().list_objects(prefix, start_after)

    async def read_bytes(self, key: str) -> bytes:
        self.check()
        return await super().read_bytes(key)


async def test_storage_failure_shows_reconnecting_and_resumes_without_loss_or_repeat() -> None:
    storage = FlakyStorage()
    writer = Writer(storage)
    follower = JobFollower(storage, JOB, interval=0.02, backoff_initial=0.01, backoff_max=0.05)
    updates = follower.updates()
    await writer.add("run-a", 1, "startRun")
    got = await collect_until(updates, lambda seen: all_ids(seen) == ["ev0"])
    storage.down = True
    await writer.add("run-a", 1, "callTools")  # written while the reader cannot see it
    await writer.add("run-b", 2, "startRun")
    down = await collect_until(updates, lambda seen: seen[-1].state == "reconnecting")
    assert down[-1].error and "connection refused" in down[-1].error
    assert follower.state == "reconnecting"
    storage.down = False
    await writer.add("run-b", 2, "completeRun")
    back = await collect_until(updates, lambda seen: seen[-1].state == "idle")
    await updates.aclose()
    assert all_ids(got + down + back) == writer.written
    assert [r for u in got + down + back for r in u.new_runs] == ["run-a", "run-b"]


async def test_failure_during_reads_consumes_nothing() -> None:
    storage = FlakyStorage()
    writer = Writer(storage)
    follower = JobFollower(storage, JOB)
    await writer.add("run-a", 1, "startRun")

    async def failing_read(key: str) -> bytes:
        raise StorageError("read timed out")

    storage.read_bytes = failing_read  # type: ignore[method-assign]
    failed = await follower.poll()
    assert failed.state == "reconnecting" and failed.new_events == []
    del storage.read_bytes
    update = await follower.poll()
    assert ids(update.new_events) == ["ev0"] and update.new_runs == ["run-a"]


async def test_memory_stays_bounded_over_a_long_tail() -> None:
    storage = MemoryStorage()
    writer = Writer(storage)
    follower = JobFollower(storage, JOB, lookback_ms=50)
    count = 0
    for _ in range(40):
        for _ in range(50):
            await writer.add("run-a", 1, "streamReasoning")
        count += len((await follower.poll()).new_events)
    assert count == 2000
    cursor = follower._cursors["run-a"]
    assert len(cursor.recent) <= 64 + 50 + 1
    assert not follower._pending and not follower._held


def test_job_end_rules() -> None:
    def parsed(kind: str, **extra: Any) -> RunEvent:
        result = parse_event(event("r", 1_700_000_000_000, 1, kind, "x", **extra))
        assert isinstance(result, RunEvent)
        return result

    assert job_has_ended(parsed("completeRun"))
    assert job_has_ended(parsed("stopRunByError"))
    assert not job_has_ended(parsed("completeRun", delegated_by="caller"))
    assert not job_has_ended(parsed("stopRunByDelegate"))
    assert not job_has_ended(parsed("callTools"))
    assert not job_has_ended(None)


async def test_jobs_watcher_reports_each_new_job_once(tmp_path) -> None:
    storage = FileSystemStorage(tmp_path)
    await Writer(storage).add("run-a", 1, "startRun")
    watcher = JobsWatcher(storage, interval=0.02)
    stream = watcher.new_job_ids()
    batches: list[list[str]] = []

    async def add_job(job_id: str) -> None:
        await storage.write_bytes(keys.checkpoint_key(job_id, "cp"), b"{}")

    async def next_batch() -> None:
        batches.append(await asyncio.wait_for(anext(stream), DEADLINE))

    task = asyncio.create_task(next_batch())
    await asyncio.sleep(0.05)  # the watcher has its baseline
    await add_job("newjob1")
    await task
    await add_job("newjob2")
    await add_job("newjob3")
    while sum(len(b) for b in batches) < 3:
        await next_batch()
    await stream.aclose()
    assert sorted(i for b in batches for i in b) == ["newjob1", "newjob2", "newjob3"]
    assert JOB not in [i for b in batches for i in b]


async def test_jobs_watcher_with_known_ids_reports_the_rest_at_once() -> None:
    storage = MemoryStorage()
    for job_id in ("a", "b", "c"):
        await storage.write_bytes(keys.checkpoint_key(job_id, "cp"), b"{}")
    watcher = JobsWatcher(storage, known=["a"])
    assert await watcher.poll() == ["b", "c"]
    assert await watcher.poll() == []


def test_a_large_bucket_is_listed_for_new_jobs_less_often() -> None:
    storage = MemoryStorage()
    assert JobsWatcher(storage, known=[f"j{i}" for i in range(900)]).wait == 2.0
    assert JobsWatcher(storage, known=[f"j{i}" for i in range(10_000)]).wait == 5.0  # 10 pages
    assert JobsWatcher(storage, known=[f"j{i}" for i in range(100_000)]).wait == 15.0
    assert JobsWatcher(storage, interval=0.05, known=[]).wait == 0.05


async def test_tail_of_the_demo_live_writer_shows_each_event_once_in_order(tmp_path) -> None:
    from perstack_tui.demo import DemoJob, LiveWriter

    storage = FileSystemStorage(tmp_path)
    started: list[DemoJob] = []
    live = LiveWriter(FileSystemStorage(tmp_path), pace=0.02, seed=7, on_job_started=started.append)
    watcher = JobsWatcher(storage, interval=0.05, known=[])
    jobs = watcher.new_job_ids()
    writing = asyncio.create_task(live.run(max_jobs=1))
    try:
        (job_id,) = await asyncio.wait_for(anext(jobs), DEADLINE)
        await jobs.aclose()
        assert [job.job_id for job in started] == [job_id]
        follower = JobFollower(storage, job_id, interval=0.05)
        updates = await collect_until(follower.updates(), lambda seen: seen[-1].state == "idle")
    finally:
        live.stop()
        await writing
    expected = sorted(
        (parsed.event.timestamp, item.key)
        for item in started[0].objects
        if (parsed := keys.parse_key(item.key)).event is not None
    )
    followed = [key for u in updates for key in u.event_keys]
    assert followed == [key for _, key in expected]
    assert not any(isinstance(e, Unreadable) for u in updates for e in u.new_events)


class CountingStorage(MemoryStorage):
    """Counts listings, as S3 request stats would."""

    def __init__(self) -> None:
        super().__init__()
        self.listings = 0

    async def list_objects(self, prefix: str, start_after: str | None = None):  # type: ignore[no-untyped-def]
        self.listings += 1
        return await super().list_objects(prefix, start_after)

    async def list_prefixes(self, prefix: str) -> list[str]:
        self.listings += 1
        return await super().list_prefixes(prefix)


async def test_runs_that_ended_are_not_listed_on_every_poll() -> None:
    storage = CountingStorage()
    writer = Writer(storage)
    for n in range(4):  # delegates that finished long ago
        await writer.add(f"run-{n}", n + 1, "startRun")
        await writer.add(f"run-{n}", n + 1, "completeRun", delegated_by="run-x")
    await writer.add("run-live", 9, "startRun")
    follower = JobFollower(storage, JOB, settle=0.05)
    assert len((await follower.poll()).new_events) == 9
    await asyncio.sleep(0.1)  # the ended runs are now older than `settle`
    await follower.poll()
    before = storage.listings
    await follower.poll()
    assert storage.listings - before == 2  # the runs, and the one still running
    await writer.add("run-live", 9, "callTools")
    assert ids((await follower.poll()).new_events) == ["ev9"]
    # a safety sweep still lists every run now and then
    while follower.polls % 30:
        await follower.poll()
    before = storage.listings
    await follower.poll()
    assert storage.listings - before == 6
