"""Demo data: realistic Perstack jobs, written through any :class:`KeyValueStorage`.

Everything here mirrors what the Perstack runtime really persists (see
``tests/fixtures/perstack-real/cli-local-run/stdout-perstack-run.ndjson``): the same event
types in the same order with the same fields, job-wide step numbering, one checkpoint per
step embedding the full message history, and no job.json / run-setting.json except for the
one job written "programmatically".

Reusable pieces:

- :class:`JobBuilder` builds one job event by event into :class:`DemoObject` s
  (key, bytes, write time); the scenario functions (:data:`SCENARIOS`) drive it.
- :func:`build_job` builds one job of a scenario; :func:`build_demo` every demo job;
  :func:`write_demo` writes them with the demo marker.
- :func:`write_job` / :func:`write_objects` write built objects at once, :func:`iter_writes`
  one at a time (yielding in between); :class:`LiveWriter` writes jobs one object at a time
  at a realistic pace, forever (the live tail's feed).

Deterministic: the same ``seed`` and ``anchor_ms`` give byte-identical output.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import string
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import keys
from .storage.base import KeyValueStorage, NotFoundError, dump_compact, dump_pretty

#: Marker object written beside ``jobs/`` so a re-run knows the storage is a demo.
MARKER_KEY = ".perstack-tui-demo"
DEFAULT_SEED = 7

_ID_ALPHABET = string.ascii_lowercase + string.digits
_HOUR = 3_600_000
_DAY = 24 * _HOUR

PERSTACK_PROMPT = (
    "You are Perstack, an AI expert that tackles tasks requested by users by utilizing all "
    "available tools.\n\nIMPORTANT:\nBased on the user's initial message, you must determine "
    "what needs to be done.\nYou must iterate through hypothesis and verification to fulfill "
    "the task.\nYOU MUST CONTINUE TO CALL TOOLS UNTIL THE TASK IS COMPLETE.\n\n"
    "Environment information:\n- Current working directory is /home/dev/agent-workspace\n\n"
    "---\n(The following describes the objective, steps, rules, etc. regarding your expert "
    "task.)\n\n"
)


def new_id(rng: random.Random) -> str:
    """A cuid2-like id: 24 lowercase letters and digits, starting with a letter."""
    return rng.choice(string.ascii_lowercase) + "".join(rng.choices(_ID_ALPHABET, k=23))


@dataclass(frozen=True, slots=True)
class DemoObject:
    """One object to store: its key, its bytes, and when (ms since the epoch) it is written."""

    key: str
    data: bytes
    at: int


@dataclass
class DemoJob:
    """A built job: its id, what it shows, and its objects in write order."""

    job_id: str
    title: str
    objects: list[DemoObject]


@dataclass(frozen=True)
class Timing:
    """Gaps between events in ms: ``normal`` for most events, ``stream`` for streaming deltas."""

    normal: tuple[int, int] = (8, 60)
    stream: tuple[int, int] = (1, 6)
    think: tuple[int, int] = (400, 4000)  # a model generating before callTools

    @classmethod
    def live(cls, pace: float) -> Timing:
        """Wall-clock gaps around ``pace`` seconds (streaming deltas ~10x faster)."""
        ms = max(1, int(pace * 1000))
        return cls(
            normal=(ms // 2, ms * 3 // 2),
            stream=(max(1, ms // 12), max(2, ms // 5)),
            think=(ms, ms * 2),
        )


@dataclass(frozen=True)
class ToolPlan:
    """A tool call the demo expert makes and the text its result holds."""

    name: str
    args: dict[str, Any]
    result: str
    skill: str = "@perstack/base"
    #: extra result parts (images, files) after the text
    parts: tuple[dict[str, Any], ...] = ()


def tool_error(message: str) -> str:
    """A tool result text as @perstack/base writes a failure."""
    return json.dumps({"error": "Error", "message": message}, separators=(",", ":"))


@dataclass
class RunState:
    """A run being built: its id, expert, current checkpoint and full message history."""

    run_id: str
    expert: dict[str, str]
    checkpoint_id: str
    #: the runId its checkpoints carry (a --continue-job run keeps the previous run's)
    checkpoint_run_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    delegated_by: dict[str, Any] | None = None
    delegate_to: list[dict[str, Any]] | None = None
    max_steps: int | None = None


@dataclass
class Delegation:
    """A pending delegation: who called whom, with which tool call and checkpoint."""

    caller: RunState
    expert: dict[str, str]
    tool_call_id: str
    query: str
    checkpoint_id: str


def _expert(key: str) -> dict[str, str]:
    return {"key": key, "name": key, "version": "1.0.0"}


def _zero_usage() -> dict[str, int]:
    return {
        "inputTokens": 0,
        "outputTokens": 0,
        "reasoningTokens": 0,
        "totalTokens": 0,
        "cachedInputTokens": 0,
    }


def _add_usage(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {name: a[name] + b[name] for name in a}


def _chunks(rng: random.Random, text: str) -> list[str]:
    """Split text into streaming deltas of a few words each."""
    words = text.split(" ")
    deltas, i = [], 0
    while i < len(words):
        n = rng.randint(1, 3)
        deltas.append(" ".join(words[i : i + n]) + (" " if i + n < len(words) else ""))
        i += n
    return deltas


class JobBuilder:
    """Builds one job the way the Perstack runtime persists it, event by event.

    Each ``emit`` appends a :class:`DemoObject`; checkpoint-carrying events also store
    their checkpoint under ``jobs/{job}/checkpoints/{id}.json``. ``step`` is job-wide.
    """

    def __init__(
        self,
        rng: random.Random,
        start_ms: int,
        *,
        job_id: str | None = None,
        timing: Timing | None = None,
        context_window: int = 200_000,
    ) -> None:
        self.rng = rng
        self.job_id = job_id or new_id(rng)
        self.clock = start_ms
        self.started_at = start_ms
        self.timing = timing or Timing()
        self.context_window = context_window
        self.step = 0
        self.usage = _zero_usage()
        self.objects: list[DemoObject] = []
        self._step: dict[str, Any] = {}
        self._step_run: RunState | None = None

    # --- low level --------------------------------------------------------------------

    def id(self) -> str:
        return new_id(self.rng)

    def tick(self, kind: str = "normal") -> int:
        low, high = getattr(self.timing, kind)
        self.clock += self.rng.randint(low, high)
        return self.clock

    def put(self, key: str, data: bytes, at: int | None = None) -> None:
        self.objects.append(DemoObject(key, data, self.clock if at is None else at))

    def emit(self, run: RunState, event_type: str, kind: str = "normal", **payload: Any) -> dict:
        """Write one event of ``run`` at the next tick; returns the event as written."""
        timestamp = self.tick(kind)
        event = {
            "type": event_type,
            "id": self.id(),
            "expertKey": run.expert["key"],
            "timestamp": timestamp,
            "jobId": self.job_id,
            "runId": run.run_id,
            "stepNumber": self.step,
            **payload,
        }
        checkpoint = payload.get("checkpoint")
        if isinstance(checkpoint, dict):
            self.put(keys.checkpoint_key(self.job_id, checkpoint["id"]), dump_compact(checkpoint))
        key = keys.event_key(self.job_id, run.run_id, timestamp, self.step, event_type)
        self.put(key, dump_compact(event))
        return event

    def text(self, text: str) -> dict[str, Any]:
        return {"type": "textPart", "text": text, "id": self.id()}

    def message(self, kind: str, parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {"type": kind, "contents": parts, "id": self.id(), **extra}

    def tool_call(
        self, name: str, args: Any, skill: str = "@perstack/base"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A new tool call: as the event's ``toolCalls`` entry and as a message part."""
        call_id = f"toolu_{self.id()}"
        call = {"id": call_id, "skillName": skill, "toolName": name, "args": args}
        part = {"type": "toolCallPart", "toolCallId": call_id, "toolName": name, "args": args}
        return call, {**part, "id": self.id()}

    def tool_result_part(self, result: dict[str, Any]) -> dict[str, Any]:
        """The message part of a tool result (the tool message the model reads next)."""
        return {
            "type": "toolResultPart",
            "toolCallId": result["id"],
            "toolName": result["toolName"],
            # the runtime copies the parts with new ids
            "contents": [{**part, "id": self.id()} for part in result["result"]],
            "id": self.id(),
        }

    def checkpoint(self, run: RunState, status: str, **extra: Any) -> dict[str, Any]:
        """The run's checkpoint at the current step (messages: the full history so far)."""
        checkpoint: dict[str, Any] = {
            "id": run.checkpoint_id,
            "jobId": self.job_id,
            "runId": run.checkpoint_run_id,
            "expert": run.expert,
            "stepNumber": self.step,
            "status": status,
            "messages": list(run.messages),
            "usage": dict(self.usage),
            "contextWindow": self.context_window,
        }
        if run.messages:
            checkpoint["contextWindowUsage"] = round(self._tokens(run) / self.context_window, 6)
        if run.delegated_by:
            checkpoint["delegatedBy"] = run.delegated_by
        if run.delegate_to:
            checkpoint["delegateTo"] = run.delegate_to
        checkpoint.update(extra)
        if status != "init":
            checkpoint.setdefault("retryCount", 0)
        return checkpoint

    def _begin_step(self, run: RunState, input_messages: list[dict[str, Any]]) -> None:
        self._step_run = run
        self._step = {
            "stepNumber": self.step,
            "inputMessages": input_messages,
            "newMessages": [],
            "usage": _zero_usage(),
            "startedAt": self.clock,
        }

    def _end_step(self, **extra: Any) -> dict[str, Any]:
        step = {**self._step, **extra, "finishedAt": self.clock}
        return step

    def _tokens(self, run: RunState) -> int:
        """Rough input tokens of a run's history (inline files count as a capped amount)."""
        return min(len(json.dumps(run.messages)) // 4, self.context_window * 9 // 10)

    def _generation_usage(self, run: RunState, output: int) -> dict[str, int]:
        history = self._tokens(run)
        cached = history * 3 // 4 if self.step > 1 else 0
        usage = {
            "inputTokens": history,
            "outputTokens": output,
            "reasoningTokens": output // 3,
            "totalTokens": history + output,
            "cachedInputTokens": cached,
        }
        self.usage = _add_usage(self.usage, usage)
        self._step["usage"] = _add_usage(self._step["usage"], usage)
        return usage

    # --- runs -------------------------------------------------------------------------

    def start_run(
        self,
        expert_key: str,
        query: str,
        *,
        instruction: str,
        delegation: Delegation | None = None,
        user_parts: Iterable[dict[str, Any]] = (),
        max_steps: int | None = None,
    ) -> RunState:
        """A new run at the next step: startRun, then the first step's startGeneration."""
        self.step += 1
        run_id = self.id()
        run = RunState(run_id, _expert(expert_key), self.id(), run_id, max_steps=max_steps)
        if delegation is not None:
            run.delegated_by = {
                "expert": delegation.caller.expert,
                "toolCallId": delegation.tool_call_id,
                "toolName": delegation.expert["key"],
                "checkpointId": delegation.checkpoint_id,
                "runId": delegation.caller.run_id,
            }
        inputs = [
            self.message(
                "instructionMessage", [self.text(PERSTACK_PROMPT + instruction)], cache=True
            ),
            self.message("userMessage", [self.text(query), *user_parts]),
        ]
        self._begin_step(run, inputs)
        initial = self.checkpoint(run, "init")
        self.emit(run, "startRun", initialCheckpoint=initial, inputMessages=inputs)
        run.messages = list(inputs)
        self.emit(run, "startGeneration", messages=run.messages)
        return run

    def unknown_event(self, run: RunState) -> None:
        """An event of a type newer than this tool knows (tolerant parsing must show it)."""
        self.emit(
            run,
            "startSkillSandbox",
            skillName="@perstack/base",
            sandbox={"image": "ghcr.io/perstack/sandbox:0.3", "network": "none"},
        )

    def reason(self, run: RunState, text: str, *, race: bool = False) -> None:
        """Streamed reasoning: start, a few deltas, complete."""
        self._stream(run, "Reasoning", text, race=race)

    def _stream(self, run: RunState, what: str, text: str, *, race: bool = False) -> None:
        self.emit(run, f"startStreaming{what}", kind="think")
        deltas = _chunks(self.rng, text)
        for i, delta in enumerate(deltas):
            if race and i == len(deltas) - 1 and len(deltas) > 1:
                self._racing_delta(delta)
            else:
                self.emit(run, f"stream{what}", kind="stream", delta=delta)
        self.emit(run, f"completeStreaming{what}", kind="stream", text=text)

    def _racing_delta(self, delta: str) -> None:
        """A delta in the same ms as the previous one: both share a file name and the racing
        writes leave the shorter one followed by the longer one's tail (invalid JSON, as in
        the real fixture)."""
        older = self.objects[-1]
        event = json.loads(older.data)
        event["id"], event["delta"] = self.id(), delta
        newer = dump_compact(event)
        if len(newer) == len(older.data):
            event["delta"] = delta + "."
            newer = dump_compact(event)
        short, long = sorted((newer, older.data), key=len)
        self.objects[-1] = DemoObject(older.key, short + long[len(short) :], older.at)

    def call_tools(
        self, run: RunState, calls: list[ToolPlan], *, thinking: str | None = None
    ) -> None:
        """callTools, resolveToolResults, finishToolCall (parallel calls share one step)."""
        parts: list[dict[str, Any]] = []
        if thinking:
            parts.append({"type": "thinkingPart", "thinking": thinking, "id": self.id()})
        tool_calls = []
        for plan in calls:
            call, part = self.tool_call(plan.name, plan.args, plan.skill)
            tool_calls.append(call)
            parts.append(part)
        new_message = self.message("expertMessage", parts)
        usage = self._generation_usage(run, self.rng.randint(40, 400))
        self.emit(
            run,
            "callTools",
            kind="think",
            newMessage=new_message,
            toolCalls=tool_calls,
            usage=usage,
        )
        results = [
            {
                "id": call["id"],
                "skillName": plan.skill,
                "toolName": plan.name,
                "result": [self.text(plan.result), *plan.parts],
            }
            for call, plan in zip(tool_calls, calls, strict=True)
        ]
        self.emit(run, "resolveToolResults", toolResults=results)
        tool_message = self.message(
            "toolMessage", [self.tool_result_part(result) for result in results]
        )
        self.emit(run, "finishToolCall", newMessages=[tool_message])
        run.messages += [new_message, tool_message]
        self._step["newMessages"] += [new_message, tool_message]
        self._step.setdefault("toolCalls", []).extend(tool_calls)
        self._step.setdefault("toolResults", []).extend(results)

    def next_step(self, run: RunState) -> bool:
        """End the step: continueToNextStep, or stopRunByExceededMaxSteps at the run's limit.

        Returns False when the run stopped.
        """
        if run.max_steps is not None and self.step >= run.max_steps:
            checkpoint = self.checkpoint(run, "stoppedByExceededMaxSteps")
            self.emit(
                run, "stopRunByExceededMaxSteps", checkpoint=checkpoint, step=self._end_step()
            )
            return False
        checkpoint = self.checkpoint(run, "proceeding")
        step = self._end_step()
        run.checkpoint_id = self.id()
        self.step += 1
        following = self.checkpoint(run, "proceeding")
        self.step -= 1
        self.emit(
            run, "continueToNextStep", checkpoint=checkpoint, step=step, nextCheckpoint=following
        )
        self.step += 1
        self._begin_step(run, [])
        self.emit(run, "startGeneration", messages=run.messages)
        return True

    def complete(self, run: RunState, text: str, *, reasoning: str, race: bool = False) -> None:
        """attemptCompletion, streamed reasoning and result, completeRun."""
        call, call_part = self.tool_call("attemptCompletion", {})
        call_message = self.message("expertMessage", [call_part])
        usage = self._generation_usage(run, self.rng.randint(20, 80))
        self.emit(
            run, "callTools", kind="think", newMessage=call_message, toolCalls=[call], usage=usage
        )
        result = {k: call[k] for k in ("id", "skillName", "toolName")}
        result["result"] = [self.text("{}")]
        self.emit(run, "attemptCompletion", toolResult=result)
        self.reason(run, reasoning)
        self._stream(run, "RunResult", text, race=race)
        result_message = self.message("toolMessage", [self.tool_result_part(result)])
        final = self.message(
            "expertMessage",
            [{"type": "thinkingPart", "thinking": reasoning, "id": self.id()}, self.text(text)],
        )
        final_usage = self._generation_usage(run, len(text) // 4 + 10)
        new = [call_message, result_message, final]
        run.messages += new
        self._step["newMessages"] += new
        self._step.setdefault("toolCalls", []).append(call)
        self._step.setdefault("toolResults", []).append(result)
        self.emit(
            run,
            "completeRun",
            checkpoint=self.checkpoint(run, "completed"),
            step=self._end_step(),
            text=text,
            usage=final_usage,
        )

    def delegate(self, run: RunState, expert_key: str, query: str) -> Delegation:
        """callTools + callDelegate + stopRunByDelegate: the run waits for a helper."""
        expert = _expert(expert_key)
        call, part = self.tool_call(expert_key, {"query": query}, skill=expert_key)
        call_id = call["id"]
        new_message = self.message("expertMessage", [part])
        usage = self._generation_usage(run, self.rng.randint(30, 120))
        for event_type in ("callTools", "callDelegate"):
            self.emit(
                run,
                event_type,
                kind="think" if event_type == "callTools" else "normal",
                newMessage=new_message,
                toolCalls=[call],
                usage=usage,
            )
        run.messages.append(new_message)
        self._step["newMessages"].append(new_message)
        run.delegate_to = [
            {"expert": expert, "toolCallId": call_id, "toolName": expert_key, "query": query}
        ]
        checkpoint = self.checkpoint(run, "stoppedByDelegate", partialToolResults=[])
        step = self._end_step(toolCalls=[call], partialToolResults=[], pendingToolCalls=[call])
        self.emit(run, "stopRunByDelegate", checkpoint=checkpoint, step=step)
        return Delegation(run, expert, call_id, query, run.checkpoint_id)

    def resume(self, delegation: Delegation, result_text: str) -> RunState:
        """The caller's new run after its delegate finished (Perstack starts a new run)."""
        caller = delegation.caller
        self.step += 1
        run_id = self.id()
        run = RunState(
            run_id,
            caller.expert,
            self.id(),
            run_id,
            messages=list(caller.messages),
            delegate_to=caller.delegate_to,
            max_steps=caller.max_steps,
        )
        self.clock += 8  # the CLI restarts the runtime
        self._begin_step(run, [])
        tool_name = delegation.expert["key"]
        result = {
            "id": delegation.tool_call_id,
            "skillName": f"delegate/{tool_name}",
            "toolName": tool_name,
            "result": [self.text(result_text)],
        }
        initial = self.checkpoint(run, "stoppedByDelegate", partialToolResults=[result])
        self.emit(run, "startRun", initialCheckpoint=initial, inputMessages=[])
        return self._finish_all(run, result)

    def _finish_all(self, run: RunState, result: dict[str, Any]) -> RunState:
        tool_message = self.message("toolMessage", [self.tool_result_part(result)])
        self.emit(run, "finishAllToolCalls", newMessages=[tool_message])
        run.messages.append(tool_message)
        self._step["newMessages"].append(tool_message)
        self._step["toolResults"] = [result]
        return run

    def stop_by_error(
        self, run: RunState, name: str, message: str, status_code: int, retryable: bool
    ) -> None:
        """A provider error ends the run (after one retry when the error is retryable)."""
        error = {"name": name, "message": message, "statusCode": status_code}
        error["isRetryable"] = retryable
        if retryable:
            self.emit(
                run, "retry", kind="think", reason=message, newMessages=[], usage=_zero_usage()
            )
        self.tick("think")
        checkpoint = self.checkpoint(run, "stoppedByError")
        self.emit(run, "stopRunByError", checkpoint=checkpoint, step=self._end_step(), error=error)

    def stop_for_user(self, run: RunState, plan: ToolPlan) -> dict[str, Any]:
        """callTools + callInteractiveTool + stopRunByInteractiveTool: waits for the user."""
        call, part = self.tool_call(plan.name, plan.args, plan.skill)
        new_message = self.message("expertMessage", [part])
        usage = self._generation_usage(run, self.rng.randint(30, 120))
        self.emit(
            run, "callTools", kind="think", newMessage=new_message, toolCalls=[call], usage=usage
        )
        self.emit(run, "callInteractiveTool", newMessage=new_message, toolCall=call, usage=usage)
        run.messages.append(new_message)
        self._step["newMessages"].append(new_message)
        checkpoint = self.checkpoint(run, "stoppedByInteractiveTool", pendingToolCalls=[call])
        step = self._end_step(toolCalls=[call], pendingToolCalls=[call])
        self.emit(run, "stopRunByInteractiveTool", checkpoint=checkpoint, step=step)
        return call

    def continue_job(self, run: RunState, pending: dict[str, Any], answer: str) -> RunState:
        """``perstack run --continue-job`` with the user's answer: a new run directory whose
        checkpoints keep the previous run's runId (as the real CLI does)."""
        self.step += 1
        run_id = self.id()
        continued = RunState(
            run_id,
            run.expert,
            self.id(),
            run.checkpoint_run_id,
            messages=list(run.messages),
            max_steps=run.max_steps,
        )
        self.clock += self.rng.randint(2 * _HOUR // 60, _HOUR)  # the user took a while
        self._begin_step(continued, [])
        result = {k: pending[k] for k in ("id", "skillName", "toolName")}
        result["result"] = [self.text(answer)]
        initial = self.checkpoint(
            continued, "stoppedByInteractiveTool", partialToolResults=[result]
        )
        self.emit(continued, "startRun", initialCheckpoint=initial, inputMessages=[])
        return self._finish_all(continued, result)

    # --- programmatic use -------------------------------------------------------------

    def run_setting(self, run: RunState, query: str, **extra: Any) -> None:
        """A run-setting.json (only programmatic use writes one); env holds fake secrets."""
        setting = {
            "model": "claude-sonnet-4-5",
            "providerConfig": {
                "providerName": "anthropic",
                "apiKey": "sk-ant-demo-" + self.id(),
            },
            "jobId": self.job_id,
            "runId": run.run_id,
            "expertKey": run.expert["key"],
            "input": {"text": query},
            "experts": {run.expert["key"]: {**run.expert, "instruction": "Review code."}},
            "reasoningBudget": "medium",
            "maxSteps": run.max_steps or 50,
            "maxRetries": 5,
            "timeout": 300000,
            "startedAt": self.clock,
            "updatedAt": self.clock,
            "perstackApiBaseUrl": "https://api.perstack.ai",
            "perstackApiKey": "psk_demo_" + self.id(),
            "env": {
                "ANTHROPIC_API_KEY": "sk-ant-demo-" + self.id(),
                "GITHUB_TOKEN": "ghp_demo" + self.id(),
                "DATABASE_URL": "postgres://app:hunter2@db.internal:5432/app",
                "HOME": "/home/dev",
                "PATH": "/usr/local/bin:/usr/bin:/bin",
            },
            **extra,
        }
        self.put(keys.run_setting_key(self.job_id, run.run_id), dump_compact(setting))

    def job_file(self, coordinator: str, status: str, max_steps: int | None = None) -> None:
        """A job.json as Perstack's programmatic API writes it (pretty-printed)."""
        job = {
            "id": self.job_id,
            "coordinatorExpertKey": coordinator,
            "status": status,
            "totalSteps": self.step,
            "startedAt": self.started_at,
            "maxSteps": max_steps,
            "usage": self.usage,
            "finishedAt": self.clock if status != "running" else None,
        }
        job = {name: value for name, value in job.items() if value is not None}
        self.put(keys.job_key(self.job_id), dump_pretty(job))


# --- scenarios ------------------------------------------------------------------------

Scenario = Callable[[JobBuilder], str]


def plain_job(b: JobBuilder) -> str:
    run = b.start_run(
        "tech-writer",
        "Write a CHANGELOG entry for the 0.4.0 release.",
        instruction="Write clear, short release notes from the git history.",
    )
    b.reason(run, "I should read the recent commits before writing anything.")
    b.call_tools(
        run,
        [ToolPlan("exec", {"command": "git", "args": ["log", "--oneline", "-20"]}, _GIT_LOG)],
        thinking="I should read the recent commits before writing anything.",
    )
    b.next_step(run)
    b.call_tools(
        run,
        [ToolPlan("readTextFile", {"path": "CHANGELOG.md"}, _CHANGELOG)],
        thinking="Now the current changelog, to match its style.",
    )
    b.next_step(run)
    b.call_tools(
        run,
        [ToolPlan("editTextFile", {"path": "CHANGELOG.md", "newText": _ENTRY}, '{"ok":true}')],
    )
    b.next_step(run)
    b.complete(
        run,
        "Added the 0.4.0 entry to CHANGELOG.md: live tail, S3 support and two fixes.",
        reasoning="The entry is written and matches the existing style.",
    )
    return "plain completion"


def delegation_job(b: JobBuilder, *, finish: bool = True, race: bool = True) -> str:
    """A coordinator delegates to a helper and resumes in a new run (the real sequence)."""
    coordinator = b.start_run(
        "research-lead",
        "Compare the three vector databases we shortlisted and recommend one.",
        instruction="Coordinate research. Delegate focused questions to web-researcher.",
    )
    b.reason(coordinator, "Let me check what we already know first.")
    b.call_tools(
        coordinator,
        [
            ToolPlan("healthCheck", {}, _HEALTH),
            ToolPlan("readTextFile", {"path": "shortlist.md"}, _SHORTLIST),
        ],
        thinking="Let me check what we already know first.",
    )
    b.next_step(coordinator)
    query = "Benchmark numbers and licensing for Qdrant, Weaviate and pgvector."
    delegation = b.delegate(coordinator, "web-researcher", query)
    helper = b.start_run(
        "web-researcher",
        query,
        instruction="Research on the web and answer with sources.",
        delegation=delegation,
    )
    b.unknown_event(helper)
    b.reason(helper, "I will search for recent benchmarks and read the license pages.")
    b.call_tools(
        helper,
        [ToolPlan("webSearch", {"query": "qdrant weaviate pgvector benchmark 2026"}, _SEARCH)],
    )
    b.next_step(helper)
    b.call_tools(helper, [ToolPlan("webFetch", {"url": "https://ann-benchmarks.com"}, _BENCH)])
    if not finish:
        b.next_step(helper)
        b.reason(helper, "The license pages are next; Weaviate changed its terms last year.")
        return "delegation in progress"
    b.next_step(helper)
    answer = (
        "Qdrant is fastest at 1M vectors (p99 4 ms), pgvector is simplest to run, "
        "Weaviate sits between; all three are open source (Apache-2.0, BSD, PostgreSQL)."
    )
    b.complete(helper, answer, reasoning="I have numbers and licenses.", race=race)
    resumed = b.resume(delegation, answer)
    b.next_step(resumed)
    b.complete(
        resumed,
        "Recommendation: pgvector now (we already run Postgres), Qdrant if we pass 10M vectors.",
        reasoning="The helper's numbers support a simple answer.",
    )
    extras = "corrupt event file, unknown event type" if race else "unknown event type"
    return f"delegation to a helper and back ({extras})"


def parallel_tools_job(b: JobBuilder) -> str:
    run = b.start_run(
        "bug-hunter",
        "The nightly build fails on macOS. Find out why.",
        instruction="Investigate build failures. Read logs and configs, then explain the cause.",
    )
    b.reason(run, "Three files can tell me: the CI log, the workflow, and the build config.")
    b.call_tools(
        run,
        [
            ToolPlan("readTextFile", {"path": "ci/nightly-macos.log"}, _CI_LOG),
            ToolPlan("readTextFile", {"path": ".github/workflows/nightly.yml"}, _WORKFLOW),
            ToolPlan("readTextFile", {"path": "build/config.yaml"}, tool_error(_MISSING)),
        ],
        thinking="Three files can tell me: the CI log, the workflow, and the build config.",
    )
    b.next_step(run)
    b.call_tools(run, [ToolPlan("listDirectory", {"path": "build"}, _LISTING)])
    b.next_step(run)
    b.complete(
        run,
        "The macOS runner image moved to Xcode 17, whose clang rejects -Wno-error=deprecated in "
        "build/config.yml (note: .yml, the workflow reads .yaml). Pin the image or rename.",
        reasoning="The config file name explains both the missing file and the failure.",
    )
    return "parallel tool calls with a tool error"


def provider_error_job(b: JobBuilder) -> str:
    run = b.start_run(
        "data-analyst",
        "Summarize last week's signups by country.",
        instruction="Answer questions about product metrics using SQL.",
    )
    b.call_tools(run, [ToolPlan("sqlQuery", {"sql": _SQL}, _SQL_RESULT, skill="warehouse")])
    b.next_step(run)
    b.stop_by_error(
        run,
        "APICallError",
        "Overloaded: the provider is temporarily unable to serve this request.",
        529,
        True,
    )
    return "provider error (stopRunByError)"


def max_steps_job(b: JobBuilder) -> str:
    run = b.start_run(
        "refactor-bot",
        "Rename UserRecord to Account across the codebase.",
        instruction="Refactor code safely, one file at a time.",
        max_steps=6,
    )
    files = ["models.py", "api.py", "db.py", "views.py", "tests/test_api.py", "cli.py", "jobs.py"]
    for name in files:
        b.call_tools(
            run,
            [ToolPlan("editTextFile", {"path": f"src/{name}", "find": "UserRecord"}, _EDITED)],
        )
        if not b.next_step(run):
            break
    return "max-steps stop (stopRunByExceededMaxSteps)"


def long_job(b: JobBuilder, steps: int = 55) -> str:
    run = b.start_run(
        "test-fixer",
        "Make the flaky integration tests pass reliably.",
        instruction="Fix flaky tests. Run them, read failures, patch, run again.",
    )
    for i in range(1, steps):
        if i % 3 == 1:
            plan = ToolPlan(
                "exec",
                {"command": "pytest", "args": ["-x", f"tests/integration/test_{i:02d}.py"]},
                f"FAILED tests/integration/test_{i:02d}.py::test_sync - TimeoutError after 5s",
            )
        elif i % 3 == 2:
            plan = ToolPlan(
                "readTextFile",
                {"path": f"tests/integration/test_{i - 1:02d}.py"},
                "def test_sync(client):\n    client.start()\n    assert client.wait(timeout=5)\n",
            )
        else:
            plan = ToolPlan(
                "editTextFile",
                {"path": f"tests/integration/test_{i - 2:02d}.py", "newText": "wait_for(...)"},
                '{"ok":true}',
            )
        if i % 10 == 0:
            b.reason(run, f"Pass {i // 10}: the same timeout pattern again, fix it the same way.")
        b.call_tools(run, [plan])
        b.next_step(run)
    b.complete(
        run,
        f"Replaced fixed sleeps with wait_for() in {steps // 3} integration tests; 20 runs green.",
        reasoning="All tests pass twenty times in a row.",
    )
    return f"long job ({steps} steps)"


def programmatic_job(b: JobBuilder) -> str:
    """Written through Perstack's API: job.json and run-setting.json exist (with secrets)."""
    query = "Review the open pull request #482 for security problems."
    run = b.start_run(
        "code-reviewer",
        query,
        instruction="Review code changes for bugs and security issues.",
        max_steps=20,
    )
    b.run_setting(run, query)
    b.call_tools(run, [ToolPlan("exec", {"command": "gh", "args": ["pr", "diff", "482"]}, _DIFF)])
    b.next_step(run)
    b.complete(
        run,
        "One problem: the new /export endpoint builds a path from user input (path traversal). "
        "Use safe_join().",
        reasoning="Only the export handler is risky.",
    )
    b.job_file("code-reviewer", "completed", max_steps=20)
    return "programmatic: job.json and run-setting.json with secrets (masked)"


def interactive_job(b: JobBuilder, *, continued: bool) -> str:
    run = b.start_run(
        "release-manager",
        "Prepare the 2.3 release.",
        instruction="Prepare releases. Ask the user before anything irreversible.",
    )
    b.call_tools(run, [ToolPlan("exec", {"command": "git", "args": ["tag", "--list"]}, _TAGS)])
    b.next_step(run)
    pending = b.stop_for_user(
        run,
        ToolPlan("askUser", {"question": "Tag v2.3.0 from main (a1b2c3d)?"}, "", "interactive"),
    )
    if not continued:
        return "waiting for the user (stopRunByInteractiveTool)"
    resumed = b.continue_job(run, pending, "yes, tag it")
    b.next_step(resumed)
    b.call_tools(resumed, [ToolPlan("exec", {"command": "git", "args": ["tag", "v2.3.0"]}, "")])
    b.next_step(resumed)
    b.complete(resumed, "Tagged v2.3.0 from main.", reasoning="Done as confirmed.")
    return "continued with --continue-job (checkpoints keep the first run's runId)"


def attachments_job(b: JobBuilder) -> str:
    """An inline image and a ~1 MB inline file in the user's message (large payloads)."""
    rng = b.rng
    blob = base64.b64encode(rng.randbytes(768 * 1024)).decode()
    parts = [
        {"type": "imageInlinePart", "encodedData": _png(), "mimeType": "image/png", "id": b.id()},
        {
            "type": "fileInlinePart",
            "encodedData": blob,
            "mimeType": "application/pdf",
            "id": b.id(),
        },
    ]
    run = b.start_run(
        "doc-reader",
        "What does this contract say about termination? The logo is attached too.",
        instruction="Read documents and images the user attaches.",
        user_parts=parts,
    )
    b.complete(
        run,
        "Either side may terminate with 30 days' written notice (section 12.2).",
        reasoning="Section 12 covers termination.",
    )
    return "inline image and a 1 MB inline file"


def _png() -> str:
    """A tiny valid 8x8 PNG (a blue square), base64."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (8).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + bytes([30, 90, 200]) * 8 for _ in range(8))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode()


# name, age of the job's start (ms before the anchor), builder
SCENARIOS: list[tuple[str, int, Scenario]] = [
    ("long", 3 * _DAY + 5 * _HOUR, long_job),
    ("plain", 3 * _DAY + 2 * _HOUR, plain_job),
    ("max-steps", 2 * _DAY + 7 * _HOUR, max_steps_job),
    ("programmatic", 2 * _DAY + 3 * _HOUR, programmatic_job),
    ("provider-error", 2 * _DAY, provider_error_job),
    ("interactive-continued", _DAY + 9 * _HOUR, lambda b: interactive_job(b, continued=True)),
    ("attachments", _DAY + 4 * _HOUR, attachments_job),
    ("parallel-tools", 20 * _HOUR, parallel_tools_job),
    ("interactive-waiting", 9 * _HOUR, lambda b: interactive_job(b, continued=False)),
    ("delegation", 3 * _HOUR, delegation_job),
    ("delegation-running", 20 * 60_000, lambda b: delegation_job(b, finish=False)),
]


def build_demo(seed: int = DEFAULT_SEED, anchor_ms: int | None = None) -> dict[str, DemoJob]:
    """Every demo job by scenario name, started over the days before ``anchor_ms`` (now)."""
    anchor = int(time.time() * 1000) if anchor_ms is None else anchor_ms
    rng = random.Random(seed)
    jobs = {}
    for name, age, scenario in SCENARIOS:
        jobs[name] = build_job(scenario, seed=rng, start_ms=anchor - age)
    return jobs


def build_job(
    scenario: Scenario,
    *,
    seed: int | random.Random = DEFAULT_SEED,
    start_ms: int | None = None,
    job_id: str | None = None,
    timing: Timing | None = None,
) -> DemoJob:
    """One job of ``scenario`` (e.g. :func:`delegation_job`), e.g. for benchmarks and tests.

    ``seed`` may be a shared :class:`random.Random` so that many jobs get distinct ids.
    """
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    start = int(time.time() * 1000) if start_ms is None else start_ms
    builder = JobBuilder(rng, start, job_id=job_id, timing=timing)
    title = scenario(builder)
    return DemoJob(builder.job_id, title, builder.objects)


async def write_job(storage: KeyValueStorage, job: DemoJob) -> int:
    """Write one built job at once; returns the number of objects written."""
    return await write_objects(storage, job.objects)


async def iter_writes(
    storage: KeyValueStorage, objects: Iterable[DemoObject]
) -> AsyncIterator[DemoObject]:
    """Write objects one at a time, yielding after each, so a test can look in between."""
    for item in objects:
        await storage.write_bytes(item.key, item.data)
        yield item


async def write_objects(storage: KeyValueStorage, objects: Iterable[DemoObject]) -> int:
    """Write objects in order (later writes of one key win, as on disk); returns the count."""
    count = 0
    for item in objects:
        await storage.write_bytes(item.key, item.data)
        count += 1
    return count


async def read_marker(storage: KeyValueStorage) -> dict[str, Any] | None:
    """The demo marker of a storage (its seed and anchor), or None if it is no demo."""
    try:
        raw = await storage.read_bytes(MARKER_KEY)
    except NotFoundError:
        return None
    try:
        marker = json.loads(raw)
    except ValueError:
        return {}
    return marker if isinstance(marker, dict) else {}


async def is_empty(storage: KeyValueStorage) -> bool:
    """Whether a storage holds nothing at all (no folders, no objects at its base)."""
    return not await storage.list_prefixes("") and not await storage.list_objects("")


async def write_demo(
    storage: KeyValueStorage, seed: int = DEFAULT_SEED, anchor_ms: int | None = None
) -> dict[str, DemoJob]:
    """Write the demo jobs and the marker. Re-writing a demo reuses its marker's anchor, so
    the same keys are written again instead of duplicates at new timestamps."""
    marker = await read_marker(storage) or {}
    if anchor_ms is None and marker.get("seed") == seed and isinstance(marker.get("anchor"), int):
        anchor_ms = marker["anchor"]
    anchor = int(time.time() * 1000) if anchor_ms is None else anchor_ms
    await storage.write_bytes(MARKER_KEY, json.dumps({"seed": seed, "anchor": anchor}).encode())
    jobs = build_demo(seed, anchor)
    for job in jobs.values():
        await write_objects(storage, job.objects)
    return jobs


# --- live -----------------------------------------------------------------------------


class LiveWriter:
    """Keeps simulated jobs running: writes one object at a time when its time comes.

    Each job is built up front with wall-clock timestamps (``Timing.live(pace)``) and its
    objects are written as plain writes when their time arrives, so a reader may see a
    half-written file. After a job ends the next one starts a few paces later, until
    :meth:`stop` is called (the current write finishes first).
    """

    def __init__(
        self,
        storage: KeyValueStorage,
        *,
        pace: float = 0.6,
        seed: int | None = None,
        on_job_started: Callable[[DemoJob], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.pace = pace
        self.rng = random.Random(seed)
        self.on_job_started = on_job_started
        self.clock = clock
        self.jobs_started = 0
        self.objects_written = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def next_job(self) -> DemoJob:
        """Build the next live job, starting now (mostly delegations, sometimes others)."""
        scenarios: list[Scenario] = [
            lambda b: delegation_job(b, race=False),
            lambda b: delegation_job(b, race=False),
            parallel_tools_job,
            plain_job,
        ]
        return build_job(
            scenarios[self.jobs_started % len(scenarios)],
            seed=self.rng,
            start_ms=int(self.clock() * 1000),
            timing=Timing.live(self.pace),
        )

    async def write_job(self, job: DemoJob) -> bool:
        """Write a job's objects at their times; False if stopped midway."""
        for item in job.objects:
            delay = item.at / 1000 - self.clock()
            if delay > 0 and await self._sleep(delay):
                return False
            await self.storage.write_bytes(item.key, item.data)
            self.objects_written += 1
        return True

    async def run(self, max_jobs: int | None = None) -> None:
        """Start jobs one after another until stopped (or ``max_jobs`` have run)."""
        while not self.stopped and (max_jobs is None or self.jobs_started < max_jobs):
            job = self.next_job()
            self.jobs_started += 1
            if self.on_job_started is not None:
                self.on_job_started(job)
            if not await self.write_job(job):
                return
            if await self._sleep(self.pace * self.rng.uniform(3, 8)):
                return

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; True if stopped."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


# --- texts ----------------------------------------------------------------------------

_GIT_LOG = (
    "9f1c2ab Live tail for S3 storages\n41d0e7c Fix: job list ignored runs without settings\n"
    "c7e21f0 Add R2 support\n0a8b9d1 Fix crash on empty job folders\n5e6f7a8 Bump textual"
)
_CHANGELOG = "# Changelog\n\n## 0.3.0\n- Jobs list with filters\n- `log --json`\n"
_ENTRY = "## 0.4.0\n- Live tail (S3 too)\n- R2 support\n- Fixes: settings-less runs, empty jobs\n"
_HEALTH = json.dumps({"status": "ok", "workspace": "/home/dev/agent-workspace", "uptime": "0s"})
_SHORTLIST = "# Shortlist\n- Qdrant\n- Weaviate\n- pgvector\n\nConstraints: <50 ms p99, OSS.\n"
_SEARCH = json.dumps(
    [
        {"title": "ANN benchmarks 2026", "url": "https://ann-benchmarks.com"},
        {"title": "pgvector 0.9 release notes", "url": "https://github.com/pgvector/pgvector"},
    ]
)
_BENCH = "qdrant p99 4.1 ms @1M, weaviate p99 7.9 ms, pgvector (hnsw) p99 11.2 ms"
_CI_LOG = (
    "clang: error: unknown warning option '-Wno-error=deprecated'\n"
    "make: *** [build/native.o] Error 1\nProcess completed with exit code 2."
)
_WORKFLOW = "jobs:\n  build:\n    runs-on: macos-latest\n    steps:\n      - run: make -C build"
_MISSING = "File build/config.yaml does not exist."
_LISTING = json.dumps({"path": "build", "entries": ["Makefile", "config.yml", "native.c"]})
_SQL = "select country, count(*) from signups where created_at > now() - interval '7 days'"
_SQL_RESULT = json.dumps([["US", 412], ["DE", 133], ["JP", 98], ["BR", 77]])
_EDITED = '{"ok":true,"replacements":3}'
_DIFF = (
    "+@app.get('/export')\n+def export(name: str):\n"
    "+    return send_file(os.path.join(EXPORT_DIR, name))\n"
)
_TAGS = "v2.1.0\nv2.2.0\nv2.2.1"
