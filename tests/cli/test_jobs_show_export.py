"""``jobs``, ``show`` and ``export`` on the real fixtures and on the local S3 server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from perstack_tui import keys
from perstack_tui.cli import main
from perstack_tui.export import UnsafeKeyError, export_keys, safe_path
from perstack_tui.models import MASK
from perstack_tui.storage.memory import MemoryStorage
from tests.cli.test_log import s3_uri  # noqa: F401  (fixture)
from tests.conftest import COORDINATOR_JOB, CORRUPT_EVENT, ERROR_JOB, PROGRAMMATIC_JOB

PROGRAMMATIC_RUN = "gmsalnws2cvtbf7d5nygu74x"
CHECKPOINT = "lrsre0h1ib0jsupajkyioufw"
DELEGATE_EVENT = "qpkbio15ca1jyvr7u9veh3b4"


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- jobs -------------------------------------------------------------------------------


def test_jobs_table_lists_every_job_newest_first(capsys, real_dir):
    code, out, _ = cli(capsys, "jobs", "--storage", str(real_dir))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "EXPERT", "STARTED", "DURATION", "STEPS", "TOKENS"]
    assert [line.split()[0] for line in lines[1:]] == [PROGRAMMATIC_JOB, ERROR_JOB, COORDINATOR_JOB]
    coordinator = lines[3].split()
    assert coordinator[1:3] == ["completed", "demo-coordinator"]
    assert coordinator[-3:] == ["472ms", "4", "840"]


def test_jobs_prints_the_same_from_the_index_and_sees_a_change(capsys, real_dir):
    _, cold, _ = cli(capsys, "jobs", "--storage", str(real_dir), "--json")
    _, warm, _ = cli(capsys, "jobs", "--storage", str(real_dir), "--json")
    assert warm == cold
    job_file = real_dir / keys.job_key(PROGRAMMATIC_JOB)
    job = json.loads(job_file.read_text())
    job["coordinatorExpertKey"] = "renamed-expert"
    job_file.write_text(json.dumps(job, indent=2))
    _, changed, _ = cli(capsys, "jobs", "--storage", str(real_dir), "--json", "--limit", "1")
    assert json.loads(changed)[0]["coordinatorExpertKey"] == "renamed-expert"


def test_jobs_notes_a_job_index_it_cannot_read(capsys, real_dir, cache_dir):
    _, cold, _ = cli(capsys, "jobs", "--storage", str(real_dir), "--json")
    (index_file,) = (cache_dir / "index").glob("*.json")
    index_file.write_text("{broken")
    code, warm, err = cli(capsys, "jobs", "--storage", str(real_dir), "--json")
    assert code == 0 and warm == cold
    assert "job index" in err and "not used" in err and str(index_file) in err


def test_jobs_json_uses_the_job_shape_and_filters_by_status(capsys, real_dir):
    code, out, _ = cli(
        capsys, "jobs", "--storage", str(real_dir), "--json", "--status", "stoppedByError"
    )
    assert code == 0
    (job,) = json.loads(out)
    assert job["id"] == ERROR_JOB and job["status"] == "stoppedByError"
    assert job["coordinatorExpertKey"] == "demo-helper" and job["totalSteps"] == 1
    _, out, _ = cli(capsys, "jobs", "--storage", str(real_dir), "--json", "--limit", "1")
    assert [j["id"] for j in json.loads(out)] == [PROGRAMMATIC_JOB]


async def test_jobs_orders_from_one_listing_and_reads_only_the_jobs_printed():
    from perstack_tui.cli.jobs import list_jobs
    from perstack_tui.demo import build_demo, write_objects

    class CountingStorage(MemoryStorage):
        def __init__(self) -> None:
            super().__init__()
            self.reads: list[str] = []
            self.listings = 0

        async def list_prefixes(self, prefix: str) -> list[str]:
            self.listings += 1
            return await super().list_prefixes(prefix)

        async def list_objects(self, prefix, start_after=None):  # type: ignore[no-untyped-def]
            self.listings += 1
            return await super().list_objects(prefix, start_after)

        async def read_bytes(self, key: str) -> bytes:
            self.reads.append(key)
            return await super().read_bytes(key)

    async def demo_storage() -> CountingStorage:
        storage = CountingStorage()
        for job in build_demo(seed=7, anchor_ms=1_795_300_000_000).values():
            await write_objects(storage, job.objects)
        return storage

    every = await list_jobs(await demo_storage())
    assert [s.started_at for s in every] == sorted((s.started_at for s in every), reverse=True)
    storage = await demo_storage()
    [newest] = await list_jobs(storage, statuses={"completed"}, limit=1)
    assert newest.id == next(s.id for s in every if s.status == "completed")
    assert newest.expert and newest.usage.totalTokens and not newest.partial
    assert storage.listings == 1  # the job ids; the rest is the one recursive listing
    events_read = [k for k in storage.reads if not k.endswith("/job.json")]
    assert len(events_read) == 2  # its expert and usage; no other job's events
    assert {keys.parse_key(k).job_id for k in events_read} == {newest.id}


def test_jobs_on_empty_storage_exits_1(capsys, tmp_path):
    code, _, err = cli(capsys, "jobs", "--storage", str(tmp_path))
    assert code == 1 and "no jobs" in err


# --- show -------------------------------------------------------------------------------


def test_show_event_by_id_and_by_key(capsys, real_dir):
    code, out, _ = cli(capsys, "show", "--storage", str(real_dir), DELEGATE_EVENT)
    assert code == 0
    event = json.loads(out)
    assert event["type"] == "callDelegate" and event["toolCalls"][0]["toolName"] == "demo-helper"
    key = keys.event_key(
        COORDINATOR_JOB, "r3k7c4urwywzgewayor7pkse", 1795299383165, 2, "callDelegate"
    )
    _, by_key, _ = cli(capsys, "show", "--storage", str(real_dir), key)
    assert json.loads(by_key) == event
    _, by_path, _ = cli(capsys, "show", "--storage", str(real_dir), str(real_dir / key))
    assert json.loads(by_path) == event


def test_show_checkpoint_and_job_without_job_json(capsys, real_dir):
    _, out, _ = cli(capsys, "show", "--storage", str(real_dir), CHECKPOINT)
    assert json.loads(out)["status"] == "completed"
    _, out, _ = cli(capsys, "show", "--storage", str(real_dir), COORDINATOR_JOB)
    job = json.loads(out)
    assert job["id"] == COORDINATOR_JOB and job["totalSteps"] == 4  # derived from events


def test_show_run_setting_masks_secrets_unless_revealed(capsys, real_dir):
    _, out, _ = cli(capsys, "show", "--storage", str(real_dir), PROGRAMMATIC_RUN)
    assert json.loads(out)["env"] == {"EXAMPLE_SECRET": MASK}
    assert "redacted-example" not in out
    _, out, _ = cli(
        capsys, "show", "--storage", str(real_dir), PROGRAMMATIC_RUN, "--reveal-secrets"
    )
    assert json.loads(out)["env"] == {"EXAMPLE_SECRET": "redacted-example"}


def test_show_corrupt_event_says_unreadable(capsys, real_dir):
    code, out, err = cli(capsys, "show", "--storage", str(real_dir), CORRUPT_EVENT)
    assert code == 1
    record = json.loads(out)
    assert record["type"] == "unreadable" and record["key"] == CORRUPT_EVENT
    assert "not valid JSON" in err


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("nothing-by-this-id", 1, "no job, run, checkpoint or event 'nothing-by-this-id'"),
        ("r3k7c4urwywzgewayor7pkse", 1, "has no run-setting.json"),
        ("..", 2, "unsafe id"),
        ("jobs/../../etc/passwd", 2, "unsafe id or key"),
        ("jobs/x/runs/y/event-1-1-startRun.json", 1, "no 'jobs/x/runs/y/event-1-1-startRun.json'"),
    ],
)
def test_show_explains_what_it_could_not_find(capsys, real_dir, target, code, message):
    got, _, err = cli(capsys, "show", "--storage", str(real_dir), target)
    assert got == code and message in err and "Traceback" not in err


# --- export -----------------------------------------------------------------------------


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_export_copies_the_whole_job_tree_byte_for_byte(capsys, real_dir, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = cli(
        capsys, "export", "--storage", str(real_dir), COORDINATOR_JOB, "--output-dir", str(out_dir)
    )
    assert code == 0 and f"exported 10 files of job {COORDINATOR_JOB}" in out
    source = real_dir / "jobs" / COORDINATOR_JOB
    assert _tree(out_dir / "jobs" / COORDINATOR_JOB) == _tree(source)
    for name in _tree(source):  # the corrupt event too: an export is a copy, not a repair
        assert (out_dir / "jobs" / COORDINATOR_JOB / name).read_bytes() == (
            source / name
        ).read_bytes()
    # the export is a storage: log reads it back
    code, out, _ = cli(capsys, "log", "--storage", str(out_dir), "--job", COORDINATOR_JOB, "--json")
    assert code == 0 and json.loads(out)["summary"]["totalEvents"] == 8


def test_export_masks_run_setting_secrets_unless_asked(capsys, real_dir, tmp_path):
    setting = f"jobs/{PROGRAMMATIC_JOB}/runs/{PROGRAMMATIC_RUN}/run-setting.json"
    masked_dir, revealed_dir = tmp_path / "masked", tmp_path / "revealed"
    cli(capsys, "export", "--storage", str(real_dir), PROGRAMMATIC_JOB, "-o", str(masked_dir))
    assert json.loads((masked_dir / setting).read_text())["env"] == {"EXAMPLE_SECRET": MASK}
    assert json.loads((masked_dir / f"jobs/{PROGRAMMATIC_JOB}/job.json").read_text())["id"]
    cli(
        capsys,
        "export",
        "--storage",
        str(real_dir),
        PROGRAMMATIC_JOB,
        "-o",
        str(revealed_dir),
        "--reveal-secrets",
    )
    assert (revealed_dir / setting).read_bytes() == (real_dir / setting).read_bytes()


@pytest.mark.parametrize("job", ["..", ".", "a\\b"])
def test_export_refuses_ids_that_escape_the_output_dir(capsys, real_dir, tmp_path, job):
    code, _, err = cli(capsys, "export", "--storage", str(real_dir), job, "-o", str(tmp_path / "o"))
    assert code == 2 and "unsafe" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["../evil.json", "jobs/../../evil.json", "/etc/passwd", "jobs//x"])
def test_export_refuses_keys_that_escape_before_writing_anything(tmp_path, key):
    with pytest.raises(UnsafeKeyError):
        safe_path(tmp_path, key)
    storage = MemoryStorage()
    storage.objects["jobs/j/job.json"] = (b"{}", 0.0)
    storage.objects[key] = (b"{}", 0.0)
    with pytest.raises(UnsafeKeyError):
        asyncio.run(export_keys(storage, ["jobs/j/job.json", key], tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_export_skips_a_run_setting_it_cannot_mask(capsys, tmp_path):
    base = tmp_path / "store"
    setting = base / "jobs/j/runs/r/run-setting.json"
    setting.parent.mkdir(parents=True)
    setting.write_text('{"env": {"TOKEN": "s3cret"}, oops')
    (setting.parent / "event-1-1-startRun.json").write_text("{}")
    code, _, err = cli(capsys, "export", "--storage", str(base), "j", "-o", str(tmp_path / "o"))
    assert code == 0
    assert "skipped jobs/j/runs/r/run-setting.json" in err and "cannot be masked" in err
    assert not (tmp_path / "o/jobs/j/runs/r/run-setting.json").exists()
    assert (tmp_path / "o/jobs/j/runs/r/event-1-1-startRun.json").exists()


def test_export_unknown_job_exits_1(capsys, real_dir, tmp_path):
    code, _, err = cli(
        capsys, "export", "--storage", str(real_dir), "nosuchjob", "-o", str(tmp_path)
    )
    assert code == 1 and "no job 'nosuchjob'" in err


def test_export_progress_reports_every_file(real_dir, tmp_path):
    from perstack_tui.export import export_job
    from perstack_tui.storage.filesystem import FileSystemStorage

    seen: list[tuple[int, int]] = []
    written = asyncio.run(
        export_job(
            FileSystemStorage(real_dir),
            COORDINATOR_JOB,
            tmp_path,
            progress=lambda d, t: seen.append((d, t)),
        )
    )
    assert seen == [(n, 10) for n in range(1, 11)] and len(written) == 10


# --- the same on S3 ---------------------------------------------------------------------


@pytest.mark.s3
def test_jobs_show_and_export_from_s3(capsys, real_dir, s3_uri, tmp_path):  # noqa: F811
    code, out, _ = cli(capsys, "jobs", "--storage", s3_uri, "--json")
    assert code == 0
    assert {j["id"] for j in json.loads(out)} == {COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB}
    _, out, _ = cli(capsys, "show", "--storage", s3_uri, PROGRAMMATIC_RUN)
    assert json.loads(out)["env"] == {"EXAMPLE_SECRET": MASK}
    out_dir = tmp_path / "from-s3"
    code, _, _ = cli(capsys, "export", "--storage", s3_uri, COORDINATOR_JOB, "-o", str(out_dir))
    assert code == 0
    source = real_dir / "jobs" / COORDINATOR_JOB
    assert _tree(out_dir / "jobs" / COORDINATOR_JOB) == _tree(source)
    corrupt = out_dir / CORRUPT_EVENT
    assert corrupt.read_bytes() == (real_dir / CORRUPT_EVENT).read_bytes()
