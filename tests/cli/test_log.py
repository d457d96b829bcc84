"""``perstack-tui log`` on the real Perstack fixtures, a synthetic job, and the local S3 server."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import time
from pathlib import Path

import pytest

from perstack_tui import keys
from perstack_tui.cli import main
from perstack_tui.cli.log import add_arguments, log_command
from perstack_tui.filters import build_filter
from perstack_tui.storage.base import dump_compact
from perstack_tui.storage.memory import MemoryStorage
from tests.conftest import COORDINATOR_JOB, CORRUPT_EVENT, ERROR_JOB, PROGRAMMATIC_JOB

HELPER_RUN = "hadyhjk3onqq4qi3j6ixtsng"
COORDINATOR_RUN = "r3k7c4urwywzgewayor7pkse"
HELPER_CHECKPOINT = "lrsre0h1ib0jsupajkyioufw"


def log(capsys, storage_dir: Path | str, *flags: str) -> tuple[int, str, str]:
    code = main(["log", "--storage", str(storage_dir), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def log_json(capsys, storage_dir: Path | str, *flags: str) -> dict:
    code, out, err = log(capsys, storage_dir, "--json", *flags)
    assert code == 0, err
    return json.loads(out)


def event_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("[Step ")]


# --- the default view -------------------------------------------------------------------


def test_default_is_the_job_that_started_last_not_the_newest_directory(capsys, real_dir):
    # Perstack's log picks by directory mtime: make an older job's directory the newest.
    old = real_dir / "jobs" / COORDINATOR_JOB
    future = time.time() + 3600
    os.utime(old, (future, future))
    code, out, _ = log(capsys, real_dir)
    assert f"Job: {PROGRAMMATIC_JOB} (completed)  (showing latest job)" in out
    assert code == 1  # that job has a job.json but no events: nothing to show


def test_header_names_storage_job_status_expert_and_times(capsys, real_dir):
    code, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB)
    assert code == 0
    head = out.splitlines()[:6]
    assert head == [
        f"Storage: filesystem {real_dir}",
        f"Job: {COORDINATOR_JOB} (completed)",
        "Expert: demo-coordinator",
        "Started: 2026-11-21 22:16:22",
        "Steps: 4",
        "Finished: 2026-11-21 22:16:23",
    ]
    assert "  Total Events: 8" in out and "  Step Range: 1 - 4" in out


def test_job_log_includes_the_delegates_run_perstack_misses(capsys, real_dir):
    _, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB)
    lines = event_lines(out)
    assert lines[0].startswith("[Step 1] startRun                 22:16:22  demo-coordinator")
    assert lines[-1].startswith("[Step 4] completeRun") and lines[-1].endswith("demo-helper")
    assert "  Result: Final answer: the task is done." in out


def test_delegation_shows_the_delegate_expert_and_query(capsys, real_dir):
    _, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--delegations")
    assert "Delegate to: demo-helper" in out
    assert 'Query: "Summarize the word perstack"' in out
    assert "unknown" not in out


def test_tool_error_is_shown_as_an_error(capsys, real_dir):
    _, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--type", "resolveToolResults")
    assert event_lines(out) == [
        "[Step 1] resolveToolResults       22:16:23  demo-coordinator  ERROR"
    ]
    assert "  ✗ readTextFile (error): File missing.txt does not exist." in out
    assert "  Errors: 1" in out


def test_a_long_event_type_does_not_run_into_the_time(capsys, real_dir):
    run = real_dir / "jobs" / COORDINATOR_JOB / "runs" / "hadyhjk3onqq4qi3j6ixtsng"
    event = {
        "type": "completeStreamingReasoning",  # 26 characters: wider than the type column
        "id": "longtypeevent",
        "expertKey": "demo-helper",
        "timestamp": 1795299383376,
        "jobId": COORDINATOR_JOB,
        "runId": "hadyhjk3onqq4qi3j6ixtsng",
        "stepNumber": 4,
        "text": "done",
    }
    (run / "event-1795299383376-4-completeStreamingReasoning.json").write_text(json.dumps(event))
    _, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--type", event["type"])
    assert "[Step 4] completeStreamingReasoning 22:16:23" in out


def test_corrupt_event_is_listed_as_unreadable(capsys, real_dir):
    _, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB)
    assert "[Step 4] streamRunResult          22:16:23  UNREADABLE" in out
    assert f"  Key: {CORRUPT_EVENT}" in out
    assert "  Unreadable: 1" in out


# --- filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "steps"),
    [("1", {1}), (">1", {2, 4}), (">=2", {2, 4}), ("<2", {1}), ("<=2", {1, 2}), ("2-4", {2, 4})],
)
def test_step_filter(capsys, real_dir, step, steps):
    data = log_json(capsys, real_dir, "--job", COORDINATOR_JOB, "--step", step)
    found = {e.get("stepNumber") for e in data["events"]}
    assert found == steps


def test_type_filter_keeps_only_that_type(capsys, real_dir):
    data = log_json(capsys, real_dir, "--job", COORDINATOR_JOB, "--type", "callTools")
    assert [e["type"] for e in data["events"]] == ["callTools"]


def test_errors_finds_tool_errors_and_run_errors(capsys, real_dir):
    coordinator = log_json(capsys, real_dir, "--job", COORDINATOR_JOB, "--errors")
    assert [e["type"] for e in coordinator["events"]] == ["resolveToolResults"]
    failed = log_json(capsys, real_dir, "--job", ERROR_JOB, "--errors")
    assert [e["type"] for e in failed["events"]] == ["stopRunByError"]
    assert failed["summary"]["errorCount"] == 1


def test_tools_preset(capsys, real_dir):
    data = log_json(capsys, real_dir, "--job", COORDINATOR_JOB, "--tools")
    assert [e["type"] for e in data["events"]] == ["callTools", "resolveToolResults"]
    assert data["summary"]["toolCallCount"] == 2


def test_field_filter_matches_any_array_element(capsys, real_dir):
    flags = ("--job", COORDINATOR_JOB, "--filter", '.toolCalls[].toolName == "readTextFile"')
    assert [e["id"] for e in log_json(capsys, real_dir, *flags)["events"]] == [
        "mgd47rekd9gf3dme3e22jfs2"
    ]
    _, _, err = log(capsys, real_dir, *flags)
    assert f"not checked against --filter (unreadable): {CORRUPT_EVENT}" in err
    code, _, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--filter", ".stepNumber > 9")
    assert code == 1


def test_run_filter_shows_only_that_run(capsys, real_dir):
    data = log_json(capsys, real_dir, "--job", COORDINATOR_JOB, "--run", HELPER_RUN)
    assert [e["type"] for e in data["events"]] == ["unreadable", "completeRun"]


def test_run_without_job_finds_its_job(capsys, real_dir):
    data = log_json(capsys, real_dir, "--run", HELPER_RUN)
    assert data["job"]["id"] == COORDINATOR_JOB


def test_checkpoint_shows_its_run_and_messages(capsys, real_dir):
    code, out, _ = log(capsys, real_dir, "--checkpoint", HELPER_CHECKPOINT, "--messages")
    assert code == 0
    assert f"Checkpoint: {HELPER_CHECKPOINT}" in out and "Run: " + HELPER_RUN in out
    assert "  [userMessage] Summarize the word perstack" in out
    assert len(event_lines(out)) == 2
    data = log_json(capsys, real_dir, "--checkpoint", HELPER_CHECKPOINT)
    assert data["checkpoint"]["id"] == HELPER_CHECKPOINT


def test_context_events_are_not_counted_as_matches(capsys, real_dir):
    _, out, _ = log(
        capsys, real_dir, "--job", COORDINATOR_JOB, "--type", "callDelegate", "--context", "1"
    )
    assert "Showing 1 of 1 matching events, with 2 events around them (--context)" in out


def test_take_offset_and_context_page_like_perstack(capsys, real_dir):
    job = ("--job", COORDINATOR_JOB)
    all_ids = [e.get("id") or e["key"] for e in log_json(capsys, real_dir, *job)["events"]]
    assert len(all_ids) == 8
    page = log_json(capsys, real_dir, *job, "--take", "2", "--offset", "3")["events"]
    assert [e["id"] for e in page] == all_ids[3:5]
    around = log_json(capsys, real_dir, *job, "--type", "callDelegate", "--context", "1")
    assert [e.get("id") or e["key"] for e in around["events"]] == all_ids[4:7]
    everything = log_json(capsys, real_dir, *job, "--take", "0")["events"]
    assert len(everything) == 8


def test_summary_prints_no_event_lines(capsys, real_dir):
    code, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--summary")
    assert code == 0
    assert "  Total Events: 8" in out
    assert event_lines(out) == []


def test_verbose_shows_tool_arguments(capsys, real_dir):
    _, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--tools", "--verbose")
    assert '    Args: {"path": "missing.txt"}' in out
    assert "  [@perstack/base] readTextFile" in out


# --- JSON and JSONL ---------------------------------------------------------------------


def test_json_has_perstacks_top_level_shape(capsys, real_dir):
    data = log_json(capsys, real_dir, "--job", COORDINATOR_JOB)
    assert set(data) == {"job", "events", "summary"}
    assert {"id", "status", "coordinatorExpertKey", "totalSteps", "usage", "startedAt"} <= set(
        data["job"]
    )
    assert data["summary"] == {
        "totalEvents": 8,
        "errorCount": 1,
        "toolCallCount": 2,
        "delegationCount": 1,
        "stepRange": {"min": 1, "max": 4},
        "unreadableCount": 1,
    }
    unreadable = [e for e in data["events"] if e["type"] == "unreadable"]
    assert unreadable[0]["key"] == CORRUPT_EVENT
    assert unreadable[0]["reason"].startswith("not valid JSON")


def test_pretty_json_is_indented(capsys, real_dir):
    _, out, _ = log(capsys, real_dir, "--job", ERROR_JOB, "--json", "--pretty")
    assert out.startswith('{\n  "job": {')


def test_jsonl_prints_one_event_a_line(capsys, real_dir):
    code, out, _ = log(capsys, real_dir, "--job", COORDINATOR_JOB, "--jsonl")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert len(events) == 8
    assert events[0]["type"] == "startRun"


def _event(job: str, run: str, timestamp: int, step: int, kind: str, **body) -> tuple[str, bytes]:
    data = {
        "type": kind,
        "id": f"e{timestamp}",
        "expertKey": "coord",
        "timestamp": timestamp,
        "jobId": job,
        "runId": run,
        "stepNumber": step,
        **body,
    }
    return keys.event_key(job, run, timestamp, step, kind), dump_compact(data)


def test_json_masks_secrets_unless_revealed(capsys, tmp_path):
    key, raw = _event(
        "job1",
        "run1",
        1000,
        1,
        "callTools",
        toolCalls=[{"id": "c", "toolName": "login", "args": {"apiKey": "sk-live-123"}}],
    )
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(raw)
    masked = log_json(capsys, tmp_path)
    assert masked["events"][0]["toolCalls"][0]["args"]["apiKey"] == "********"
    _, out, _ = log(capsys, tmp_path, "--jsonl")
    assert "sk-live-123" not in out
    revealed = log_json(capsys, tmp_path, "--reveal-secrets")
    assert revealed["events"][0]["toolCalls"][0]["args"]["apiKey"] == "sk-live-123"


# --- errors and exit codes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (("--step", "x"), 2, "invalid step filter 'x'"),
        (("--filter", "type = 1"), 2, "invalid filter"),
        (("--job", "../etc"), 2, "unsafe job id"),
        (("--job", "nosuchjob"), 1, "no job 'nosuchjob'"),
        (("--job", COORDINATOR_JOB, "--run", "nosuchrun"), 1, "no run 'nosuchrun'"),
        (("--job", COORDINATOR_JOB, "--checkpoint", "nope"), 1, "no checkpoint 'nope'"),
        (("--run", "nosuchrun"), 1, "no run 'nosuchrun' in any job"),
        (("--checkpoint", "nope"), 1, "no checkpoint 'nope' in any job"),
        (("--job", COORDINATOR_JOB, "--type", "retry"), 1, ""),
    ],
)
def test_exit_codes_and_messages(capsys, real_dir, flags, code, message):
    got, _, err = log(capsys, real_dir, *flags)
    assert got == code
    assert message in err
    assert "Traceback" not in err


def test_empty_storage_says_so(capsys, tmp_path):
    code, _, err = log(capsys, tmp_path / "nothing-here")
    assert code == 1
    assert "no jobs in" in err


# --- reading only what is shown -----------------------------------------------------------


class CountingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    async def read_bytes(self, key: str) -> bytes:
        self.reads.append(key)
        return await super().read_bytes(key)


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(flags))


def _big_job(events: int) -> CountingStorage:
    storage = CountingStorage()
    for n in range(events):
        key, raw = _event("big", "run", 1_000_000 + n, n // 10, "callTools", toolCalls=[])
        storage.objects[key] = (raw, 0.0)
    return storage


async def test_take_reads_only_the_events_shown():
    storage = _big_job(500)
    out = io.StringIO()
    code = await log_command(storage, _args("--job", "big", "--take", "5"), build_filter(), out)
    assert code == 0
    event_reads = {k for k in storage.reads if "/event-" in k}
    assert len(event_reads) <= 6  # the 5 shown + the run's first (its expert)
    assert "Showing 5 of 500 matching events" in out.getvalue()


async def test_step_filter_works_on_names_without_reading_others():
    storage = _big_job(500)
    out = io.StringIO()
    flt = build_filter(step="7")
    await log_command(storage, _args("--job", "big", "--jsonl"), flt, out)
    assert len(out.getvalue().splitlines()) == 10
    assert len({k for k in storage.reads if "/event-" in k}) <= 11


# --- --follow -----------------------------------------------------------------------------


async def wait_for(condition, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


async def test_follow_prints_each_new_matching_event_once():
    storage = MemoryStorage()
    key, raw = _event("live", "run", 1000, 1, "startRun")
    storage.objects[key] = (raw, 0.0)
    out = io.StringIO()
    args = _args("--job", "live", "--follow", "--jsonl")
    flt = build_filter(types="startRun,callTools")
    task = asyncio.create_task(log_command(storage, args, flt, out))
    try:
        await wait_for(lambda: task.done() or len(out.getvalue().splitlines()) == 1)
        for n in range(3):
            key, raw = _event("live", "run", 2000 + n, 1, "callTools", toolCalls=[])
            await storage.write_bytes(key, raw)
        key, raw = _event("live", "run", 3000, 1, "retry", reason="ignored by the filter")
        await storage.write_bytes(key, raw)
        await wait_for(lambda: len(out.getvalue().splitlines()) >= 4)
        await asyncio.sleep(0.3)  # a few more polls: nothing is printed twice
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [e["id"] for e in lines] == ["e1000", "e2000", "e2001", "e2002"]
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- the same on S3 -----------------------------------------------------------------------


def upload(real_dir: Path, s3_server, bucket: str, prefix: str = "team/perstack") -> str:
    """Copy the fixtures into a bucket through the storage API; return the --storage URI."""
    from perstack_tui.storage.s3 import S3Storage

    async def copy() -> None:
        storage = S3Storage(
            bucket,
            prefix,
            region="us-east-1",
            endpoint=s3_server.endpoint,
            force_path_style=True,
            access_key_id=s3_server.access_key,
            secret_access_key=s3_server.secret_key,
        )
        try:
            for path in sorted(real_dir.rglob("*.json")):
                await storage.write_bytes(path.relative_to(real_dir).as_posix(), path.read_bytes())
        finally:
            await storage.close()

    asyncio.run(copy())
    return f"s3://{bucket}/{prefix}?region=us-east-1&endpoint={s3_server.endpoint}"


@pytest.fixture
def s3_uri(real_dir, s3_server, s3_bucket, monkeypatch) -> str:
    """The real fixtures in a fresh bucket on the local S3 server, credentials in the env."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    return upload(real_dir, s3_server, s3_bucket)


@pytest.mark.s3
def test_log_on_s3_matches_the_filesystem(capsys, real_dir, s3_uri):
    flags = ("--job", COORDINATOR_JOB, "--json")
    s3_code, s3_out, _ = log(capsys, s3_uri, *flags)
    fs_code, fs_out, _ = log(capsys, real_dir, *flags)
    assert s3_code == fs_code == 0
    s3_data, fs_data = json.loads(s3_out), json.loads(fs_out)
    assert s3_data["events"] == fs_data["events"]
    assert s3_data["summary"] == fs_data["summary"]
    assert s3_data["job"] == fs_data["job"]


@pytest.mark.s3
def test_log_on_s3_shows_delegations_tool_errors_and_the_latest_job(capsys, s3_uri):
    code, out, _ = log(capsys, s3_uri)
    assert code == 1 and f"Job: {PROGRAMMATIC_JOB} (completed)  (showing latest job)" in out
    _, out, _ = log(capsys, s3_uri, "--job", COORDINATOR_JOB)
    assert out.startswith("Storage: s3 ")
    assert "Delegate to: demo-helper" in out
    assert "  ✗ readTextFile (error): File missing.txt does not exist." in out
    assert "[Step 4] completeRun" in out
    data = json.loads(log(capsys, s3_uri, "--job", ERROR_JOB, "--errors", "--json")[1])
    assert [e["type"] for e in data["events"]] == ["stopRunByError"]


HELP_SCRIPT = """
import contextlib, io, json, sys
from perstack_tui.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main({argv!r})
light = {{"perstack_tui", "perstack_tui.keys"}}  # the key layout: the standard library only
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pydantic"
                        or m.startswith("perstack_tui") and "cli" not in m and m not in light)))
"""


@pytest.mark.parametrize("command", ["", "log", "jobs", "show", "export", "info", "demo"])
def test_help_loads_neither_the_models_nor_pydantic(command):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            HELP_SCRIPT.format(argv=[command, "--help"] if command else ["--help"]),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout) == []
