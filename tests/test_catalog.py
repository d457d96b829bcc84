"""The catalog: jobs and runs rebuilt from what the storage holds, with few reads."""

from __future__ import annotations

import functools
import json
from collections import Counter

import pytest

from perstack_tui import keys
from perstack_tui.catalog import (
    Catalog,
    JobSummary,
    adjacent_checkpoint_ref,
    checkpoint_ref_for_step,
)
from perstack_tui.demo import DemoJob, DemoObject, build_demo, write_objects
from perstack_tui.models import CHECKPOINT_EVENT_TYPES, Checkpoint, Unreadable
from perstack_tui.storage.base import KeyValueStorage
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.storage.memory import MemoryStorage

from .conftest import COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB

ANCHOR = 1_795_300_000_000


class CountingStorage(MemoryStorage):
    """A memory storage that counts requests by primitive."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    async def list_prefixes(self, prefix: str) -> list[str]:
        self.calls["list"] += 1
        return await super().list_prefixes(prefix)

    async def list_objects(self, prefix, start_after=None):  # type: ignore[no-untyped-def]
        self.calls["list"] += 1
        return await super().list_objects(prefix, start_after)

    async def list_tree(self, prefix, *, stat=False):  # type: ignore[no-untyped-def]
        self.calls["tree"] += 1
        return await super().list_tree(prefix, stat=stat)

    async def read_bytes(self, key: str) -> bytes:
        self.calls["read"] += 1
        return await super().read_bytes(key)


@functools.cache
def demo_jobs() -> dict[str, DemoJob]:
    return build_demo(seed=7, anchor_ms=ANCHOR)


async def storage_with(*names: str) -> CountingStorage:
    storage = CountingStorage()
    for name in names or demo_jobs():
        await write_objects(storage, demo_jobs()[name].objects)
    storage.calls.clear()
    return storage


def events_of(job: DemoJob) -> list[dict]:
    found = []
    for item in job.objects:
        if keys.parse_key(item.key).kind == "event":
            try:
                found.append(json.loads(item.data))
            except ValueError:
                continue
    return found


# --- jobs without job.json -----------------------------------------------------------


async def test_cli_job_without_job_json_is_summarized_from_its_events(real_storage):
    catalog = Catalog(real_storage)
    job = await catalog.job(COORDINATOR_JOB)
    assert (job.status, job.source, job.problem) == ("completed", "events", None)
    assert job.expert == "demo-coordinator"
    assert (job.started_at, job.finished_at, job.steps) == (1795299382928, 1795299383400, 4)
    assert job.usage.totalTokens == 840
    error = await catalog.job(ERROR_JOB)
    assert (error.status, error.expert, error.steps) == ("stoppedByError", "demo-helper", 1)
    assert error.finished_at == 1795299427971


async def test_job_json_wins_where_it_exists(real_storage):
    job = await Catalog(real_storage).job(PROGRAMMATIC_JOB)
    assert (job.source, job.status, job.steps, job.max_steps) == ("job.json", "completed", 6, 20)
    assert job.usage.totalTokens == 1176

    storage = await storage_with("plain")
    plain = demo_jobs()["plain"].job_id
    job_file = {"id": plain, "status": "stoppedByError", "coordinatorExpertKey": "someone-else"}
    await storage.write_bytes(
        keys.job_key(plain), json.dumps({**job_file, "startedAt": 1}).encode()
    )
    job = await Catalog(storage).job(plain)
    assert (job.status, job.expert, job.source) == ("stoppedByError", "someone-else", "job.json")


@pytest.mark.parametrize(
    ("scenario", "status"),
    [
        ("plain", "completed"),
        ("delegation", "completed"),
        ("provider-error", "stoppedByError"),
        ("max-steps", "stoppedByMaxSteps"),
        ("interactive-waiting", "stoppedByInteractiveTool"),
        ("interactive-continued", "completed"),
        ("delegation-running", "running"),
        ("long", "completed"),
        ("attachments", "completed"),
    ],
)
async def test_demo_job_status_steps_expert_times_and_usage(scenario, status):
    demo = demo_jobs()[scenario]
    events = events_of(demo)
    job = await Catalog(await storage_with(scenario)).job(demo.job_id)
    assert job.status == status
    assert job.source == "events"
    assert job.steps == max(e["stepNumber"] for e in events)
    assert job.expert == events[0]["expertKey"]
    assert job.started_at == min(e["timestamp"] for e in events)
    if status == "running":
        assert job.finished_at is None
    else:
        assert job.finished_at == max(e["timestamp"] for e in events)
    last_carrier = max(
        (e for e in events if e["type"] in CHECKPOINT_EVENT_TYPES), key=lambda e: e["timestamp"]
    )
    assert job.usage.totalTokens == last_carrier["checkpoint"]["usage"]["totalTokens"] > 0


def partial(job: DemoJob, until_type: str) -> list[DemoObject]:
    """The job's objects up to and including the first event of ``until_type``."""
    for i, item in enumerate(job.objects):
        if item.key.endswith(f"-{until_type}.json"):
            return job.objects[: i + 1]
    raise AssertionError(until_type)


async def test_job_waiting_on_its_delegate_is_running():
    demo = demo_jobs()["delegation"]
    storage = CountingStorage()
    await write_objects(storage, partial(demo, "stopRunByDelegate"))
    catalog = Catalog(storage)
    assert (await catalog.job(demo.job_id)).status == "running"
    await write_objects(storage, partial(demo, "startSkillSandbox"))  # the helper has started
    summary = await catalog.job(demo.job_id)
    assert (summary.status, summary.finished_at) == ("running", None)
    await write_objects(storage, demo.objects)
    assert (await catalog.job(demo.job_id)).status == "completed"


async def test_summary_costs_one_listing_and_two_reads():
    demo = demo_jobs()["delegation"]
    storage = await storage_with("delegation")
    await Catalog(storage).job(demo.job_id)
    runs = len({keys.parse_key(o.key).run_id for o in demo.objects} - {None})
    assert runs == 3
    # one listing of the job's folder (all three runs), no job.json to read; one small
    # event (expert) + the latest checkpoint-carrying event
    assert storage.calls == Counter({"tree": 1, "read": 2})


async def test_finished_jobs_are_cached_and_running_jobs_refreshed():
    storage = await storage_with("plain", "delegation-running")
    catalog = Catalog(storage)
    await catalog.jobs([demo_jobs()["plain"].job_id, demo_jobs()["delegation-running"].job_id])
    storage.calls.clear()
    await catalog.job(demo_jobs()["plain"].job_id)
    assert storage.calls.total() == 0
    await catalog.job(demo_jobs()["delegation-running"].job_id)
    assert storage.calls["tree"] > 0


async def test_jobs_come_back_in_the_order_asked():
    storage = await storage_with()
    ids = sorted(job.job_id for job in demo_jobs().values())
    summaries = await Catalog(storage).jobs(ids)
    assert [s.id for s in summaries] == ids


async def test_latest_job_is_the_one_that_started_last_from_one_listing():
    storage = await storage_with()
    latest = await Catalog(storage).latest_job_id()
    assert latest == demo_jobs()["delegation-running"].job_id
    # one recursive listing, and the job ids (a filesystem may hold empty job folders)
    assert storage.calls == Counter({"tree": 1, "list": 1})


async def test_latest_job_goes_by_time_where_names_do_not_sort_by_time():
    storage = CountingStorage()
    for job_id, timestamp in (("a", 10_000), ("a", 9_000), ("b", 9_500)):
        event = {"type": "startRun", "id": f"e{timestamp}", "timestamp": timestamp,
                 "jobId": job_id, "runId": "r1", "stepNumber": 1}  # fmt: skip
        await storage.store_event(event)
    # "event-10000-..." sorts before "event-9000-..." as text: job a started at 9000
    assert await Catalog(storage).latest_job_id() == "b"
    scanned = {s.id: s for s in await Catalog(storage).scan_jobs()}
    assert (scanned["a"].started_at, scanned["a"].finished_at) == (9_000, None)


# --- the scan: every job from one listing ---------------------------------------------


def job_file(job_id: str) -> dict:
    usage = dict.fromkeys(
        ("inputTokens", "outputTokens", "reasoningTokens", "cachedInputTokens"), 1
    )
    return {"id": job_id, "status": "completed", "coordinatorExpertKey": "x@1",
            "totalSteps": 2, "startedAt": 5, "usage": {**usage, "totalTokens": 4}}  # fmt: skip


SHARED_FACTS = ("id", "status", "started_at", "finished_at", "steps", "max_steps", "source")


def facts(summary: JobSummary, names: tuple[str, ...] = SHARED_FACTS) -> dict:
    return {name: getattr(summary, name) for name in names}


async def assert_scan_matches_per_job_summaries(storage: KeyValueStorage) -> list[JobSummary]:
    catalog = Catalog(storage)
    early: dict[str, JobSummary] = {}

    def on_starts(ids: list[str]) -> None:  # before the summaries: every start, only that
        assert set(ids) == set(catalog._jobs)
        early.update({j: s for j in catalog._jobs if (s := catalog.cached_job(j)) is not None})

    scanned = await catalog.scan_jobs(on_starts=on_starts)
    assert {j: s.started_at for j, s in early.items()} == {s.id: s.started_at for s in scanned}
    assert not any(s.checked for s in early.values())  # rows show the start alone till then
    fresh = Catalog(storage)
    per_job = [await fresh.job(s.id) for s in scanned]
    assert [facts(s) for s in scanned] == [facts(j) for j in per_job]
    assert [s.problem for s in scanned] == [j.problem for j in per_job]
    for summary, job in zip(scanned, per_job, strict=True):
        if summary.partial:  # expert and usage wait for the fill
            assert (summary.expert, summary.usage.totalTokens) == ("", 0)
        else:
            assert summary == job
    starts = [s.started_at for s in scanned if s.started_at is not None]
    assert starts == sorted(starts, reverse=True)  # newest first
    return scanned


async def test_scan_facts_equal_per_job_facts_on_demo_data():
    storage = await storage_with()
    plain = demo_jobs()["plain"].job_id
    await storage.write_bytes(keys.job_key("only-bad"), b"[]")  # unreadable, no events
    await storage.write_bytes(keys.job_key(plain), b'{"id": "trunc')  # falls back to events
    await storage.store_job(job_file("from-file"))
    scanned = await assert_scan_matches_per_job_summaries(storage)
    assert len(scanned) == len(demo_jobs()) + 2
    by_id = {s.id: s for s in scanned}
    assert by_id["from-file"].expert == "x@1" and not by_id["from-file"].partial
    assert by_id[plain].problem and by_id[plain].partial


async def test_scan_facts_equal_per_job_facts_on_the_real_fixtures(real_storage, tmp_path):
    (tmp_path / "jobs" / "empty").mkdir(parents=True)
    (tmp_path / "jobs" / "bare-run" / "runs" / "r1").mkdir(parents=True)
    await assert_scan_matches_per_job_summaries(real_storage)
    scanned = await assert_scan_matches_per_job_summaries(FileSystemStorage(tmp_path))
    assert {s.id for s in scanned} == {"empty", "bare-run"}  # folders a tree listing cannot see


async def test_scan_costs_one_listing_and_a_read_per_job_file_only():
    storage = await storage_with()
    await storage.store_job(job_file("from-file"))
    storage.calls.clear()
    job_files = sum(key.endswith("/job.json") for key in storage.objects)
    assert job_files == 2  # one demo job is written as programmatic use writes it
    summaries = await Catalog(storage).scan_jobs()
    assert len(summaries) == len(demo_jobs()) + 1
    assert storage.calls == Counter({"tree": 1, "list": 1, "read": job_files})
    storage.calls.clear()
    await Catalog(storage).scan_jobs([s.id for s in summaries])  # ids already listed
    assert storage.calls == Counter({"tree": 1, "read": job_files})


async def test_filling_a_scanned_job_reads_expert_and_usage_without_listing():
    demo = demo_jobs()["delegation"]
    storage = await storage_with("delegation")
    catalog = Catalog(storage)
    [scanned] = await catalog.scan_jobs()
    assert scanned.partial and catalog.cached_job(demo.job_id) is scanned
    storage.calls.clear()
    filled = await catalog.job(demo.job_id)
    assert storage.calls == Counter({"read": 2})  # one small event, the last checkpoint
    assert not filled.partial and filled == await Catalog(storage).job(demo.job_id)
    assert filled.expert and filled.usage.totalTokens > 0
    storage.calls.clear()
    assert await catalog.job(demo.job_id) is filled and storage.calls.total() == 0


async def test_a_rescan_keeps_finished_jobs_already_complete():
    storage = await storage_with("plain", "delegation-running")
    catalog = Catalog(storage)
    plain = demo_jobs()["plain"].job_id
    await catalog.scan_jobs()
    filled = await catalog.job(plain)
    storage.calls.clear()
    rescanned = {s.id: s for s in await catalog.scan_jobs()}
    assert rescanned[plain] is filled and not filled.partial
    assert storage.calls == Counter({"tree": 1, "list": 1})


async def test_a_scanned_running_job_is_listed_again_when_filled():
    demo = demo_jobs()["delegation"]
    storage = CountingStorage()
    await write_objects(storage, partial(demo, "stopRunByDelegate"))
    catalog = Catalog(storage)
    [scanned] = await catalog.scan_jobs()
    assert scanned.status == "running"
    await write_objects(storage, demo.objects)  # it finished meanwhile
    assert (await catalog.job(demo.job_id)).status == "completed"


async def test_empty_job_folders_are_unknown_and_never_crash(tmp_path):
    (tmp_path / "jobs" / "empty").mkdir(parents=True)
    (tmp_path / "jobs" / "bare-run" / "runs" / "r1").mkdir(parents=True)
    catalog = Catalog(FileSystemStorage(tmp_path))
    for job_id in ("empty", "bare-run", "never-existed"):
        job = await catalog.job(job_id)
        assert (job.status, job.steps, job.started_at) == ("unknown", 0, None)
        assert await catalog.checkpoint_refs(job_id) == []
    assert (await catalog.job("empty")).source == "empty"
    runs = await catalog.runs("bare-run")
    assert [(r.run_id, r.events, r.status) for r in runs] == [("r1", [], "running")]
    assert await catalog.latest_job_id() in {"empty", "bare-run"}


async def test_unreadable_job_json_falls_back_to_events_with_a_problem():
    storage = await storage_with("plain")
    plain = demo_jobs()["plain"].job_id
    await storage.write_bytes(keys.job_key(plain), b'{"id": "trunc')
    job = await Catalog(storage).job(plain)
    assert (job.status, job.source, job.expert) == ("completed", "events", "tech-writer")
    assert job.problem is not None
    assert keys.job_key(plain) in job.problem and "not valid JSON" in job.problem

    await storage.write_bytes(keys.job_key("only-bad"), b"[]")
    alone = await Catalog(storage).job("only-bad")
    assert alone.status == "unreadable" and "expected a JSON object" in (alone.problem or "")


# --- runs ------------------------------------------------------------------------------


async def test_runs_in_start_order_nested_by_delegation():
    demo = demo_jobs()["delegation"]
    runs = await Catalog(await storage_with("delegation")).runs(demo.job_id)
    assert [r.expert for r in runs] == ["research-lead", "web-researcher", "research-lead"]
    assert [r.depth for r in runs] == [0, 1, 0]
    assert [r.status for r in runs] == ["stoppedByDelegate", "completed", "completed"]
    assert runs[1].delegated_by_run == runs[0].run_id
    assert runs[1].delegated_by_tool_call and runs[1].delegated_by_tool_call.startswith("toolu_")
    assert runs[2].delegated_by_run is None
    starts = [r.started_at for r in runs]
    assert starts == sorted(starts)
    # job-wide steps: the helper continues the caller's numbering, the resumed run follows
    assert [r.steps for r in runs] == [(1, 2), (3, 5), (6, 7)]


async def test_runs_of_real_fixture_link_the_helper_through_its_checkpoint(real_storage):
    runs = await Catalog(real_storage).runs(COORDINATOR_JOB)
    assert [(r.run_id, r.depth) for r in runs] == [
        ("r3k7c4urwywzgewayor7pkse", 0),
        ("hadyhjk3onqq4qi3j6ixtsng", 1),
    ]
    # the helper's first file is the corrupt one: the link comes from its completeRun
    assert runs[1].delegated_by_run == "r3k7c4urwywzgewayor7pkse"
    assert runs[1].expert == "demo-helper"


async def test_programmatic_runs_carry_their_setting():
    demo = demo_jobs()["programmatic"]
    runs = await Catalog(await storage_with("programmatic")).runs(demo.job_id)
    assert len(runs) == 1 and runs[0].setting is not None
    masked = runs[0].setting.masked()
    assert masked["env"]["ANTHROPIC_API_KEY"] == "********"
    assert masked["providerConfig"]["apiKey"] == "********"


# --- checkpoints -----------------------------------------------------------------------


async def test_checkpoint_refs_come_from_listings_one_per_step():
    demo = demo_jobs()["delegation"]
    storage = await storage_with("delegation")
    refs = await Catalog(storage).checkpoint_refs(demo.job_id)
    assert storage.calls["read"] == 0
    assert [r.step for r in refs] == [1, 2, 3, 4, 5, 6, 7]
    checkpoint_files = [o for o in demo.objects if keys.parse_key(o.key).kind == "checkpoint"]
    assert len(refs) == len(checkpoint_files)
    assert {r.event_type for r in refs} == {
        "continueToNextStep",
        "stopRunByDelegate",
        "completeRun",
    }
    assert all(keys.parse_key(r.key).run_id == r.run_id for r in refs)


async def test_continued_job_checkpoints_stay_with_the_run_that_stores_them():
    demo = demo_jobs()["interactive-continued"]
    catalog = Catalog(await storage_with("interactive-continued"))
    runs = await catalog.runs(demo.job_id)
    assert len(runs) == 2 and [r.depth for r in runs] == [0, 0]
    first, second = runs
    refs = await catalog.checkpoint_refs(demo.job_id)
    later = [r for r in refs if r.run_id == second.run_id]
    assert later and len(later) < len(refs)
    for ref in later:
        checkpoint = await catalog.read_checkpoint(ref)
        assert isinstance(checkpoint, Checkpoint)
        assert checkpoint.runId == first.run_id  # what the real CLI writes
        assert checkpoint.stepNumber == ref.step


async def test_checkpoint_of_a_step_and_its_neighbours():
    demo = demo_jobs()["delegation-running"]
    catalog = Catalog(await storage_with("delegation-running"))
    refs = await catalog.checkpoint_refs(demo.job_id)
    last_step = (await catalog.job(demo.job_id)).steps
    assert [r.step for r in refs] == list(range(1, last_step))  # the last step is running
    assert checkpoint_ref_for_step(refs, 2) == refs[1]
    assert checkpoint_ref_for_step(refs, last_step) == refs[-1]
    assert checkpoint_ref_for_step(refs, 0) is None
    assert adjacent_checkpoint_ref(refs, 2, -1) == refs[0]
    assert adjacent_checkpoint_ref(refs, 2, +1) == refs[2]
    assert adjacent_checkpoint_ref(refs, 1, -1) is None
    assert adjacent_checkpoint_ref(refs, last_step, +1) is None
    checkpoint = await catalog.read_checkpoint(refs[1])
    assert isinstance(checkpoint, Checkpoint) and checkpoint.status == "stoppedByDelegate"


async def test_unreadable_checkpoint_event_reads_as_unreadable_with_its_key():
    demo = demo_jobs()["plain"]
    storage = await storage_with("plain")
    catalog = Catalog(storage)
    refs = await catalog.checkpoint_refs(demo.job_id)
    await storage.write_bytes(refs[0].key, b'{"type":"continueToNextStep","id"')
    result = await catalog.read_checkpoint(refs[0])
    assert isinstance(result, Unreadable) and result.key == refs[0].key
    assert isinstance(await catalog.read_checkpoint(refs[1]), Checkpoint)


async def test_last_checkpoint_skips_an_unreadable_latest_event():
    demo = demo_jobs()["plain"]
    storage = await storage_with("plain")
    catalog = Catalog(storage)
    refs = await catalog.checkpoint_refs(demo.job_id)
    await storage.write_bytes(refs[-1].key, b"garbage")
    last = await catalog.last_checkpoint(demo.job_id)
    assert isinstance(last, Checkpoint) and last.stepNumber == refs[-2].step


async def test_a_run_whose_last_event_is_call_delegate_has_stopped_by_delegate(real_storage):
    # The real fixture keeps the coordinator's run up to its callDelegate: that run handed
    # over to its helper; it is not running.
    runs = await Catalog(real_storage).runs(COORDINATOR_JOB)
    coordinator = next(r for r in runs if r.run_id == "r3k7c4urwywzgewayor7pkse")
    assert coordinator.events[-1].type == "callDelegate"
    assert coordinator.status == "stoppedByDelegate"
