"""Jobs and runs as users see them, rebuilt from whatever the storage holds.

The Perstack CLI writes no job.json and no run-setting.json, so a job's status, steps,
expert and times are derived from the key tree (event names carry timestamp, step and
type) plus as few reads as possible. Where job.json exists it wins.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .models import (
    CHECKPOINT_EVENT_TYPES,
    Checkpoint,
    EventMeta,
    Job,
    RunEvent,
    RunSetting,
    Unreadable,
    Usage,
)
from .storage.base import KeyValueStorage, NotFoundError

# The last event of a run tells how the run ended.
_RUN_END_STATUS = {
    "completeRun": "completed",
    "stopRunByError": "stoppedByError",
    "stopRunByExceededMaxSteps": "stoppedByMaxSteps",
    "stopRunByInteractiveTool": "stoppedByInteractiveTool",
    "stopRunByDelegate": "stoppedByDelegate",
}


@dataclass
class RunSummary:
    """One run of a job, from its key listing (and its setting where one exists)."""

    job_id: str
    run_id: str
    events: list[EventMeta] = field(default_factory=list)
    expert: str = ""
    setting: RunSetting | Unreadable | None = None
    #: how the run ended ("completed", "stoppedBy...") or "running"
    status: str = "running"
    #: the run that delegated to this one, and the tool call that did it
    delegated_by_run: str | None = None
    delegated_by_tool_call: str | None = None
    #: nesting depth under the coordinator's runs (0 for the coordinator)
    depth: int = 0

    @property
    def started_at(self) -> int | None:
        return self.events[0].timestamp if self.events else None

    @property
    def finished_at(self) -> int | None:
        return self.events[-1].timestamp if self.events and self.status != "running" else None

    @property
    def steps(self) -> tuple[int, int] | None:
        if not self.events:
            return None
        numbers = [e.stepNumber for e in self.events]
        return min(numbers), max(numbers)


@dataclass
class JobSummary:
    """A job as the jobs list shows it; ``source`` says where the facts came from."""

    id: str
    status: str = "unknown"  # a Job status, "unreadable", or "unknown" (empty job)
    expert: str = ""
    started_at: int | None = None
    finished_at: int | None = None
    steps: int = 0
    max_steps: int | None = None
    usage: Usage = field(default_factory=Usage)
    source: str = "events"  # "job.json" | "events" | "empty"
    problem: str | None = None  # why the job is unreadable / incomplete

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def job_status_from_runs(runs: list[RunSummary]) -> str:
    """A job's status from how its latest run ended (a delegating run is still running)."""
    if not runs:
        return "unknown"
    latest = max(runs, key=lambda r: r.events[-1].timestamp if r.events else 0)
    status = latest.status
    return "running" if status in ("running", "stoppedByDelegate") else status


class Catalog:
    """Jobs, runs, events and checkpoints of one storage, derived lazily and cached.

    Browsing never writes: every method here only lists and reads.
    """

    def __init__(self, storage: KeyValueStorage) -> None:
        self.storage = storage
        self._jobs: dict[str, JobSummary] = {}

    async def job_ids(self) -> list[str]:
        """Every job id, from one delimiter listing (no reads)."""
        return await self.storage.list_job_ids()

    def cached_job(self, job_id: str) -> JobSummary | None:
        return self._jobs.get(job_id)

    async def job(self, job_id: str, *, refresh: bool = False) -> JobSummary:
        """A job's summary: job.json where it exists, else derived from its runs' events."""
        if not refresh and job_id in self._jobs and self._jobs[job_id].status != "running":
            return self._jobs[job_id]
        summary = await self._summarize(job_id)
        self._jobs[job_id] = summary
        return summary

    async def jobs(self, job_ids: list[str], *, concurrency: int = 16) -> list[JobSummary]:
        """Summaries of several jobs, fetched concurrently, in the order given."""
        limit = asyncio.Semaphore(concurrency)

        async def one(job_id: str) -> JobSummary:
            async with limit:
                return await self.job(job_id)

        return list(await asyncio.gather(*(one(j) for j in job_ids)))

    async def _summarize(self, job_id: str) -> JobSummary:
        stored = await self.storage.retrieve_job(job_id)
        if isinstance(stored, Job):
            return JobSummary(
                id=job_id,
                status=stored.status,
                expert=stored.coordinatorExpertKey,
                started_at=stored.startedAt,
                finished_at=stored.finishedAt,
                steps=stored.totalSteps,
                max_steps=stored.maxSteps,
                usage=stored.usage,
                source="job.json",
            )
        runs = await self.runs(job_id)
        summary = JobSummary(id=job_id, source="events" if runs else "empty")
        if isinstance(stored, Unreadable):
            summary.problem = f"{stored.key}: {stored.reason}"
        events = sorted((e for r in runs for e in r.events), key=lambda e: e.timestamp)
        if not events:
            summary.status = "unreadable" if summary.problem else "unknown"
            return summary
        summary.status = job_status_from_runs(runs)
        summary.started_at = events[0].timestamp
        summary.finished_at = events[-1].timestamp if summary.status != "running" else None
        summary.steps = max(e.stepNumber for e in events)
        summary.expert = runs[0].expert
        last = await self.last_checkpoint(job_id, runs)
        if isinstance(last, Checkpoint):
            summary.usage = last.usage
        return summary

    async def last_checkpoint(
        self, job_id: str, runs: list[RunSummary] | None = None
    ) -> Checkpoint | Unreadable | None:
        """The checkpoint of the latest event that carries one (its usage is job-wide)."""
        runs = runs if runs is not None else await self.runs(job_id)
        carriers = sorted(
            (e for r in runs for e in r.events if e.type in CHECKPOINT_EVENT_TYPES),
            key=lambda e: e.timestamp,
        )
        for meta in reversed(carriers):
            event = await self.storage.read_event(meta.key)
            checkpoint = getattr(event, "checkpoint", None)
            if isinstance(checkpoint, Checkpoint):
                return checkpoint
        return None

    async def runs(self, job_id: str) -> list[RunSummary]:
        """A job's runs in the order they started, nested by delegation (``depth``)."""
        run_ids = await self.storage.list_run_ids(job_id)
        listings = await asyncio.gather(
            *(self.storage.list_event_metas(job_id, r) for r in run_ids)
        )
        runs = [
            RunSummary(job_id=job_id, run_id=run_id, events=events)
            for run_id, events in zip(run_ids, listings, strict=True)
        ]
        for run in runs:
            if run.events:
                run.status = _RUN_END_STATUS.get(run.events[-1].type, "running")
        await asyncio.gather(*(self._describe_run(run) for run in runs))
        runs.sort(key=lambda r: (r.started_at is None, r.started_at or 0, r.run_id))
        _nest(runs)
        return runs

    async def _describe_run(self, run: RunSummary) -> None:
        """Fill a run's expert and delegation link with one small read."""
        try:
            run.setting = await self.storage.read_run_setting(run.job_id, run.run_id)
        except NotFoundError:
            run.setting = None
        if isinstance(run.setting, RunSetting):
            run.expert = run.setting.expertKey
        # startRun carries the initial checkpoint, whose delegatedBy links the caller; where
        # it is missing or unreadable, any later checkpoint of the run says the same.
        candidates = run.events[:1] + [e for e in run.events if e.type in CHECKPOINT_EVENT_TYPES]
        for meta in candidates:
            event = await self.storage.read_event(meta.key)
            if not isinstance(event, RunEvent):
                continue
            run.expert = run.expert or event.expertKey
            checkpoint = getattr(event, "initialCheckpoint", None) or getattr(
                event, "checkpoint", None
            )
            if isinstance(checkpoint, Checkpoint):
                if checkpoint.delegatedBy:
                    run.delegated_by_run = checkpoint.delegatedBy.runId
                    run.delegated_by_tool_call = checkpoint.delegatedBy.toolCallId
                return

    async def job_events(self, job_id: str) -> list[EventMeta]:
        """Every event of every run of a job, by timestamp (runs Perstack's log misses included)."""
        runs = await self.runs(job_id)
        return sorted((e for r in runs for e in r.events), key=lambda e: (e.timestamp, e.key))

    async def checkpoints(self, job_id: str) -> list[Checkpoint | Unreadable]:
        """A job's checkpoints by step (unreadable ones last)."""
        return await self.storage.get_checkpoints_by_job_id(job_id)

    async def latest_job_id(self) -> str | None:
        """The job that started last (by its start time, not by directory mtime)."""
        ids = await self.job_ids()
        if not ids:
            return None
        summaries = await self.jobs(ids)
        return max(summaries, key=lambda s: s.started_at or 0).id


def _nest(runs: list[RunSummary]) -> None:
    """Set each run's depth: a delegate sits one level under the run that called it."""
    by_id = {r.run_id: r for r in runs}
    for run in runs:  # runs are in start order, so a caller's depth is known first
        caller = by_id.get(run.delegated_by_run or "")
        run.depth = caller.depth + 1 if caller is not None and caller is not run else 0
