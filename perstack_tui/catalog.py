"""Jobs and runs as users see them, rebuilt from whatever the storage holds.

The Perstack CLI writes no job.json and no run-setting.json, so a job's status, steps,
expert and times are derived from the key tree (event names carry timestamp, step and
type) plus as few reads as possible. Where job.json exists it wins.

Costs (requests to the storage), for a job without job.json:

- :meth:`Catalog.job`: one listing of the job's files (:class:`~.storage.tree.JobTree`;
  one request on S3), then two reads: one small event of the first run (its expert) and
  the latest event that carries a checkpoint (the job-wide usage; it embeds the full
  message history, so it is the one read that grows with the job). No read at all where
  the job index (:mod:`perstack_tui.index`) holds a summary of exactly those files.
- :meth:`Catalog.runs`: the listings, plus per run a read attempt of run-setting.json and
  a read of its startRun event (the delegation link; a resumed run's startRun embeds the
  history).
- :meth:`Catalog.checkpoint_refs`: the listings only.
- :meth:`Catalog.scan_jobs`: every job at once from ONE recursive listing of ``jobs/``
  (S3: a page per 1,000 keys) plus a read of each job.json that exists; no per-job request.
  Status, times, steps and runs come from event names; expert and usage are read later by
  :meth:`Catalog.job` for the jobs a user looks at (the two reads above, no listing), or
  come from the index for the jobs whose files did not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import chain
from operator import itemgetter
from typing import Any

from . import keys
from .index import JobIndex
from .keys import RunFacts
from .models import (
    CHECKPOINT_EVENT_TYPES,
    NO_USAGE,
    STREAMING_EVENT_TYPES,
    Checkpoint,
    EventMeta,
    Job,
    RunEvent,
    RunSetting,
    Unreadable,
    Usage,
    parse_model,
)
from .storage.base import (
    EventList,
    KeyValueStorage,
    NotFoundError,
    StorageError,
    ascending,
    by_time,
    event_metas,
    event_metas_by_time,
    paused_gc,
)
from .storage.tree import JobTree

# The last event of a run tells how the run ended.
_RUN_END_STATUS = {
    "completeRun": "completed",
    "stopRunByError": "stoppedByError",
    "stopRunByExceededMaxSteps": "stoppedByMaxSteps",
    "stopRunByInteractiveTool": "stoppedByInteractiveTool",
    "stopRunByDelegate": "stoppedByDelegate",
    # callDelegate hands the run over: stopRunByDelegate follows within milliseconds, and
    # where that file is missing (lost to a name collision, or not kept) the run has stopped.
    "callDelegate": "stoppedByDelegate",
}

#: the scan derives this many summaries between two turns of the event loop (~10 ms)
_SCAN_SLICE = 1000

# Events that never embed the message history: the cheapest read to learn a run's expert.
_SMALL_EVENT_TYPES = STREAMING_EVENT_TYPES | {
    "callTools",
    "callDelegate",
    "callInteractiveTool",
    "resolveToolResults",
    "attemptCompletion",
    "finishToolCall",
    "finishAllToolCalls",
    "retry",
}


@dataclass
class RunSummary:
    """One run of a job, from its key listing (and its setting where one exists)."""

    job_id: str
    run_id: str
    events: EventList = field(default_factory=EventList)
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
        """The lowest and highest step of its events (``None`` without events)."""
        return self.events.steps


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
    usage: Usage = NO_USAGE
    source: str = "events"  # "job.json" | "events" | "empty"
    problem: str | None = None  # why the job is unreadable / incomplete
    #: from :meth:`Catalog.scan_jobs`: expert and usage not read yet (``Catalog.job`` does)
    partial: bool = False
    #: False for a job known only from the persistent index, not listed yet: only its
    #: start (which never moves) is to be trusted, and shown
    checked: bool = True

    @property
    def complete(self) -> bool:
        """Checked, with expert and usage read: all that the job's files tell."""
        return self.checked and not self.partial

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True)
class CheckpointRef:
    """A checkpoint known from a listing alone: the event that carries it.

    ``run_id`` is the run the event is stored under (from its key). A run continued with
    ``--continue-job`` stores checkpoints whose own ``runId`` names the previous run; the
    ref still belongs to the run whose folder holds it.
    """

    step: int
    run_id: str
    key: str  # the carrying event's key
    event_type: str
    timestamp: int


def run_status(last_event_type: str | None) -> str:
    """How a run ended, from the type of its last event ("completed", "stoppedBy..."),
    or ``"running"`` while that event does not end it (or the run has no events yet)."""
    return _RUN_END_STATUS.get(last_event_type or "", "running")


def checkpoint_refs_of(runs: Sequence[RunSummary]) -> list[CheckpointRef]:
    """One ref per checkpoint-carrying event of ``runs`` (already listed), by step."""
    refs = [
        CheckpointRef(e.stepNumber, run.run_id, e.key, e.type, e.timestamp)
        for run in runs
        for e in run.events
        if e.type in CHECKPOINT_EVENT_TYPES
    ]
    return sorted(refs, key=lambda r: (r.step, r.timestamp, r.key))


def checkpoint_ref_for_step(refs: Sequence[CheckpointRef], step: int) -> CheckpointRef | None:
    """The checkpoint of ``step``: the one written when it ended, else the latest before it."""
    best = None
    for ref in refs:  # refs are by step
        if ref.step > step:
            break
        best = ref
    return best


def adjacent_checkpoint_ref(
    refs: Sequence[CheckpointRef], step: int, direction: int
) -> CheckpointRef | None:
    """The checkpoint before (``direction < 0``) or after (``> 0``) ``step``'s, if any."""
    if direction < 0:
        before = [r for r in refs if r.step < step]
        return before[-1] if before else None
    return next((r for r in refs if r.step > step), None)


class Catalog:
    """Jobs, runs, events and checkpoints of one storage, derived lazily and cached.

    Browsing never writes: every method here only lists and reads.
    """

    def __init__(self, storage: KeyValueStorage, index: JobIndex | None = None) -> None:
        self.storage = storage
        #: what an earlier look at this storage learnt (see :mod:`perstack_tui.index`)
        self.index = index
        self._jobs: dict[str, JobSummary] = {}
        #: the fingerprint of the listing each summary in ``_jobs`` was derived from
        self._fingerprints: dict[str, str] = {}
        #: trees of partial summaries, as the scan listed them (the fill needs no listing)
        self._scanned: dict[str, JobTree] = {}
        self._saving = asyncio.Lock()

    async def job_ids(self) -> list[str]:
        """Every job id, from one delimiter listing (no reads)."""
        return await self.storage.list_job_ids()

    def cached_job(self, job_id: str) -> JobSummary | None:
        return self._jobs.get(job_id)

    async def job(self, job_id: str, *, refresh: bool = False) -> JobSummary:
        """A job's summary: job.json where it exists, else derived from its runs' events.

        A finished job's partial summary from :meth:`scan_jobs` is completed with two reads
        (expert, usage) and no listing; otherwise the job's files are listed (one request
        on S3) and, where the index has a summary for exactly those files, nothing is read.
        """
        cached = self._jobs.get(job_id)
        scanned = self._scanned.pop(job_id, None)
        if not refresh and cached is not None and cached.checked and cached.status != "running":
            if _final(cached):
                return cached
            if scanned is not None:
                summary = replace(cached, partial=False)
                await self._fill(summary, _runs_of_tree(scanned))
                self._keep(scanned, summary)
                return summary
        tree = await self.storage.list_job_tree(job_id)
        summary = self._known(tree)
        if summary is None:
            stored = (await self._read_job_files([job_id]))[job_id] if tree.has_job_file else None
            summary = _summary_of_tree(tree, stored)
            if summary.partial:
                summary.partial = False
                await self._fill(summary, _runs_of_tree(tree))
        self._keep(tree, summary)
        return summary

    async def jobs(self, job_ids: list[str], *, concurrency: int = 16) -> list[JobSummary]:
        """Summaries of several jobs, fetched concurrently, in the order given."""
        limit = asyncio.Semaphore(concurrency)

        async def one(job_id: str) -> JobSummary:
            async with limit:
                return await self.job(job_id)

        return list(await asyncio.gather(*(one(j) for j in job_ids)))

    async def _fill(self, summary: JobSummary, runs: list[RunSummary]) -> None:
        """Read what names cannot tell: the expert (one small event), the usage (the last
        checkpoint). Nothing to read for a job without events."""
        first_run = next((r for r in runs if r.events), None)
        if first_run is None:
            return
        summary.expert, last = await asyncio.gather(
            self._run_expert(first_run), self.last_checkpoint(summary.id, runs)
        )
        if isinstance(last, Checkpoint):
            summary.usage = last.usage

    def _known(self, tree: JobTree) -> JobSummary | None:
        """The complete summary of a job whose files are exactly those of ``tree`` (from
        this session, else from the index), or ``None``. A running job's too: the same
        files give the same summary (a running job that moves on adds files)."""
        cached = self._jobs.get(tree.job_id)
        if (
            cached is not None
            and cached.complete
            and self._fingerprints.get(tree.job_id) == tree.fingerprint
        ):
            return cached
        if self.index is None or not self.index.knows(tree.job_id):
            return None  # the fingerprint is not worked out for nothing
        stored = self.index.summary(tree.job_id, tree.fingerprint)
        return _summary_from_index(tree.job_id, stored) if stored is not None else None

    def _keep(self, tree: JobTree, summary: JobSummary) -> None:
        """Cache a summary with the fingerprint of the listing it came from (and index it)."""
        self._jobs[summary.id] = summary
        self._fingerprints[summary.id] = tree.fingerprint
        if self.index is not None:
            complete = _summary_to_index(summary) if summary.complete else None
            self.index.record(summary.id, summary.started_at, tree.fingerprint, complete)

    def prime_from_index(self, job_ids: Iterable[str]) -> list[str]:
        """Before any job is listed: an unchecked summary (``checked=False``, its start
        only) for each of ``job_ids`` the index knows, so rows can be newest first at once.
        Returns the ids the index does not know (new since it was written)."""
        if self.index is None or not len(self.index):
            return list(job_ids)
        unknown = []
        for job_id in job_ids:
            if job_id in self._jobs:
                continue
            if not self.index.knows(job_id):
                unknown.append(job_id)
                continue
            start = self.index.start(job_id)
            self._jobs[job_id] = JobSummary(
                id=job_id, started_at=start, partial=True, checked=False
            )
        return unknown

    async def save_index(self) -> None:
        """Write the index (if it changed) in a thread; the catalog goes on meanwhile. One
        save at a time: a save asked for during another waits for it, then writes only
        what changed since."""
        if self.index is None:
            return
        async with self._saving:
            await asyncio.to_thread(self.index.write, self.index.snapshot())

    async def scan_jobs(
        self,
        job_ids: Iterable[str] | None = None,
        *,
        on_starts: Callable[[list[str]], None] | None = None,
    ) -> list[JobSummary]:
        """Every job's summary, newest first, from one recursive listing of ``jobs/``.

        Event names give each job's status, start, end, steps and runs; the job.json files
        the listing shows are read (concurrently) and win, as in :meth:`job`. A job whose
        files did not change since it was summarized (this session, or an earlier one
        through the index) keeps that summary, with nothing read. Expert and usage of
        the other jobs need reads: their summaries are ``partial`` until :meth:`job`
        completes them. ``job_ids``: the ids already listed, if any (a filesystem can hold
        empty job folders, which a recursive listing cannot show).

        ``on_starts`` is called with every job id as soon as every job's start is known,
        before the rest of the summaries is derived: each job without a summary yet then
        has an unchecked one (``checked=False``: its start only, which never moves), so
        that rows can be put newest first at once. The summaries follow a slice at a time,
        with the event loop free in between.
        """
        with paused_gc():  # 100,000s of keys and tuples, no cycles
            return await self._scan_jobs(job_ids, on_starts)

    async def _scan_jobs(
        self, job_ids: Iterable[str] | None, on_starts: Callable[[list[str]], None] | None
    ) -> list[JobSummary]:
        trees, ids = await self._scan(job_ids)
        known = {j: s for j in ids if (s := self._known(trees[j])) is not None}
        job_files = [j for j in ids if trees[j].has_job_file and j not in known]
        stored_jobs = await self._read_job_files(job_files)
        if on_starts is not None:
            for job_id in ids:
                if job_id not in self._jobs:
                    start = _start_of(trees[job_id], stored_jobs.get(job_id))
                    self._jobs[job_id] = JobSummary(
                        id=job_id, started_at=start, partial=True, checked=False
                    )
            on_starts(ids)
        summaries: list[JobSummary] = []
        for first in range(0, len(ids), _SCAN_SLICE):
            await asyncio.sleep(0)  # the event loop draws and answers between slices
            for job_id in ids[first : first + _SCAN_SLICE]:
                tree = trees[job_id]
                # known again: a job completed (by :meth:`job`) meanwhile
                summary = (
                    known.get(job_id)
                    or self._known(tree)
                    or _summary_of_tree(tree, stored_jobs.get(job_id))
                )
                if summary.partial:
                    self._scanned[job_id] = tree
                self._keep(tree, summary)
                summaries.append(summary)
        if self.index is not None:
            self.index.keep_only(set(ids))
        summaries.sort(key=newest_first)
        return summaries

    async def _scan(self, job_ids: Iterable[str] | None) -> tuple[dict[str, JobTree], list[str]]:
        """The files of every job, grouped, and every job id (listed or given)."""
        if job_ids is None:
            trees, listed = await asyncio.gather(self.storage.list_job_trees(), self.job_ids())
        else:
            listed = list(job_ids)
            trees = await self.storage.list_job_trees(listed)
        ids = sorted(set(listed).union(trees))
        for job_id in ids:
            if job_id not in trees:
                trees[job_id] = JobTree(job_id)
        return trees, ids

    async def _read_job_files(self, job_ids: list[str]) -> dict[str, Job | Unreadable | None]:
        """The job.json of each job (``None`` where it vanished since the listing)."""
        job_keys = [keys.job_key(j) for j in job_ids]
        found: dict[str, Job | Unreadable | None] = {}
        for job_id, key, raw in zip(
            job_ids, job_keys, await self.storage.read_many(job_keys), strict=True
        ):
            if isinstance(raw, NotFoundError):
                found[job_id] = None
            elif isinstance(raw, StorageError):
                found[job_id] = Unreadable(key=key, reason=str(raw))
            else:
                found[job_id] = parse_model(Job, raw, key)
        return found

    async def _run_expert(self, run: RunSummary) -> str:
        """A run's expert from one small event (falling back to larger ones if unreadable)."""
        small = [e for e in run.events if e.type in _SMALL_EVENT_TYPES]
        for meta in [*small, *(e for e in run.events if e.type not in _SMALL_EVENT_TYPES)]:
            event = await self.storage.read_event(meta.key)
            if isinstance(event, RunEvent) and event.expertKey:
                return event.expertKey
        return ""

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
        """A job's runs in the order they started, nested by delegation (``depth``).

        A resumed caller (a new run after its delegate finished) sits at its caller's depth,
        after the delegate.
        """
        runs = await self._list_runs(job_id)
        await asyncio.gather(*(self._describe_run(run) for run in runs))
        _nest(runs)
        return runs

    async def _list_runs(self, job_id: str) -> list[RunSummary]:
        """Runs from listings alone (events, status), in start order; no reads."""
        run_ids = await self.storage.list_run_ids(job_id)
        listings = await asyncio.gather(
            *(self.storage.list_event_metas(job_id, r) for r in run_ids)
        )
        return _runs_of_listings(job_id, dict(zip(run_ids, listings, strict=True)))

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
        # (walked lazily: startRun, the first, answers for almost every run)
        events = run.events
        candidates = chain(
            (events[0],) if events else (),  # an end: no sort (or pick) of unsorted names
            (e for e in events if e.type in CHECKPOINT_EVENT_TYPES),
        )
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
        return events_by_time(await self.runs(job_id))

    async def checkpoints(self, job_id: str) -> list[Checkpoint | Unreadable]:
        """A job's checkpoint files by step (unreadable ones last)."""
        return await self.storage.get_checkpoints_by_job_id(job_id)

    async def checkpoint_refs(
        self, job_id: str, runs: list[RunSummary] | None = None
    ) -> list[CheckpointRef]:
        """One ref per checkpoint-carrying event, by step, from key listings alone."""
        runs = runs if runs is not None else await self._list_runs(job_id)
        return checkpoint_refs_of(runs)

    async def read_checkpoint(self, ref: CheckpointRef) -> Checkpoint | Unreadable:
        """The checkpoint a ref points at (read from its event; cached by the storage)."""
        event = await self.storage.read_event(ref.key)
        if isinstance(event, Unreadable):
            return event
        checkpoint = getattr(event, "checkpoint", None)
        if isinstance(checkpoint, Checkpoint):
            return checkpoint
        return Unreadable(key=ref.key, reason=f"a {event.type} event carries no checkpoint")

    async def latest_job_id(self, *, with_run: str | None = None) -> str | None:
        """The job that started last (by its first event, not by directory mtime); with
        ``with_run``, the last of the jobs that have a run of that id.

        Costs one recursive listing of ``jobs/``, plus a read of job.json for the jobs that
        have no events.
        """
        tree, ids = await self._scan(None)
        if with_run is not None:
            ids = [j for j in ids if with_run in tree[j].run_keys]
        if not ids:
            return None
        starts = {job_id: _first_timestamp(tree[job_id]) for job_id in ids}
        no_events = [j for j in ids if starts[j] is None and tree[j].has_job_file]
        for job_id, stored in (await self._read_job_files(no_events)).items():
            if isinstance(stored, Job):
                starts[job_id] = stored.startedAt
        return max((starts[j] or 0, j) for j in ids)[1]


def _final(summary: JobSummary) -> bool:
    """A complete summary of a finished job: what the storage holds for it cannot change."""
    return summary.complete and summary.status != "running"


def newest_first(summary: JobSummary) -> tuple[bool, int, str]:
    """Sort key of the jobs list: newest start first, jobs without a start last, then id."""
    return summary.started_at is None, -(summary.started_at or 0), summary.id


def _runs_of_tree(tree: JobTree) -> list[RunSummary]:
    """The runs as :meth:`Catalog.runs` lists them (before their reads)."""
    return _runs_of_listings(
        tree.job_id,
        {run_id: EventList(event_metas(k)) for run_id, k in tree.run_keys.items()},
    )


def _summary_of_tree(tree: JobTree, stored: Job | Unreadable | None) -> JobSummary:
    """A job's summary from its listing: job.json where it was read, else what event names
    tell (``partial``: expert and usage need reads), else an empty job.

    The rules, without building a meta per event (the scan's cost is per key): a run's
    last event is its latest by (time, key), runs are in start order, and the latest run
    (the first of equals) gives the job's status; a run that delegated and waits counts as
    running.
    """
    if isinstance(stored, Job):
        return _summary_of_job_file(tree.job_id, stored)
    problem = f"{stored.key}: {stored.reason}" if isinstance(stored, Unreadable) else None
    runs: list[tuple[bool, int, str, int, str]] = []  # (no events, start, id, end, status)
    steps = 0
    for run_id in tree.run_keys:
        facts = _facts_of_run(tree, run_id)
        if facts is None:
            runs.append((True, 0, run_id, 0, "running"))
            continue
        first, last, last_type, run_steps = facts
        steps = max(steps, run_steps)
        runs.append((False, first, run_id, last, run_status(last_type)))
    if all(no_events for no_events, *_ in runs):
        return JobSummary(
            id=tree.job_id,
            status="unreadable" if problem else "unknown",
            source="events" if runs else "empty",
            problem=problem,
        )
    runs.sort()
    latest = max(runs, key=lambda r: r[3])
    status = "running" if latest[4] in ("running", "stoppedByDelegate") else latest[4]
    return JobSummary(
        id=tree.job_id,
        status=status,
        steps=steps,
        partial=True,
        problem=problem,
        started_at=min(r[1] for r in runs if not r[0]),
        finished_at=None if status == "running" else max(r[3] for r in runs),
    )


def _run_facts(run_keys: list[str]) -> RunFacts | None:
    """The facts of a run folder's keys (one folder's, sorted), by
    :func:`keys.parse_event_name`; ``None`` without events.

    The scan does this for every run of every job: a folder of canonical names (the
    Perstack CLI's) is read off its first and last key and one regex
    (:func:`keys.canonical_run_facts`); any other takes :func:`event_metas_by_time`.
    """
    if not run_keys:
        return None
    start = run_keys[0].rfind("/") + 1
    facts = keys.canonical_run_facts(list(map(itemgetter(slice(start, None)), run_keys)))
    if facts is not None and ascending(run_keys):
        return facts
    metas = event_metas_by_time(run_keys)
    if not metas:
        return None
    first, last = metas[0], metas[-1]
    return RunFacts(first.timestamp, last.timestamp, last.type, max(m.stepNumber for m in metas))


def _start_of(tree: JobTree, stored: Job | Unreadable | None) -> int | None:
    """The start :func:`_summary_of_tree` gives the job, without the rest of its summary."""
    return stored.startedAt if isinstance(stored, Job) else _first_timestamp(tree)


def _first_timestamp(tree: JobTree) -> int | None:
    """When the job's first event was written (by time, whatever the names' digits)."""
    firsts = [facts.first for run_id in tree.run_keys if (facts := _facts_of_run(tree, run_id))]
    return min(firsts, default=None)


def _facts_of_run(tree: JobTree, run_id: str) -> RunFacts | None:
    """:func:`_run_facts` of one of the tree's runs, kept in the tree (the listing may have
    read them off already; the scan asks twice: for the start, then for the summary)."""
    facts = tree.run_facts.get(run_id)
    if facts is None:
        facts = _run_facts(tree.run_keys[run_id])
        if facts is not None:
            tree.run_facts[run_id] = facts
    return facts


#: the fields of a summary the index keeps, and their types (``usage`` as its JSON)
_INDEXED: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "expert": str,
    "started_at": (int, type(None)),
    "finished_at": (int, type(None)),
    "steps": int,
    "max_steps": (int, type(None)),
    "source": str,
}


def _summary_to_index(summary: JobSummary) -> dict[str, Any]:
    entry: dict[str, Any] = {name: getattr(summary, name) for name in _INDEXED}
    entry["usage"] = summary.usage.model_dump(mode="json")
    if summary.problem:
        entry["problem"] = summary.problem
    return entry


def _summary_from_index(job_id: str, entry: dict[str, Any]) -> JobSummary | None:
    """A summary the index kept; ``None`` if the entry does not hold one (a damaged file)."""
    if not all(isinstance(entry.get(name), kind) for name, kind in _INDEXED.items()):
        return None
    if not isinstance(entry.get("problem"), (str, type(None))):
        return None
    try:
        summary = JobSummary(
            id=job_id,
            usage=Usage.model_validate(entry.get("usage") or {}),
            problem=entry.get("problem"),
            **{name: entry[name] for name in _INDEXED},
        )
    except (KeyError, TypeError, ValueError):
        return None
    return summary


def _runs_of_listings(job_id: str, listings: dict[str, EventList]) -> list[RunSummary]:
    """Runs from their event listings (by time), with their status, in start order."""
    runs = [
        RunSummary(job_id=job_id, run_id=run_id, events=events)
        for run_id, events in listings.items()
    ]
    for run in runs:
        if run.events:
            run.status = run_status(run.events[-1].type)
    runs.sort(key=lambda r: (r.started_at is None, r.started_at or 0, r.run_id))
    return runs


def events_by_time(runs: list[RunSummary]) -> list[EventMeta]:
    """Every event of the runs, by timestamp, then key."""
    return sorted(chain.from_iterable(r.events for r in runs), key=by_time)


def _summary_of_job_file(job_id: str, stored: Job) -> JobSummary:
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


def _nest(runs: list[RunSummary]) -> None:
    """Set each run's depth: a delegate sits one level under the run that called it."""
    by_id = {r.run_id: r for r in runs}
    for run in runs:  # runs are in start order, so a caller's depth is known first
        caller = by_id.get(run.delegated_by_run or "")
        run.depth = caller.depth + 1 if caller is not None and caller is not run else 0
