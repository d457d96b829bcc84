"""The persistent job index: a reopen reads nothing for unchanged jobs, and a stale index
never shows wrong data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from perstack_tui import keys
from perstack_tui.catalog import Catalog
from perstack_tui.demo import write_objects
from perstack_tui.index import JobIndex
from perstack_tui.storage.filesystem import FileSystemStorage

from .conftest import CLI_RUN, COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC, PROGRAMMATIC_JOB
from .test_catalog import demo_jobs, storage_with


def index_of(storage) -> JobIndex:  # type: ignore[no-untyped-def]
    return JobIndex.for_location(storage.storage_info().location)


async def open_all(storage) -> dict:  # type: ignore[no-untyped-def]
    """What a first visit learns: every job summarized completely, the index saved."""
    catalog = Catalog(storage, index_of(storage))
    scanned = await catalog.scan_jobs()
    complete = await catalog.jobs([s.id for s in scanned])
    await catalog.save_index()
    return {s.id: s for s in complete}


async def test_a_reopen_reads_nothing_for_jobs_that_did_not_change():
    storage = await storage_with()
    first = await open_all(storage)
    running = {j for j, s in first.items() if s.status == "running"}
    assert running and len(running) < len(first)  # the demo has running jobs too

    storage.calls.clear()
    catalog = Catalog(storage, index_of(storage))
    scanned = {s.id: s for s in await catalog.scan_jobs()}
    assert storage.calls["read"] == 0  # no job.json, no expert, no usage read again
    for job_id, summary in first.items():
        assert scanned[job_id] == summary and not scanned[job_id].partial


async def test_rows_are_ordered_from_the_index_before_any_job_is_listed():
    storage = await storage_with()
    first = await open_all(storage)
    storage.calls.clear()
    catalog = Catalog(storage, index_of(storage))
    ids = await catalog.job_ids()
    assert catalog.prime_from_index([*ids, "job-new-since"]) == ["job-new-since"]
    assert storage.calls["tree"] == 0 and storage.calls["read"] == 0
    for job_id in ids:
        primed = catalog.cached_job(job_id)
        assert primed is not None and not primed.checked
        assert primed.started_at == first[job_id].started_at  # a start never moves
        assert primed.status == "unknown" and primed.partial  # nothing else is claimed
    # checking a row lists that job's files once, and reads nothing when they did not change
    plain = demo_jobs()["plain"].job_id
    storage.calls.clear()
    summary = await catalog.job(plain)
    assert summary == first[plain] and summary.checked
    assert storage.calls == {"tree": 1}


async def test_a_job_that_changed_since_the_index_shows_what_it_holds_now(tmp_path):
    base = tmp_path / "perstack"
    shutil.copytree(CLI_RUN, base)
    shutil.copytree(PROGRAMMATIC / "jobs" / PROGRAMMATIC_JOB, base / "jobs" / PROGRAMMATIC_JOB)
    first = await open_all(FileSystemStorage(base))
    assert first[PROGRAMMATIC_JOB].status == "completed"
    assert first[ERROR_JOB].status == "stoppedByError"

    # job.json rewritten in place (same key, new content) ...
    job_file = base / keys.job_key(PROGRAMMATIC_JOB)
    job = json.loads(job_file.read_text())
    job.update(status="stoppedByError", totalSteps=7)
    job_file.write_text(json.dumps(job, indent=2))
    # ... and the failed job continued: a new run with a first event
    run = base / "jobs" / ERROR_JOB / "runs" / "continued-run"
    run.mkdir(parents=True)
    started = first[ERROR_JOB].finished_at + 1000
    event = {
        "type": "startRun",
        "id": "e1",
        "expertKey": "demo-helper",
        "timestamp": started,
        "jobId": ERROR_JOB,
        "runId": "continued-run",
        "stepNumber": 2,
    }
    (run / f"event-{started}-2-startRun.json").write_text(json.dumps(event))

    catalog = Catalog(FileSystemStorage(base), index_of(FileSystemStorage(base)))
    checked = await catalog.job(PROGRAMMATIC_JOB)
    assert (checked.status, checked.steps) == ("stoppedByError", 7)
    scanned = {s.id: s for s in await catalog.scan_jobs()}
    assert (scanned[ERROR_JOB].status, scanned[ERROR_JOB].finished_at) == ("running", None)
    assert scanned[COORDINATOR_JOB] == first[COORDINATOR_JOB]  # untouched: from the index


async def test_jobs_gone_from_the_storage_leave_the_index(tmp_path):
    base = tmp_path / "perstack"
    shutil.copytree(CLI_RUN, base)
    await open_all(FileSystemStorage(base))
    shutil.rmtree(base / "jobs" / ERROR_JOB)
    storage = FileSystemStorage(base)
    catalog = Catalog(storage, index_of(storage))
    assert [s.id for s in await catalog.scan_jobs()] == [COORDINATOR_JOB]
    await catalog.save_index()
    assert not index_of(storage).knows(ERROR_JOB) and index_of(storage).knows(COORDINATOR_JOB)


async def test_a_broken_index_file_is_reported_and_rebuilt(real_storage):
    index = index_of(real_storage)
    assert index.path is not None and index.problem is None and not len(index)
    index.path.parent.mkdir(parents=True)
    index.path.write_text('{"format": 1, "jobs": [')
    broken = index_of(real_storage)
    assert broken.problem is not None and str(broken.path) in broken.problem
    await open_all(real_storage)
    rebuilt = index_of(real_storage)
    assert rebuilt.problem is None and rebuilt.knows(COORDINATOR_JOB)


async def test_the_index_can_be_turned_off(real_storage, cache_dir: Path, monkeypatch):
    monkeypatch.setenv("PERSTACK_TUI_CACHE_DIR", "off")
    index = index_of(real_storage)
    assert index.path is None
    await open_all(real_storage)
    assert not any(cache_dir.rglob("*.json"))


async def test_each_storage_location_has_its_own_index(tmp_path):
    one, other = tmp_path / "one", tmp_path / "other"
    shutil.copytree(CLI_RUN, one)
    shutil.copytree(PROGRAMMATIC, other)
    await open_all(FileSystemStorage(one))
    assert not len(index_of(FileSystemStorage(other)))
    assert index_of(FileSystemStorage(one)).knows(COORDINATOR_JOB)


async def test_a_running_job_is_taken_from_the_index_only_while_its_files_stay_the_same():
    demo = demo_jobs()["delegation"]
    storage = await storage_with("plain")
    stopped = [o for o in demo.objects if "completeRun" not in o.key][:-3]
    await write_objects(storage, stopped)
    first = await open_all(storage)
    assert first[demo.job_id].status == "running"  # e.g. left so by a crash
    storage.calls.clear()
    again = {s.id: s for s in await Catalog(storage, index_of(storage)).scan_jobs()}
    assert again[demo.job_id] == first[demo.job_id] and storage.calls["read"] == 0
    await write_objects(storage, demo.objects)  # it moves on, and completes
    moved = {s.id: s for s in await Catalog(storage, index_of(storage)).scan_jobs()}
    assert moved[demo.job_id].status == "completed"


async def test_a_damaged_summary_in_the_index_is_not_shown(tmp_path):
    base = tmp_path / "perstack"
    shutil.copytree(CLI_RUN, base)
    first = await open_all(FileSystemStorage(base))
    index = index_of(FileSystemStorage(base))
    raw = json.loads(index.path.read_text())  # type: ignore[union-attr]
    raw["jobs"][COORDINATOR_JOB][2]["steps"] = "many"  # the fingerprint still matches
    raw["jobs"][ERROR_JOB][2]["usage"] = "none"
    index.path.write_text(json.dumps(raw))  # type: ignore[union-attr]
    catalog = Catalog(FileSystemStorage(base), index_of(FileSystemStorage(base)))
    scanned = {s.id: s for s in await catalog.scan_jobs()}
    assert scanned[COORDINATOR_JOB].partial and scanned[COORDINATOR_JOB].steps == 4
    complete = await catalog.jobs([COORDINATOR_JOB, ERROR_JOB])
    assert complete == [first[COORDINATOR_JOB], first[ERROR_JOB]]


async def test_an_index_that_cannot_be_written_is_reported(real_storage, monkeypatch, cache_dir):
    def refuse(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    catalog = Catalog(real_storage, index_of(real_storage))
    await catalog.scan_jobs()
    with monkeypatch.context() as patched:
        patched.setattr("perstack_tui.index.os.replace", refuse)
        await catalog.save_index()
    assert catalog.index is not None and "cannot write the job index" in str(catalog.index.problem)
    assert not list(cache_dir.rglob(".index-*"))  # no half-written file left behind
    await catalog.save_index()  # written once it can be
    assert catalog.index.path is not None and str(catalog.index.path).startswith(str(cache_dir))
    assert index_of(real_storage).knows(COORDINATOR_JOB)
