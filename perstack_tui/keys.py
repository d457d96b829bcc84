"""The Perstack key layout: every key is built and parsed here, for every backend.

Keys are relative to the storage base (a directory, or a bucket prefix) and always use
``/``. They are byte-compatible with what the Perstack runtime writes and reads::

    jobs/{jobId}/job.json
    jobs/{jobId}/checkpoints/{checkpointId}.json
    jobs/{jobId}/runs/{runId}/run-setting.json
    jobs/{jobId}/runs/{runId}/event-{timestamp}-{stepNumber}-{type}.json
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

JOBS = "jobs/"
JOB_FILE = "job.json"
RUN_SETTING_FILE = "run-setting.json"


class UnsafeIdError(ValueError):
    """An id that would escape its folder (``..``, ``/``, empty)."""


def check_id(value: str, what: str = "id") -> str:
    """Refuse ids that would make a key or a path escape its folder."""
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise UnsafeIdError(f"unsafe {what}: {value!r}")
    return value


def job_prefix(job_id: str) -> str:
    return f"{JOBS}{check_id(job_id, 'job id')}/"


def job_key(job_id: str) -> str:
    return job_prefix(job_id) + JOB_FILE


def checkpoints_prefix(job_id: str) -> str:
    return job_prefix(job_id) + "checkpoints/"


def checkpoint_key(job_id: str, checkpoint_id: str) -> str:
    return checkpoints_prefix(job_id) + check_id(checkpoint_id, "checkpoint id") + ".json"


def runs_prefix(job_id: str) -> str:
    return job_prefix(job_id) + "runs/"


def run_prefix(job_id: str, run_id: str) -> str:
    return runs_prefix(job_id) + check_id(run_id, "run id") + "/"


def run_setting_key(job_id: str, run_id: str) -> str:
    return run_prefix(job_id, run_id) + RUN_SETTING_FILE


def event_name(timestamp: int, step_number: int, event_type: str) -> str:
    return f"event-{timestamp}-{step_number}-{event_type}.json"


def event_key(job_id: str, run_id: str, timestamp: int, step_number: int, event_type: str) -> str:
    return run_prefix(job_id, run_id) + event_name(timestamp, step_number, event_type)


class EventName(NamedTuple):
    # a named tuple: a listing of a large storage parses 100,000s of names
    timestamp: int
    step_number: int
    type: str


def parse_event_name(name: str) -> EventName | None:
    """Parse ``event-{ts}-{step}-{type}.json`` as Perstack does; ``None`` if it does not parse.

    Perstack splits ``name.split(".")[0]`` on ``-``: timestamp is part 1, step part 2, and
    the type is the rest joined with ``-``.
    """
    if not name.startswith("event-"):
        return None
    parts = name.split(".", 1)[0].split("-", 3)  # the 4th part: the rest joined with "-"
    if len(parts) < 4:
        return None
    try:
        timestamp, step = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    return EventName(timestamp, step, parts[3])


class RunFacts(NamedTuple):
    """What a run folder's event names tell without a read."""

    first: int  # timestamp of the first event
    last: int  # timestamp of the last event (the latest by time, then key)
    last_type: str  # type of the last event
    steps: int  # the highest step number


#: where a name in "\n" + names joined with "\n" + "\n" starts "event-" but not with a
#: 13-digit timestamp (so that text order is time order), "-", a step and "-"
_NOT_CANONICAL_START = re.compile(r"\nevent-(?![0-9]{13}-[0-9]+-)")
#: the step of each name in "\n" + canonical names joined with "\n"
_CANONICAL_STEP = re.compile(r"\nevent-[0-9]{13}-([0-9]+)-")


def all_canonical(names: Sequence[str]) -> bool:
    """Whether there is at least one of ``names`` and every one is a canonical event
    name, ``event-{13 digits}-{digits}-{type}.json`` with a type free of ``.``, ``/`` and
    newlines (what the Perstack CLI writes). Sorted, such names are in time order.

    No Python frame and no object per name (~1.5 ms of 10,000): counts of what every name
    holds once (its start, its one "." in its ".json" end) and one search, from one name's
    start to the next, for a start not followed by the numbers.
    """
    text = "\n".join(["", *names, ""])
    count = len(names)
    return (
        count > 0
        and text.count("\n") == count + 1  # no newline within a name
        and text.count("\nevent-") == count
        and text.count(".") == count
        and text.count(".json\n") == count
        and "/" not in text
        and _NOT_CANONICAL_START.search(text) is None
    )


def canonical_step_range(names: Sequence[str]) -> tuple[int, int]:
    """The lowest and highest step of canonical ``names`` (:func:`all_canonical`), as
    :func:`parse_event_name` gives them name by name."""
    steps = _CANONICAL_STEP.findall("\n" + "\n".join(names))
    numbers = list(map(int, set(steps)))  # a run has a few hundred steps at most
    return min(numbers), max(numbers)


def canonical_run_facts(names: Sequence[str]) -> RunFacts | None:
    """The facts of one folder's file names, sorted, if :func:`all_canonical`; ``None``
    for any other. Read off the first and last name and their steps."""
    if not all_canonical(names):
        return None
    first, last = names[0], names[-1]
    last_type = last[: -len(".json")].split("-", 3)[3]
    return RunFacts(int(first[6:19]), int(last[6:19]), last_type, canonical_step_range(names)[1])


KeyKind = Literal["job", "checkpoint", "run-setting", "event", "other"]


@dataclass(frozen=True, slots=True)
class ParsedKey:
    kind: KeyKind
    job_id: str | None = None
    run_id: str | None = None
    checkpoint_id: str | None = None
    event: EventName | None = None


def parse_key(key: str) -> ParsedKey:
    """What a key names: a job file, a checkpoint, a run setting, an event, or something else."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != "jobs":
        return ParsedKey("other")
    job_id = parts[1]
    if len(parts) == 3 and parts[2] == JOB_FILE:
        return ParsedKey("job", job_id)
    if len(parts) == 4 and parts[2] == "checkpoints" and parts[3].endswith(".json"):
        return ParsedKey("checkpoint", job_id, checkpoint_id=parts[3][: -len(".json")])
    if len(parts) == 5 and parts[2] == "runs":
        run_id, name = parts[3], parts[4]
        if name == RUN_SETTING_FILE:
            return ParsedKey("run-setting", job_id, run_id)
        event = parse_event_name(name)
        if event is not None:
            return ParsedKey("event", job_id, run_id, event=event)
    return ParsedKey("other", job_id)
