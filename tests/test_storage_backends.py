"""One behaviour suite, every backend: filesystem, memory, S3 and R2 (on the local server)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from perstack_tui import keys
from perstack_tui.models import Checkpoint, EventMeta, Job, RunEvent, RunSetting, Unreadable
from perstack_tui.storage.base import KeyValueStorage, NotFoundError
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.storage.memory import MemoryStorage
from perstack_tui.storage.s3 import R2Storage, S3Storage, normalize_prefix

from .conftest import CLI_RUN, COORDINATOR_JOB, CORRUPT_EVENT, PROGRAMMATIC, PROGRAMMATIC_JOB

BACKENDS = [
    "filesystem",
    "memory",
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("r2", marks=pytest.mark.s3),
]

REAL_JOB_FILE = PROGRAMMATIC / "jobs" / PROGRAMMATIC_JOB / "job.json"
REAL_RUN_SETTING = next(PROGRAMMATIC.rglob("run-setting.json"))
REAL_CHECKPOINT = next((CLI_RUN / "jobs" / COORDINATOR_JOB / "checkpoints").glob("*.json"))


@pytest.fixture(params=BACKENDS)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> KeyValueStorage:
    if request.param == "filesystem":
        return FileSystemStorage(tmp_path / "perstack")
    if request.param == "memory":
        return MemoryStorage()
    return request.getfixturevalue(f"{request.param}_storage")


def real_files() -> dict[str, bytes]:
    """Every real fixture file by its key (both real storages merged)."""
    files = {}
    for base in (CLI_RUN, PROGRAMMATIC):
        for path in base.rglob("*.json"):
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return files


async def upload(storage: KeyValueStorage, files: dict[str, bytes]) -> None:
    await asyncio.gather(*(storage.write_bytes(key, data) for key, data in files.items()))


def event(job: str, run: str, timestamp: int, step: int, kind: str = "streamReasoning") -> dict:
    return {
        "type": kind,
        "id": f"e{timestamp}",
        "expertKey": "demo@1.0.0",
        "timestamp": timestamp,
        "jobId": job,
        "runId": run,
        "stepNumber": step,
        "delta": f"at {timestamp}",
    }


def job(job_id: str, started_at: int) -> dict[str, Any]:
    data = json.loads(REAL_JOB_FILE.read_bytes())
    return {**data, "id": job_id, "startedAt": started_at}


def run_setting(job_id: str, run_id: str, updated_at: int) -> dict[str, Any]:
    data = json.loads(REAL_RUN_SETTING.read_bytes())
    return {**data, "jobId": job_id, "runId": run_id, "updatedAt": updated_at}


def checkpoint(job_id: str, checkpoint_id: str, step: int) -> dict[str, Any]:
    data = json.loads(REAL_CHECKPOINT.read_bytes())
    return {**data, "id": checkpoint_id, "jobId": job_id, "stepNumber": step}


# --- Perstack's interface ---------------------------------------------------------------


async def test_checkpoint_round_trips_and_lists_by_step(storage):
    for checkpoint_id, step in (("cpc", 3), ("cpa", 1), ("cpb", 2)):
        await storage.store_checkpoint(checkpoint("job1", checkpoint_id, step))
    retrieved = await storage.retrieve_checkpoint("job1", "cpb")
    assert isinstance(retrieved, Checkpoint)
    assert (retrieved.id, retrieved.stepNumber, retrieved.jobId) == ("cpb", 2, "job1")
    assert await storage.list_checkpoint_ids("job1") == ["cpa", "cpb", "cpc"]
    by_step = await storage.get_checkpoints_by_job_id("job1")
    assert [c.stepNumber for c in by_step] == [1, 2, 3]


async def test_events_by_run_are_sorted_by_step(storage):
    for timestamp, step in ((1000, 3), (1001, 1), (1002, 2), (1003, 1)):
        await storage.store_event(event("job1", "run1", timestamp, step))
    metas = await storage.get_events_by_run("job1", "run1")
    assert [m.stepNumber for m in metas] == [1, 1, 2, 3]
    assert all(isinstance(m, EventMeta) and m.type == "streamReasoning" for m in metas)
    assert {m.timestamp for m in metas} == {1000, 1001, 1002, 1003}


async def test_event_contents_keep_steps_up_to_max_step_by_timestamp(storage):
    for timestamp, step in ((1003, 2), (1000, 1), (1002, 3), (1001, 2)):
        await storage.store_event(event("job1", "run1", timestamp, step))
    events = await storage.get_event_contents("job1", "run1", max_step=2)
    assert [(e.timestamp, e.stepNumber) for e in events] == [(1000, 1), (1001, 2), (1003, 2)]
    assert all(isinstance(e, RunEvent) for e in events)
    everything = await storage.get_event_contents("job1", "run1")
    assert [e.timestamp for e in everything] == [1000, 1001, 1002, 1003]


async def test_job_round_trips_and_all_jobs_are_newest_first(storage):
    await storage.store_job(job("old", 1_000))
    await storage.store_job(job("new", 3_000))
    await storage.store_job(job("mid", 2_000))
    retrieved = await storage.retrieve_job("mid")
    assert isinstance(retrieved, Job) and retrieved.startedAt == 2_000
    assert await storage.retrieve_job("absent") is None
    assert [j.id for j in await storage.get_all_jobs()] == ["new", "mid", "old"]


async def test_run_settings_are_listed_by_updated_at_descending(storage):
    await storage.store_run_setting(run_setting("job1", "run-a", 10))
    await storage.store_run_setting(run_setting("job1", "run-b", 30))
    await storage.store_run_setting(run_setting("job2", "run-c", 20))
    runs = await storage.get_all_runs()
    assert [(r.jobId, r.runId) for r in runs] == [
        ("job1", "run-b"),
        ("job2", "run-c"),
        ("job1", "run-a"),
    ]
    setting = await storage.read_run_setting("job2", "run-c")
    assert isinstance(setting, RunSetting) and setting.updatedAt == 20
    assert await storage.read_run_setting("job2", "no-such-run") is None


# --- what a browser needs ---------------------------------------------------------------


async def test_job_and_run_ids_are_listed_from_the_key_tree(storage):
    await storage.store_event(event("job-b", "run2", 1000, 1))
    await storage.store_event(event("job-b", "run1", 1001, 1))
    await storage.store_checkpoint(checkpoint("job-a", "cp1", 1))
    assert await storage.list_job_ids() == ["job-a", "job-b"]
    assert await storage.list_run_ids("job-b") == ["run1", "run2"]
    assert await storage.list_run_ids("job-a") == []
    assert await storage.list_run_ids("no-such-job") == []


async def test_event_metas_come_from_names_and_resume_after_a_key(storage):
    for timestamp in (1000, 1001, 1002, 1003):
        await storage.store_event(event("job1", "run1", timestamp, 1))
    metas = await storage.list_event_metas("job1", "run1")
    assert [m.timestamp for m in metas] == [1000, 1001, 1002, 1003]
    assert metas[0].key == keys.event_key("job1", "run1", 1000, 1, "streamReasoning")
    later = await storage.list_event_metas("job1", "run1", start_after=metas[1].key)
    assert [m.timestamp for m in later] == [1002, 1003]
    assert await storage.list_event_metas("job1", "run1", start_after=metas[-1].key) == []


async def test_tree_lists_every_object_under_a_prefix_by_key(storage):
    await storage.store_event(event("job-b", "run1", 1000, 1))
    await storage.store_event(event("job-b", "run1", 1001, 2, "callTools"))
    await storage.store_event(event("job-a", "run9", 999, 1))
    await storage.store_checkpoint(checkpoint("job-b", "cp1", 1))
    await storage.store_job(job("job-b", 1000))
    await storage.write_bytes("jobs/job-b-x/job.json", b"{}")  # sorts between job-b/ keys
    everything = await storage.list_tree("jobs/")
    expected = sorted(
        [
            keys.event_key("job-b", "run1", 1000, 1, "streamReasoning"),
            keys.event_key("job-b", "run1", 1001, 2, "callTools"),
            keys.event_key("job-a", "run9", 999, 1, "streamReasoning"),
            keys.checkpoint_key("job-b", "cp1"),
            keys.job_key("job-b"),
            "jobs/job-b-x/job.json",
        ]
    )
    assert [o.key for o in everything] == expected
    # the fallback (a walk over folders) agrees with the backend's one listing
    assert [o.key for o in await KeyValueStorage.list_tree(storage, "jobs/")] == expected
    assert [o.key for o in await storage.list_tree("jobs/job-a/")] == [expected[0]]
    assert await storage.list_tree("jobs/no-such-job/") == []
    with_sizes = await storage.list_tree(keys.job_prefix("job-b"), stat=True)
    sizes = {o.key: o.size for o in with_sizes}
    assert sizes[keys.job_key("job-b")] == len(await storage.read_bytes(keys.job_key("job-b")))
    assert all(o.modified > 0 for o in with_sizes)


async def test_key_listing_names_what_the_object_listing_lists(storage):
    for timestamp in (1000, 1001, 1002):
        await storage.store_event(event("job1", "run1", timestamp, 1))
    await storage.store_event(event("job1", "run1x", 1003, 1))  # a sibling folder, not listed
    prefix = keys.run_prefix("job1", "run1")
    objects = [o.key for o in await storage.list_objects(prefix)]
    assert await storage.list_keys(prefix) == objects and len(objects) == 3
    assert await storage.list_keys(prefix, start_after=objects[0]) == objects[1:]


async def test_filesystem_event_listing_costs_no_stat_per_file(tmp_path):
    class NoStatStorage(FileSystemStorage):
        async def list_objects(self, prefix, start_after=None):  # type: ignore[no-untyped-def]
            raise AssertionError("list_objects stat()s every file")

    storage = NoStatStorage(tmp_path)
    await storage.store_event(event("job1", "run1", 1000, 1))
    [meta] = await storage.list_event_metas("job1", "run1")
    assert meta == EventMeta(timestamp=1000, stepNumber=1, type="streamReasoning", key=meta.key)


def test_event_metas_are_immutable_values_a_cache_can_share():
    meta = EventMeta(timestamp=1, stepNumber=2, type="callTools", key="k")
    assert {meta: "cached"}[EventMeta(1, 2, "callTools", "k")] == "cached"
    with pytest.raises(AttributeError):
        meta.type = "retry"  # type: ignore[misc]
    assert meta.to_json_dict() == {"timestamp": 1, "stepNumber": 2, "type": "callTools", "key": "k"}


async def test_read_event_parses_and_a_missing_key_is_unreadable(storage):
    await storage.store_event(event("job1", "run1", 1000, 1))
    key = keys.event_key("job1", "run1", 1000, 1, "streamReasoning")
    read = await storage.read_event(key)
    assert isinstance(read, RunEvent) and read.timestamp == 1000
    gone = keys.event_key("job1", "run1", 999, 1, "streamReasoning")
    missing = await storage.read_event(gone)
    assert isinstance(missing, Unreadable) and missing.key == gone and "missing" in missing.reason


async def test_reading_a_missing_key_raises_not_found(storage):
    with pytest.raises(NotFoundError):
        await storage.read_bytes("jobs/none/job.json")


async def test_event_files_whose_names_do_not_parse_are_ignored(storage):
    await storage.store_event(event("job1", "run1", 1000, 1))
    run = keys.run_prefix("job1", "run1")
    for name in ("event-abc.json", "event-12-x-foo.json", "event-1-2.json", "notes.txt"):
        await storage.write_bytes(run + name, b"{}")
    metas = await storage.list_event_metas("job1", "run1")
    assert [m.key for m in metas] == [keys.event_key("job1", "run1", 1000, 1, "streamReasoning")]
    assert len(await storage.get_event_contents("job1", "run1")) == 1


def test_storage_info_names_the_backend_and_location(storage):
    info = storage.storage_info()
    expected = {
        FileSystemStorage: ("filesystem", "filesystem:"),
        MemoryStorage: ("memory", "memory:"),
        S3Storage: ("s3", "s3://"),
        R2Storage: ("r2", "r2://acct/"),
    }[type(storage)]
    assert info.type == expected[0]
    assert info.location.startswith(expected[1])


# --- byte compatibility with Perstack ---------------------------------------------------


async def test_stored_files_are_byte_identical_to_what_perstack_wrote(storage):
    """Each real file, stored through the backend from its parsed JSON, reads back identical."""
    store = {
        "job": storage.store_job,
        "checkpoint": storage.store_checkpoint,
        "run-setting": storage.store_run_setting,
        "event": storage.store_event,
    }
    for key, raw in real_files().items():
        if key == CORRUPT_EVENT:
            continue
        data = json.loads(raw)
        await store[keys.parse_key(key).kind](data)
        # the key is rebuilt from the object's own fields: it must be the one Perstack used
        stored = await storage.read_bytes(key)
        assert stored == raw, key
        if key.endswith("job.json"):
            assert stored == json.dumps(data, indent=2, ensure_ascii=False).encode()
        else:
            compact = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
            assert stored == compact, key


async def test_a_stored_job_model_is_byte_identical_to_perstacks_job_json(storage):
    job = Job.model_validate(json.loads(REAL_JOB_FILE.read_bytes()))
    await storage.store_job(job)
    assert await storage.read_bytes(keys.job_key(job.id)) == REAL_JOB_FILE.read_bytes()


async def test_real_fixtures_parse_identically_on_every_backend(storage, real_storage):
    await upload(storage, {**real_files(), CORRUPT_EVENT: (CLI_RUN / CORRUPT_EVENT).read_bytes()})
    assert await storage.list_job_ids() == await real_storage.list_job_ids()
    for job_id in await real_storage.list_job_ids():
        assert await storage.list_run_ids(job_id) == await real_storage.list_run_ids(job_id)
        assert await storage.get_checkpoints_by_job_id(
            job_id
        ) == await real_storage.get_checkpoints_by_job_id(job_id)
        for run_id in await real_storage.list_run_ids(job_id):
            ours = await storage.get_event_contents(job_id, run_id)
            theirs = await real_storage.get_event_contents(job_id, run_id)
            assert ours == theirs
    assert await storage.get_all_jobs() == await real_storage.get_all_jobs()
    assert await storage.get_all_runs() == await real_storage.get_all_runs()
    corrupt = await storage.read_event(CORRUPT_EVENT)
    assert isinstance(corrupt, Unreadable) and corrupt.key == CORRUPT_EVENT


# --- S3 specifics -------------------------------------------------------------------------


def test_prefix_gets_a_trailing_slash_as_perstack_adds_it():
    assert normalize_prefix("") == ""
    assert normalize_prefix("team/perstack") == "team/perstack/"
    assert normalize_prefix("team/perstack/") == "team/perstack/"
    assert S3Storage("b", "p").storage_info().location == "s3://b/p/"
    assert (
        S3Storage("b", "p", endpoint="http://127.0.0.1:9000").storage_info().location
        == "s3://b/p/ (http://127.0.0.1:9000)"
    )
    assert R2Storage("acct", "b", "p").storage_info().location == "r2://acct/b/p/"
    assert R2Storage("acct", "b").endpoint == "https://acct.r2.cloudflarestorage.com"


def test_r2_talks_to_the_account_endpoint_in_region_auto_without_default_checksums():
    storage = R2Storage("acct", "bucket", access_key_id="k", secret_access_key="s")
    config = storage.client_config()
    assert storage.client_region() == "auto"
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.max_pool_connections == storage.max_concurrency == 16
    client = storage._get_client()  # built offline: no request is made
    assert client.meta.endpoint_url == "https://acct.r2.cloudflarestorage.com"
    assert client.meta.region_name == "auto"


@pytest.mark.s3
async def test_s3_keys_live_under_the_prefix(s3_server, s3_storage):
    await s3_storage.store_event(event("job1", "run1", 1000, 1))
    listed = s3_server.client().list_objects_v2(Bucket=s3_storage.bucket)
    assert [o["Key"] for o in listed["Contents"]] == [
        "team/perstack/" + keys.event_key("job1", "run1", 1000, 1, "streamReasoning")
    ]
    head = s3_server.client().head_object(
        Bucket=s3_storage.bucket, Key=listed["Contents"][0]["Key"]
    )
    assert head["ContentType"] == "application/json"


@pytest.mark.s3
async def test_s3_counts_requests_and_bytes(s3_storage):
    await s3_storage.write_bytes("jobs/j/job.json", b"12345")
    await s3_storage.read_bytes("jobs/j/job.json")
    await s3_storage.list_job_ids()
    with pytest.raises(NotFoundError):
        await s3_storage.read_bytes("jobs/j/missing.json")
    stats = s3_storage.stats
    assert (stats["put"], stats["get"], stats["list"]) == (1, 2, 1)
    assert stats["bytes_in"] == 5 and stats["bytes_out"] == 5


@pytest.mark.s3
async def test_closing_releases_the_pool_and_the_storage_reopens_on_use(s3_storage):
    await s3_storage.write_bytes("jobs/j/job.json", b"{}")
    await s3_storage.close()
    assert s3_storage._executor is None and s3_storage._client is None
    assert await s3_storage.read_bytes("jobs/j/job.json") == b"{}"


PAGED_EVENTS = 1100
PAGED_JOBS = 1010


@pytest.fixture(scope="module")
def paged_bucket(s3_server) -> str:
    """A bucket holding 1100 events in one run and 1010 job folders (written once)."""
    bucket = s3_server.make_bucket()
    storage = S3Storage(
        bucket,
        "team/perstack",
        endpoint=s3_server.endpoint,
        force_path_style=True,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        max_concurrency=32,
    )
    files = {
        keys.event_key("job-0000", "run1", 1_000_000 + i, 1, "streamReasoning"): b"{}"
        for i in range(PAGED_EVENTS)
    }
    files.update({keys.job_key(f"job-{i:04}"): b"{}" for i in range(1, PAGED_JOBS)})

    async def write() -> None:
        await upload(storage, files)
        await storage.close()

    asyncio.run(write())
    return bucket


@pytest.mark.s3
@pytest.mark.parametrize("kind", ["s3", "r2"])
async def test_listings_page_past_1000_keys(s3_server, paged_bucket, kind):
    credentials = {
        "access_key_id": s3_server.access_key,
        "secret_access_key": s3_server.secret_key,
    }
    storage: S3Storage
    if kind == "s3":
        storage = S3Storage(
            paged_bucket,
            "team/perstack/",
            endpoint=s3_server.endpoint,
            force_path_style=True,
            **credentials,
        )
    else:
        storage = R2Storage(
            "acct", paged_bucket, "team/perstack", endpoint=s3_server.endpoint, **credentials
        )
    try:
        metas = await storage.list_event_metas("job-0000", "run1")
        assert [m.timestamp for m in metas] == [1_000_000 + i for i in range(PAGED_EVENTS)]
        assert storage.stats["list"] >= 2
        rest = await storage.list_event_metas("job-0000", "run1", start_after=metas[1049].key)
        assert [m.timestamp for m in rest] == [1_000_000 + i for i in range(1050, PAGED_EVENTS)]
        job_ids = await storage.list_job_ids()
        assert job_ids == [f"job-{i:04}" for i in range(PAGED_JOBS)]
        pages_before = storage.stats["list"]
        tree = await storage.list_tree("jobs/")
        assert len(tree) == PAGED_EVENTS + PAGED_JOBS - 1
        assert [o.key for o in tree] == sorted(o.key for o in tree)
        assert storage.stats["list"] - pages_before == 3  # 2,109 keys, 1,000 a page
    finally:
        await storage.close()


async def test_ids_a_user_typed_with_spaces_and_unicode_round_trip(storage):
    job_id, run_id = "my job ✓ #1+2", "run (retry) é"
    await storage.store_event(event(job_id, run_id, 1000, 1))
    assert await storage.list_job_ids() == [job_id]
    assert await storage.list_run_ids(job_id) == [run_id]
    [meta] = await storage.list_event_metas(job_id, run_id)
    read = await storage.read_event(meta.key)
    assert isinstance(read, RunEvent) and (read.jobId, read.runId) == (job_id, run_id)
