"""Event descriptions on the real Perstack fixtures, and time/token formatting."""

from __future__ import annotations

import pytest

from perstack_tui import keys
from perstack_tui.catalog import JobSummary
from perstack_tui.describe import (
    CATEGORIES,
    event_category,
    event_details,
    event_is_error,
    format_duration,
    format_relative,
    format_time,
    format_timestamp,
    format_tokens,
    gist,
    job_json,
    type_category,
)
from perstack_tui.models import EventMeta, Unreadable, Usage
from tests.conftest import COORDINATOR_JOB, CORRUPT_EVENT, ERROR_JOB

RUN = "r3k7c4urwywzgewayor7pkse"


async def _event(storage, job, run, timestamp, step, kind):
    return await storage.read_event(keys.event_key(job, run, timestamp, step, kind))


async def test_delegation_gist_names_the_delegate_expert_and_query(real_storage):
    event = await _event(real_storage, COORDINATOR_JOB, RUN, 1795299383165, 2, "callDelegate")
    assert gist(event) == "→ demo-helper: Summarize the word perstack"
    assert "Delegate to: demo-helper" in event_details(event)
    assert "unknown" not in " ".join(event_details(event))
    assert event_category(event) == "delegation"


async def test_tool_error_is_an_error_not_a_success(real_storage):
    event = await _event(real_storage, COORDINATOR_JOB, RUN, 1795299383115, 1, "resolveToolResults")
    assert event_is_error(event)
    assert event_category(event) == "error"
    details = event_details(event)
    assert details[0].startswith("✓ healthCheck")
    assert details[1] == "✗ readTextFile (error): File missing.txt does not exist."
    assert gist(event).startswith("✗ readTextFile: File missing.txt does not exist. | ✓ health")


async def test_tool_calls_gist_lists_tool_names(real_storage):
    event = await _event(real_storage, COORDINATOR_JOB, RUN, 1795299383084, 1, "callTools")
    assert gist(event) == "healthCheck(), readTextFile(path=missing.txt)"
    assert event_details(event) == ["Tools: healthCheck, readTextFile"]
    assert '  Args: {"path": "missing.txt"}' in event_details(event, verbose=True)
    assert not event_is_error(event)
    assert event_category(event) == "tool"


async def test_stop_by_error_gist_is_the_error_message(real_storage):
    run = "xy98q9hla44khlrc2owfa7xk"
    event = await _event(real_storage, ERROR_JOB, run, 1795299427971, 1, "stopRunByError")
    assert gist(event) == (
        "AI_NoOutputGeneratedError: No output generated. Check the stream for errors."
    )
    assert event_is_error(event) and event_category(event) == "error"


async def test_completion_start_and_stream_gists(real_storage):
    start = await _event(real_storage, COORDINATOR_JOB, RUN, 1795299382928, 1, "startRun")
    assert gist(start) == "demo-coordinator: Do the demo task"
    assert event_category(start) == "lifecycle"
    stream = await _event(real_storage, COORDINATOR_JOB, RUN, 1795299382985, 1, "streamReasoning")
    assert gist(stream) == "Let me"
    assert event_category(stream) == "stream"
    complete = await _event(
        real_storage, COORDINATOR_JOB, "hadyhjk3onqq4qi3j6ixtsng", 1795299383400, 4, "completeRun"
    )
    assert gist(complete) == "Final answer: the task is done."
    step = await _event(real_storage, COORDINATOR_JOB, RUN, 1795299383126, 1, "continueToNextStep")
    assert event_category(step) == "checkpoint"


async def test_corrupt_event_is_described_as_unreadable(real_storage):
    event = await real_storage.read_event(CORRUPT_EVENT)
    assert isinstance(event, Unreadable)
    assert event_category(event) == "unreadable"
    assert gist(event).startswith("unreadable: not valid JSON")
    assert event_details(event)[1] == f"Key: {CORRUPT_EVENT}"
    assert not event_is_error(event)


def test_gist_is_one_line_and_cut_to_width():
    unreadable = Unreadable(key="k", reason="line one\nline two " + "x" * 200)
    text = gist(unreadable, width=40)
    assert "\n" not in text and len(text) == 40 and text.endswith("…")


def test_type_category_covers_every_category_from_names_alone():
    found = {
        type_category(t)
        for t in (
            "stopRunByError",
            "callTools",
            "callDelegate",
            "streamRunResult",
            "continueToNextStep",
            "startRun",
            "unreadable",
            "someFutureEvent",
        )
    }
    assert found == set(CATEGORIES)
    meta = EventMeta(timestamp=1, stepNumber=1, type="retry", key="k")
    assert event_is_error(meta) and event_category(meta) == "error"


def test_time_formats_are_utc_like_perstack():
    ms = 1795299383165  # 2026-11-21 22:16:23.165 UTC
    assert format_timestamp(ms) == "2026-11-21 22:16:23"
    assert format_time(ms) == "22:16:23"
    assert format_timestamp(None) == "-"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (850, "850ms"),
        (4200, "4.2s"),
        (185_000, "3m 05s"),
        (7_620_000, "2h 07m"),
        (273_600_000, "3d 4h"),
        (None, "-"),
    ],
)
def test_duration_is_compact(ms, text):
    assert format_duration(ms) == text


def test_relative_time_counts_back_from_now():
    now = 1_000_000_000
    assert format_relative(now - 1000, now) == "just now"
    assert format_relative(now - 12_000, now) == "12s ago"
    assert format_relative(now - 300_000, now) == "5m ago"
    assert format_relative(now - 3 * 3_600_000, now) == "3h ago"
    assert format_relative(now - 2 * 86_400_000, now) == "2d ago"
    assert format_relative(now + 300_000, now) == "in 5m"


def test_token_counts_are_short():
    assert [format_tokens(n) for n in (950, 12_345, 4_500_000, None)] == [
        "950",
        "12.3k",
        "4.5M",
        "-",
    ]


def test_job_json_has_perstacks_job_shape():
    summary = JobSummary(
        id="j1",
        status="completed",
        expert="coord",
        started_at=10,
        finished_at=20,
        steps=4,
        usage=Usage(totalTokens=7),
    )
    data = job_json(summary)
    assert data == {
        "id": "j1",
        "status": "completed",
        "coordinatorExpertKey": "coord",
        "totalSteps": 4,
        "usage": Usage(totalTokens=7).to_json_dict(),
        "startedAt": 10,
        "finishedAt": 20,
    }
