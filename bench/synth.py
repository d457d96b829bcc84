"""Synthetic Perstack jobs in the real format, for the benchmarks' data sets.

Events and checkpoints are plain dicts shaped as the Perstack runtime writes them (see
PERSTACK_FORMAT.md); they are stored through the project's own storage layer
(``store_event``/``store_checkpoint``/...), so keys and bytes match what the app reads.
Everything is derived from a seeded ``random.Random``: the same seed gives the same data.
"""

from __future__ import annotations

import base64
import random
import string
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_ALPHABET = string.ascii_lowercase + string.digits
BASE_TIME = 1_790_000_000_000  # ms; every synthetic timestamp is after this

# status of a job -> the type of its last event (None: still running, no end event)
END_EVENT = {
    "completed": "completeRun",
    "stoppedByError": "stopRunByError",
    "stoppedByMaxSteps": "stopRunByExceededMaxSteps",
    "stoppedByInteractiveTool": "stopRunByInteractiveTool",
    "running": None,
}
CHECKPOINT_STATUS = {
    "completeRun": "completed",
    "stopRunByError": "stoppedByError",
    "stopRunByExceededMaxSteps": "stoppedByExceededMaxSteps",
    "stopRunByInteractiveTool": "stoppedByInteractiveTool",
    "stopRunByDelegate": "stoppedByDelegate",
    "continueToNextStep": "proceeding",
}


def cuid(rng: random.Random) -> str:
    """A cuid2-looking id: 24 lowercase letters and digits, starting with a letter."""
    return rng.choice(string.ascii_lowercase) + "".join(rng.choices(_ALPHABET, k=23))


def _usage(rng: random.Random, scale: int = 1) -> dict[str, int]:
    inp, out = rng.randint(200, 2000) * scale, rng.randint(20, 400) * scale
    return {
        "inputTokens": inp,
        "outputTokens": out,
        "reasoningTokens": 0,
        "totalTokens": inp + out,
        "cachedInputTokens": 0,
    }


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


_WORDS = tuple(
    [
        "agent",
        "tool",
        "call",
        "result",
        "step",
        "expert",
        "delegate",
        "storage",
        "bucket",
        "event",
        "checkpoint",
        "run",
        "job",
        "read",
        "write",
        "list",
        "parse",
        "render",
        "table",
        "screen",
        "query",
        "answer",
        "file",
        "search",
        "summary",
        "context",
    ]
)


@dataclass
class JobPlan:
    """What to write for one job: its events and checkpoints, and optional job.json."""

    job_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    job: dict[str, Any] | None = None
    run_settings: list[dict[str, Any]] = field(default_factory=list)


class JobBuilder:
    """Builds one job's events step by step, keeping the message history in checkpoints."""

    def __init__(
        self, rng: random.Random, job_id: str, started_at: int, expert: str = "bench-coordinator"
    ) -> None:
        self.rng = rng
        self.plan = JobPlan(job_id)
        self.expert = {"key": expert, "name": expert, "version": "1.0.0"}
        self.run_id = cuid(rng)
        self.clock = started_at
        self.step = 1
        self.messages: list[dict[str, Any]] = [
            {"type": "instructionMessage", "id": cuid(rng), "contents": [_part("be helpful")]},
            {"type": "userMessage", "id": cuid(rng), "contents": [_part(_text(rng, 12))]},
        ]
        self.usage = _usage(rng)

    def tick(self, ms: int | None = None) -> int:
        self.clock += ms if ms is not None else self.rng.randint(1, 40)
        return self.clock

    def event(self, event_type: str, **payload: Any) -> dict[str, Any]:
        event = {
            "type": event_type,
            "id": cuid(self.rng),
            "expertKey": self.expert["key"],
            "timestamp": self.tick(),
            "jobId": self.plan.job_id,
            "runId": self.run_id,
            "stepNumber": self.step,
            **payload,
        }
        self.plan.events.append(event)
        return event

    def checkpoint(self, status: str, **extra: Any) -> dict[str, Any]:
        checkpoint = {
            "id": cuid(self.rng),
            "jobId": self.plan.job_id,
            "runId": self.run_id,
            "status": status,
            "stepNumber": self.step,
            "messages": list(self.messages),
            "expert": self.expert,
            "usage": dict(self.usage),
            **extra,
        }
        return checkpoint

    def start(self) -> None:
        self.event("startRun", initialCheckpoint=self.checkpoint("init"), inputMessages=[])

    def tool_step(self, streaming: int = 0, message_words: int = 20) -> None:
        """One step: optional streamed reasoning, a tool call, its result, next step."""
        rng = self.rng
        if streaming:
            self.event("startStreamingReasoning")
            for _ in range(streaming):
                self.event("streamReasoning", delta=_text(rng, 3))
            self.event("completeStreamingReasoning", text=_text(rng, 8))
        call_id = cuid(rng)
        message = {
            "type": "expertMessage",
            "id": cuid(rng),
            "contents": [
                _part(_text(rng, message_words)),
                {"type": "toolCallPart", "id": cuid(rng), "toolCallId": call_id,
                 "toolName": "readFile", "args": {"path": f"/tmp/{cuid(rng)}.txt"}},
            ],
        }  # fmt: skip
        tool_call = {"id": call_id, "skillName": "@perstack/base", "toolName": "readFile",
                     "args": {"path": "/tmp/x.txt"}}  # fmt: skip
        self.event("callTools", newMessage=message, toolCalls=[tool_call], usage=_usage(rng))
        result = {"id": call_id, "skillName": "@perstack/base", "toolName": "readFile",
                  "result": [_part(_text(rng, message_words))]}  # fmt: skip
        self.event("resolveToolResults", toolResults=[result])
        self.messages.append(message)
        self.messages.append(
            {"type": "toolMessage", "id": cuid(rng),
             "contents": [{"type": "toolResultPart", "id": cuid(rng), "toolCallId": call_id,
                           "toolName": "readFile", "contents": result["result"]}]}
        )  # fmt: skip
        self._add_usage()
        done = self.checkpoint("proceeding")
        step = {"stepNumber": self.step, "newMessages": [message], "usage": _usage(rng)}
        self.step += 1
        following = self.checkpoint("proceeding")
        self.event("continueToNextStep", checkpoint=done, step=step, nextCheckpoint=following)
        self.plan.checkpoints.append(done)

    def finish(self, status: str, *, big_parts: list[dict[str, Any]] | None = None) -> None:
        """End the run with the event that ``status`` implies (nothing for "running")."""
        end_type = END_EVENT[status]
        if end_type is None:
            return
        answer = {"type": "expertMessage", "id": cuid(self.rng),
                  "contents": [_part(_text(self.rng, 30)), *(big_parts or [])]}  # fmt: skip
        self.messages.append(answer)
        self._add_usage()
        extra: dict[str, Any] = {}
        payload: dict[str, Any] = {}
        if end_type == "stopRunByError":
            error = {"name": "APICallError", "message": "rate limited", "statusCode": 429,
                     "isRetryable": True}  # fmt: skip
            extra["error"] = error
            payload["error"] = error
        checkpoint = self.checkpoint(CHECKPOINT_STATUS[end_type], **extra)
        step = {"stepNumber": self.step, "newMessages": [answer], "usage": _usage(self.rng)}
        if end_type == "completeRun":
            self.event(end_type, checkpoint=checkpoint, step=step, text=_text(self.rng, 20),
                       usage=_usage(self.rng))  # fmt: skip
        else:
            self.event(end_type, checkpoint=checkpoint, step=step, **payload)
        self.plan.checkpoints.append(checkpoint)

    def _add_usage(self) -> None:
        for name, value in _usage(self.rng).items():
            self.usage[name] += value

    def job_json(self, status: str) -> dict[str, Any]:
        first = self.plan.events[0]["timestamp"]
        job = {
            "id": self.plan.job_id,
            "status": status,
            "coordinatorExpertKey": self.expert["key"],
            "totalSteps": self.step,
            "maxSteps": 100,
            "usage": dict(self.usage),
            "startedAt": first,
        }
        if status != "running":
            job["finishedAt"] = self.plan.events[-1]["timestamp"]
        return job

    def run_setting(self) -> dict[str, Any]:
        first = self.plan.events[0]["timestamp"]
        return {
            "model": "claude-sonnet-4-5",
            "providerConfig": {"providerName": "anthropic", "apiKey": "sk-ant-bench-secret"},
            "jobId": self.plan.job_id,
            "runId": self.run_id,
            "expertKey": self.expert["key"],
            "input": {"text": "benchmark"},
            "experts": {},
            "maxSteps": 100,
            "startedAt": first,
            "updatedAt": self.plan.events[-1]["timestamp"],
            "perstackApiBaseUrl": "https://api.perstack.ai",
            "env": {"HOME": "/home/bench", "ANTHROPIC_API_KEY": "sk-ant-bench-secret"},
        }


def _part(text: str) -> dict[str, Any]:
    return {"type": "textPart", "id": f"p{zlib.crc32(text.encode()):08x}", "text": text}


_STATUSES = (
    ["completed"] * 60
    + ["stoppedByError"] * 15
    + ["running"] * 10
    + ["stoppedByMaxSteps"] * 5
    + ["stoppedByInteractiveTool"] * 10
)


def many_jobs(count: int, seed: int) -> Iterator[JobPlan]:
    """``count`` jobs of mixed sizes and statuses; about 10% with job.json + run-setting.json.

    Most jobs are small (2 steps); a few are larger. Ids are random, so listing order is
    not time order (as with real cuid2 ids): sorting newest-first needs per-job facts.
    """
    rng = random.Random(seed)
    for index in range(count):
        job_rng = random.Random(rng.getrandbits(64))
        started_at = BASE_TIME + index * 60_000 + job_rng.randint(0, 30_000)
        builder = JobBuilder(job_rng, cuid(job_rng), started_at)
        size = job_rng.random()
        steps = 1 if size < 0.6 else 3 if size < 0.95 else 10
        status = job_rng.choice(_STATUSES)
        builder.start()
        for _ in range(steps):
            builder.tool_step()
        builder.finish(status)
        if job_rng.random() < 0.1:
            builder.plan.job = builder.job_json(status)
            builder.plan.run_settings.append(builder.run_setting())
        yield builder.plan


def long_run(job_id_seed: int, events: int) -> JobPlan:
    """One job with one run of about ``events`` events (mostly streamed reasoning deltas)."""
    rng = random.Random(job_id_seed)
    builder = JobBuilder(rng, cuid(rng), BASE_TIME + 10**9, expert="bench-long-run")
    builder.start()
    steps = max(1, events // 100)
    per_step = max(0, events // steps - 6)
    while len(builder.plan.events) < events - 6 - per_step:
        builder.tool_step(streaming=per_step, message_words=5)
    remaining = events - len(builder.plan.events) - 1
    builder.event("startStreamingRunResult")
    for _ in range(max(0, remaining - 2)):
        builder.event("streamRunResult", delta=_text(rng, 3))
    builder.finish("completed")
    return builder.plan


def big_checkpoint(seed: int, megabytes: float) -> JobPlan:
    """A job whose last checkpoint is about ``megabytes`` MB: long messages + inline base64."""
    rng = random.Random(seed)
    builder = JobBuilder(rng, cuid(rng), BASE_TIME + 2 * 10**9, expert="bench-big-checkpoint")
    builder.start()
    target = int(megabytes * 1_000_000)
    inline = target // 4  # a quarter of the bytes in a few large inline parts
    text_budget = target - inline
    # Long messages: ~8 KB of text each, added through ordinary tool steps.
    while len(builder.messages) * 8_000 < text_budget:
        builder.tool_step(message_words=1_200)
    blob = base64.b64encode(rng.randbytes(inline // 4)).decode()  # 3 parts of inline/3 chars
    parts = [
        {"type": "imageInlinePart", "id": cuid(rng), "encodedData": blob, "mimeType": "image/png"}
        for _ in range(3)
    ]
    # Keep the data set lean: the first step and the end (every continueToNextStep in
    # between would hold two near-20 MB checkpoints).
    builder.plan.checkpoints = builder.plan.checkpoints[:1]
    builder.plan.events = builder.plan.events[:4]
    builder.finish("completed", big_parts=parts)
    return builder.plan
