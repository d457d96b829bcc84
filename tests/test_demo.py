"""The demo data: faithful to what Perstack writes, deterministic, safe to (re)write, live."""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perstack_tui import keys
from perstack_tui.catalog import Catalog
from perstack_tui.cli import main
from perstack_tui.demo import (
    MARKER_KEY,
    DemoJob,
    LiveWriter,
    build_demo,
    write_demo,
)
from perstack_tui.models import (
    MASK,
    Checkpoint,
    GenericEvent,
    RunSetting,
    Unreadable,
    parse_event,
    parse_model,
)
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.storage.memory import MemoryStorage

from .conftest import FIXTURES

ANCHOR = 1_795_300_000_000
CUID = re.compile(r"^[a-z][a-z0-9]{23}$")
STDOUT = FIXTURES / "cli-local-run" / "stdout-perstack-run.ndjson"
STREAM_DELTAS = {"streamReasoning", "streamRunResult"}


@functools.cache
def demo() -> dict[str, DemoJob]:
    return build_demo(seed=7, anchor_ms=ANCHOR)


def parsed(job: DemoJob) -> list[tuple[str, dict | None]]:
    """(key, JSON or None if corrupt) for every event of a job, in write order."""
    found = []
    for item in job.objects:
        if keys.parse_key(item.key).kind == "event":
            try:
                found.append((item.key, json.loads(item.data)))
            except ValueError:
                found.append((item.key, None))
    return found


def normalized_types(events: list[dict]) -> list[str]:
    """Event types with repeated stream deltas collapsed and the demo's extra type dropped."""
    types: list[str] = []
    for event in events:
        kind = event["type"]
        if kind == "startSkillSandbox" or (types and kind in STREAM_DELTAS and types[-1] == kind):
            continue
        types.append(kind)
    return types


def real_runs() -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    for line in STDOUT.read_text().splitlines():
        event = json.loads(line)
        if "stepNumber" in event:  # persisted events only
            runs.setdefault(event["runId"], []).append(event)
    return runs


def demo_runs(job: DemoJob) -> list[list[dict]]:
    runs: dict[str, list[dict]] = {}
    for _key, event in parsed(job):
        if event is not None:
            runs.setdefault(event["runId"], []).append(event)
    return sorted(runs.values(), key=lambda events: events[0]["timestamp"])


# --- faithful to the real sequence -----------------------------------------------------


def test_delegation_follows_the_real_event_sequence():
    real = list(real_runs().values())
    mine = demo_runs(demo()["delegation"])
    assert len(mine) == len(real) == 3
    real_pairs = {pair for run in real for pair in itertools.pairwise(normalized_types(run))}
    for real_run, my_run in zip(real, mine, strict=True):
        real_types, my_types = normalized_types(real_run), normalized_types(my_run)
        assert my_types[:2] == real_types[:2]
        assert my_types[-1] == real_types[-1]
        # every step from one event to the next is one the real runtime makes
        assert set(itertools.pairwise(my_types)) <= real_pairs
    # the coordinator's first run and the resumed run are event-for-event the real ones
    assert normalized_types(mine[0]) == normalized_types(real[0])
    assert normalized_types(mine[2]) == normalized_types(real[2])


def test_demo_events_have_the_real_fields():
    real = {e["type"]: e for run in real_runs().values() for e in run}
    for event in (e for run in demo_runs(demo()["delegation"]) for e in run):
        if event["type"] in real:
            assert set(event) == set(real[event["type"]]), event["type"]
        for field in ("checkpoint", "initialCheckpoint", "nextCheckpoint"):
            if field in event and field in real.get(event["type"], {}):
                mine, theirs = set(event[field]), set(real[event["type"]][field])
                assert {"id", "jobId", "runId", "status", "stepNumber", "messages"} <= mine
                allowed = {"contextWindowUsage", "retryCount", "delegateTo", "delegatedBy"}
                assert mine - theirs <= allowed


def test_delegation_links_and_job_wide_steps_as_perstack_writes_them():
    coordinator, helper, resumed = demo_runs(demo()["delegation"])
    stop = coordinator[-1]
    assert stop["type"] == "stopRunByDelegate"
    assert stop["checkpoint"]["status"] == "stoppedByDelegate"
    start = helper[0]
    assert start["stepNumber"] == stop["stepNumber"] + 1
    delegated_by = start["initialCheckpoint"]["delegatedBy"]
    assert delegated_by["runId"] == stop["runId"]
    assert delegated_by["checkpointId"] == stop["checkpoint"]["id"]
    assert delegated_by["toolCallId"] == stop["checkpoint"]["delegateTo"][0]["toolCallId"]
    for event in helper:
        if "checkpoint" in event:
            assert event["checkpoint"]["delegatedBy"] == delegated_by
    done = helper[-1]
    restart = resumed[0]
    assert restart["type"] == "startRun" and restart["stepNumber"] == done["stepNumber"] + 1
    initial = restart["initialCheckpoint"]
    assert initial["status"] == "stoppedByDelegate" and restart["inputMessages"] == []
    assert initial["partialToolResults"][0]["result"][0]["text"] == done["text"]
    assert resumed[1]["type"] == "finishAllToolCalls"


def test_one_checkpoint_per_step_holding_the_growing_history():
    for name, job in demo().items():
        carriers = [e for _k, e in parsed(job) if e and "checkpoint" in e]
        stored = {
            keys.parse_key(o.key).checkpoint_id: json.loads(o.data)
            for o in job.objects
            if keys.parse_key(o.key).kind == "checkpoint"
        }
        steps = [e["stepNumber"] for e in carriers]
        assert steps == sorted(set(steps)), name  # one per step, job-wide numbering
        assert len(stored) == len(carriers), name
        for event in carriers:
            assert stored[event["checkpoint"]["id"]] == event["checkpoint"]
            assert isinstance(parse_model(Checkpoint, json.dumps(event["checkpoint"])), Checkpoint)
        sizes = [len(e["checkpoint"]["messages"]) for e in carriers]
        if name == "long":
            assert sizes == sorted(sizes) and sizes[-1] > 100 and len(carriers) >= 50


def test_keys_match_event_contents_and_ids_look_like_cuid2():
    for job in demo().values():
        assert CUID.match(job.job_id)
        for key, event in parsed(job):
            name = keys.parse_key(key)
            assert CUID.match(name.run_id or "")
            if event is not None:
                assert (event["timestamp"], event["stepNumber"], event["type"]) == (
                    name.event.timestamp,
                    name.event.step_number,
                    name.event.type,
                )
                assert CUID.match(event["id"])


def test_scenarios_cover_what_the_browser_must_show():
    jobs = demo()
    types = {name: [e["type"] for _k, e in parsed(job) if e] for name, job in jobs.items()}
    assert "stopRunByError" in types["provider-error"]
    error = next(
        e for _k, e in parsed(jobs["provider-error"]) if e and e["type"] == "stopRunByError"
    )
    assert set(error["error"]) == {"name", "message", "statusCode", "isRetryable"}
    assert types["max-steps"][-1] == "stopRunByExceededMaxSteps"
    assert types["interactive-waiting"][-1] == "stopRunByInteractiveTool"
    calls = [e for _k, e in parsed(jobs["parallel-tools"]) if e and e["type"] == "callTools"]
    assert max(len(e["toolCalls"]) for e in calls) >= 3
    results = [
        e for _k, e in parsed(jobs["parallel-tools"]) if e and e["type"] == "resolveToolResults"
    ]
    texts = [p["text"] for e in results for r in e["toolResults"] for p in r["result"]]
    assert any(json.loads(t).get("error") == "Error" for t in texts if t.startswith("{"))
    for name in ("plain", "delegation"):
        assert {"startStreamingReasoning", "streamReasoning", "completeStreamingReasoning"} <= set(
            types[name]
        )
        assert {"startStreamingRunResult", "streamRunResult", "completeStreamingRunResult"} <= set(
            types[name]
        )
    starts = [min(o.at for o in job.objects) for job in jobs.values()]
    assert all(ANCHOR - 4 * 86_400_000 < start < ANCHOR for start in starts)
    assert max(starts) - min(starts) > 2 * 86_400_000  # spread over days


def test_exactly_one_corrupt_event_and_one_unknown_event_type():
    job = demo()["delegation"]
    corrupt = [k for k, e in parsed(job) if e is None]
    assert len(corrupt) == 1 and corrupt[0].endswith("-streamRunResult.json")
    data = next(o.data for o in job.objects if o.key == corrupt[0])
    result = parse_event(data, corrupt[0])
    assert isinstance(result, Unreadable) and "not valid JSON" in result.reason
    for other in demo().values():
        if other is not job:
            assert all(e is not None for _k, e in parsed(other))
    unknown = [e for _k, e in parsed(job) if e and e["type"] == "startSkillSandbox"]
    assert len(unknown) == 1 and isinstance(parse_event(unknown[0]), GenericEvent)


def test_attachments_are_a_real_png_and_a_megabyte_inline_file():
    start = next(e for _k, e in parsed(demo()["attachments"]) if e and e["type"] == "startRun")
    parts = start["inputMessages"][1]["contents"]
    image = next(p for p in parts if p["type"] == "imageInlinePart")
    assert base64.b64decode(image["encodedData"]).startswith(b"\x89PNG\r\n\x1a\n")
    blob = next(p for p in parts if p["type"] == "fileInlinePart")
    assert len(blob["encodedData"]) >= 1_000_000


def test_only_the_programmatic_job_has_job_json_and_run_settings_with_fake_secrets():
    for name, job in demo().items():
        kinds = {keys.parse_key(o.key).kind for o in job.objects}
        assert ("job" in kinds) == ("run-setting" in kinds) == (name == "programmatic"), name
    raw = next(
        o.data
        for o in demo()["programmatic"].objects
        if keys.parse_key(o.key).kind == "run-setting"
    )
    setting = parse_model(RunSetting, raw)
    assert isinstance(setting, RunSetting)
    assert setting.env["ANTHROPIC_API_KEY"].startswith("sk-ant-demo-")
    assert setting.providerConfig.apiKey and setting.perstackApiKey
    masked = json.dumps(setting.masked())
    assert "sk-ant-demo" not in masked and "psk_demo" not in masked and "hunter2" not in masked
    assert setting.masked()["env"]["HOME"] == MASK


def test_same_seed_same_bytes_other_seed_other_ids():
    again = build_demo(seed=7, anchor_ms=ANCHOR)
    assert {n: j.objects for n, j in again.items()} == {n: j.objects for n, j in demo().items()}
    other = build_demo(seed=8, anchor_ms=ANCHOR)
    assert {j.job_id for j in other.values()}.isdisjoint(j.job_id for j in demo().values())


# --- writing -----------------------------------------------------------------------------


async def test_written_demo_is_browsable_through_the_catalog():
    storage = MemoryStorage()
    jobs = await write_demo(storage, seed=7, anchor_ms=ANCHOR)
    catalog = Catalog(storage)
    assert sorted(await catalog.job_ids()) == sorted(j.job_id for j in jobs.values())
    summaries = {s.id: s for s in await catalog.jobs(await catalog.job_ids())}
    assert summaries[jobs["long"].job_id].steps >= 50
    assert summaries[jobs["programmatic"].job_id].source == "job.json"
    assert await catalog.latest_job_id() == jobs["delegation-running"].job_id
    marker = json.loads(await storage.read_bytes(MARKER_KEY))
    assert marker == {"seed": 7, "anchor": ANCHOR}


async def test_rewriting_a_demo_reuses_its_anchor_instead_of_duplicating():
    storage = MemoryStorage()
    await write_demo(storage, seed=7)
    before = dict(storage.objects)
    await asyncio.sleep(0.01)  # a later clock must not matter: the marker's anchor is reused
    await write_demo(storage, seed=7)
    assert storage.objects.keys() == before.keys()
    assert all(storage.objects[k][0] == before[k][0] for k in before)


def test_cli_writes_a_demo_and_rewrites_it_idempotently(tmp_path, capsys):
    target = tmp_path / "perstack"
    assert main(["demo", "--path", str(target)]) == 0
    out = capsys.readouterr().out
    assert "wrote 11 demo jobs" in out and demo()["delegation"].title in out
    files = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert (target / MARKER_KEY) in files and len(files) > 500
    assert main(["demo", "--path", str(target), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == files


def test_cli_refuses_a_non_empty_directory_that_is_not_a_demo(tmp_path, capsys):
    target = tmp_path / "real"
    (target / "jobs" / "precious").mkdir(parents=True)
    (target / "jobs" / "precious" / "job.json").write_text("{}")
    assert main(["demo", "--path", str(target)]) == 2
    assert "refusing" in capsys.readouterr().err
    assert [p.name for p in target.rglob("*")] == ["jobs", "precious", "job.json"]


def test_cli_takes_storage_uri_and_rejects_path_with_storage(tmp_path, capsys):
    target = tmp_path / "via-uri"
    assert main(["demo", "--storage", f"file://{target}", "--quiet"]) == 0
    assert (target / MARKER_KEY).is_file() and (target / "jobs").is_dir()
    assert main(["demo", "--storage", str(target), "--path", str(target)]) == 2
    assert main(["demo", "--path", str(tmp_path / "x"), "--pace", "0"]) == 2


@pytest.mark.s3
async def test_demo_writes_to_s3_through_the_storage_layer(s3_server, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    uri = (
        f"s3://{s3_bucket}/demo?region=us-east-1&endpoint={s3_server.endpoint}&forcePathStyle=true"
    )
    from perstack_tui.config import parse_uri
    from perstack_tui.storage.factory import create_storage

    storage = create_storage(parse_uri(uri))
    try:
        jobs = build_demo(seed=7, anchor_ms=ANCHOR)
        await storage.write_bytes(MARKER_KEY, b"{}")
        for name in ("delegation", "provider-error"):
            for item in jobs[name].objects:
                await storage.write_bytes(item.key, item.data)
        summary = await Catalog(storage).job(jobs["delegation"].job_id)
        assert (summary.status, summary.expert) == ("completed", "research-lead")
    finally:
        await storage.close()
    # the command refuses a bucket prefix that holds data but no demo marker
    other = (
        f"s3://{s3_bucket}/other?region=us-east-1&endpoint={s3_server.endpoint}&forcePathStyle=true"
    )
    storage = create_storage(parse_uri(other))
    try:
        await storage.write_bytes("jobs/x/job.json", b"{}")
    finally:
        await storage.close()
    code = await asyncio.to_thread(main, ["demo", "--storage", other, "--quiet"])
    assert code == 2


# --- live ------------------------------------------------------------------------------


async def test_live_writer_writes_a_whole_job_that_parses_and_completes():
    storage = MemoryStorage()
    started: list[DemoJob] = []
    writer = LiveWriter(storage, pace=0.002, seed=1, on_job_started=started.append)
    await asyncio.wait_for(writer.run(max_jobs=1), timeout=30)
    assert len(started) == 1 and writer.objects_written == len(started[0].objects)
    job_id = started[0].job_id
    for key, (data, _modified) in storage.objects.items():
        if keys.parse_key(key).kind == "event":
            assert not isinstance(parse_event(data, key), Unreadable)
    summary = await Catalog(storage).job(job_id)
    assert (summary.status, summary.expert) == ("completed", "research-lead")
    assert len(await Catalog(storage).runs(job_id)) == 3


async def test_live_writer_paces_events_in_real_time_and_stops_cleanly():
    storage = MemoryStorage()
    writer = LiveWriter(storage, pace=0.05, seed=2)
    task = asyncio.create_task(writer.run())
    deadline = time.monotonic() + 20
    while writer.objects_written < 5:
        assert time.monotonic() < deadline, "the live writer wrote nothing"
        await asyncio.sleep(0.01)
    writer.stop()
    await asyncio.wait_for(task, timeout=5)
    written = writer.objects_written
    job = writer.next_job()  # a job at this pace lasts dozens of paces
    assert job.objects[-1].at - job.objects[0].at > 20 * 50
    await asyncio.sleep(0.2)
    assert writer.objects_written == written == len(storage.objects)


def test_demo_live_command_runs_beside_a_static_demo_and_stops_on_sigterm(tmp_path):
    """What ``dev.py run`` does: a static demo, then ``--live --quiet`` until terminated."""
    target = tmp_path / "perstack"
    assert main(["demo", "--path", str(target), "--quiet"]) == 0
    before = {str(p) for p in target.rglob("*.json")}
    command = ["demo", "--path", str(target), "--live", "--quiet", "--pace", "0.02"]
    process = subprocess.Popen(
        [sys.executable, "-m", "perstack_tui", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 30
        while len({str(p) for p in target.rglob("*.json")} - before) < 10:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no live events appeared"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out == b""
    new_jobs = {
        Path(p).relative_to(target).parts[1]
        for p in {str(p) for p in target.rglob("*.json")} - before
    }
    assert len(new_jobs) >= 1 and not new_jobs & {j.job_id for j in build_demo().values()}
    storage = FileSystemStorage(target)
    assert asyncio.run(Catalog(storage).job(sorted(new_jobs)[0])).expert == "research-lead"


async def test_one_job_can_be_built_and_written_one_object_at_a_time():
    from perstack_tui.demo import build_job, delegation_job, iter_writes

    job = build_job(delegation_job, seed=3, start_ms=ANCHOR)
    assert job.job_id == build_job(delegation_job, seed=3, start_ms=ANCHOR).job_id
    storage = MemoryStorage()
    seen = 0
    async for item in iter_writes(storage, job.objects):
        seen += 1
        assert item.key in storage.objects and len(storage.objects) <= seen
    assert seen == len(job.objects)
    assert (await Catalog(storage).job(job.job_id)).status == "completed"
