"""Live tail: a job's new runs and events, and new jobs, found by incremental listing.

Each poll of a job costs one delimiter listing of its runs plus, per run still running, one
listing that starts after that run's cursor (ListObjectsV2 ``StartAfter`` on S3): event keys
of a run sort by their 13-digit millisecond timestamp, so the listing returns only recent
keys. The cost of a poll therefore does not grow with the number of events already seen,
and neither does the follower's memory: it keeps a cursor per run and the keys of a short
look-back window. A run that ended (Perstack resumes and continues runs in new folders) is
listed only now and then.

The look-back is there because writes land slightly out of order (Perstack stores events
without waiting for each other, and S3 PUTs race): a run's listing resumes a little before
its newest key (``lookback_ms`` before it, or at the newest key listed ``settle`` seconds
ago, whichever is later), and keys already taken are skipped.

A file that does not parse yet (read while still being written) is kept pending and read
again on the next polls; it becomes :class:`~perstack_tui.models.Unreadable` only if it stays
bad. Events after a pending one wait for it, so events come out once each, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Literal

from . import keys
from .models import Checkpoint, EventMeta, RunEvent, Unreadable
from .storage.base import KeyValueStorage, StorageError

FollowState = Literal["live", "reconnecting", "idle"]

_timestamp = attrgetter("timestamp")

#: events after which Perstack writes nothing more into that run's folder (a resumed or
#: continued run gets a new folder)
_RUN_END_TYPES = frozenset(
    {
        "completeRun",
        "stopRunByError",
        "stopRunByExceededMaxSteps",
        "stopRunByInteractiveTool",
        "stopRunByDelegate",
    }
)
#: a run that ended is listed again only every this many polls (a safety net)
_ENDED_RUN_SWEEP = 30

#: events that end a run for good (a delegate's completeRun hands back to its caller instead)
_JOB_END_TYPES = frozenset(
    {"completeRun", "stopRunByError", "stopRunByExceededMaxSteps", "stopRunByInteractiveTool"}
)


@dataclass
class FollowUpdate:
    """What one poll found: runs and events not reported before, and the follower's state.

    ``state`` is ``"live"`` while the job may still write, ``"idle"`` once its last event
    ended it (a completed or stopped coordinator run; it turns ``"live"`` again if the job
    is continued), ``"reconnecting"`` while the storage fails (``error`` says why).
    """

    new_runs: list[str]
    new_events: list[RunEvent | Unreadable]
    state: FollowState
    error: str | None = None
    #: the key each of ``new_events`` was read from (events do not carry their key)
    event_keys: list[str] = field(default_factory=list)

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """The checkpoints the new events carry (Perstack stores one per such event)."""
        found = []
        for event in self.new_events:
            checkpoint = getattr(event, "checkpoint", None)
            if isinstance(checkpoint, Checkpoint):
                found.append(checkpoint)
        return found

    @property
    def is_empty(self) -> bool:
        return not self.new_runs and not self.new_events


def job_has_ended(last_event: RunEvent | Unreadable | None) -> bool:
    """Whether a job whose latest event is ``last_event`` has stopped writing.

    A run that completed or stopped ends the job unless it is a delegate that completed:
    then its caller continues in a new run.
    """
    if not isinstance(last_event, RunEvent) or last_event.type not in _JOB_END_TYPES:
        return False
    checkpoint = getattr(last_event, "checkpoint", None)
    delegated = isinstance(checkpoint, Checkpoint) and checkpoint.delegatedBy is not None
    return not (last_event.type == "completeRun" and delegated)


@dataclass
class _Cursor:
    """Where a run's listing resumes, and the keys taken since then.

    A listing resumes at a millisecond ``floor``: no new key can sort before it. It is
    the later of two bounds, so that one burst of old history or one long-settled key
    does not make every poll list it again: ``lookback_ms`` before the newest event
    taken, and the newest event taken at least ``settle`` seconds ago (a racing write
    lands within that time of the events written after it).
    """

    floor: int | None = None
    newest_ts: int | None = None
    newest_type: str = ""
    #: since when (monotonic) the run's newest event is one that ends it
    ended_since: float | None = None
    #: keys at or after ``floor``: key -> (timestamp, when it was first listed)
    recent: dict[str, tuple[int, float]] = field(default_factory=dict)

    def start_after(self, prefix: str) -> str | None:
        # "event-{ts}" sorts just before every key of that millisecond.
        return None if self.floor is None else f"{prefix}event-{self.floor}"

    def has_taken(self, key: str, name: keys.EventName) -> bool:
        # Below the floor means taken and forgotten (a listing by name can return such
        # keys when timestamps differ in digit count, as in tests and hand-made data).
        return key in self.recent or (self.floor is not None and name.timestamp < self.floor)

    def take(self, key: str, timestamp: int, event_type: str, now: float) -> None:
        self.recent[key] = (timestamp, now)
        if self.newest_ts is None or timestamp >= self.newest_ts:
            self.newest_ts, self.newest_type = timestamp, event_type

    def ended(self, settle: float, now: float) -> bool:
        """Whether the run ended at least ``settle`` seconds ago (no need to list it each poll)."""
        return self.ended_since is not None and now - self.ended_since >= settle

    def advance(self, lookback_ms: int, settle: float, now: float) -> None:
        """Move the floor up and forget the keys below it (memory stays bounded)."""
        if self.newest_ts is None:
            return
        if self.newest_type not in _RUN_END_TYPES:
            self.ended_since = None
        elif self.ended_since is None:
            self.ended_since = now
        settled = max(
            (ts for ts, seen in self.recent.values() if now - seen >= settle), default=None
        )
        floor = self.newest_ts - lookback_ms
        if settled is not None:
            floor = max(floor, settled)
        if self.floor is None or floor > self.floor:
            self.floor = floor
            self.recent = {k: v for k, v in self.recent.items() if v[0] >= floor}


@dataclass
class _Pending:
    """An event file that did not parse yet."""

    key: str
    timestamp: int
    modified: float
    attempts: int = 0
    first_seen: float = field(default_factory=time.monotonic)


class JobFollower:
    """Follows one job: each :meth:`poll` returns only the runs and events new since the last.

    ``seen`` holds the events the caller has already shown, by run (each run's in time
    order, as its listing gives them): they are not reported again and the follower resumes
    after them. Only each run's look-back window of them is kept, so a run of any length
    costs the same. Without them, the first poll reports every existing run and event.
    """

    def __init__(
        self,
        storage: KeyValueStorage,
        job_id: str,
        *,
        interval: float = 1.0,
        seen: Mapping[str, Sequence[EventMeta]] | None = None,
        lookback_ms: int = 3000,
        settle: float = 2.0,
        pending_attempts: int = 3,
        pending_timeout: float = 2.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 5.0,
    ) -> None:
        self.storage = storage
        self.job_id = job_id
        self.interval = interval
        self.lookback_ms = lookback_ms
        self.settle = settle
        self.pending_attempts = pending_attempts
        self.pending_timeout = pending_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.runs: list[str] = []  # known runs, in the order they were found
        self.state: FollowState = "live"
        self.polls = 0  # successful polls so far
        self._cursors: dict[str, _Cursor] = {}
        self._pending: dict[str, _Pending] = {}
        # read, but waiting behind a pending event: ((timestamp, key), event)
        self._held: list[tuple[tuple[int, str], RunEvent | Unreadable]] = []
        self._last: tuple[int, str] | None = None  # newest event taken: (timestamp, key)
        self._last_event: RunEvent | Unreadable | None = None
        self._last_event_unknown = False  # the newest event came from seen, unread
        now = time.monotonic()
        for run_id, metas in (seen or {}).items():
            if not metas:
                continue
            newest = metas[-1]
            # what advance() keeps of a run's events: those since lookback_ms before its newest
            start = bisect_left(metas, newest.timestamp - lookback_ms, key=_timestamp)
            cursor = self._cursor(run_id)
            for meta in metas[start:]:  # a slice: a lazy listing parses only these
                cursor.take(meta.key, meta.timestamp, meta.type, now)
            if self._last is None or (newest.timestamp, newest.key) > self._last:
                self._last = (newest.timestamp, newest.key)
                self._last_event_unknown = True
        for cursor in self._cursors.values():
            cursor.advance(lookback_ms, settle, now)

    def _cursor(self, run_id: str) -> _Cursor:
        cursor = self._cursors.get(run_id)
        if cursor is None:
            cursor = self._cursors[run_id] = _Cursor()
            self.runs.append(run_id)
        return cursor

    @property
    def ended(self) -> bool:
        """Whether the newest event seen ended the job (see :func:`job_has_ended`)."""
        return job_has_ended(self._last_event)

    async def poll(self) -> FollowUpdate:
        """One poll: the runs and events new since the last poll.

        Never raises a storage failure: it comes back as state ``"reconnecting"`` and
        nothing is consumed, so the next successful poll reports it all, once.
        """
        try:
            update = await self._poll()
        except (StorageError, OSError) as error:
            self.state = "reconnecting"
            return FollowUpdate([], [], "reconnecting", str(error) or type(error).__name__)
        self.state = update.state
        return update

    async def _poll(self) -> FollowUpdate:
        storage, job_id = self.storage, self.job_id
        run_ids = await storage.list_run_ids(job_id)
        # Runs that ended a while ago get nothing new: list them only now and then.
        sweep = self.polls % _ENDED_RUN_SWEEP == 0
        started = time.monotonic()
        listed = [
            run_id
            for run_id in run_ids
            if sweep
            or run_id not in self._cursors
            or not self._cursors[run_id].ended(self.settle, started)
        ]
        listings = await asyncio.gather(
            *(
                storage.list_objects(
                    keys.run_prefix(job_id, run_id),
                    self._cursors[run_id].start_after(keys.run_prefix(job_id, run_id))
                    if run_id in self._cursors
                    else None,
                )
                for run_id in listed
            )
        )
        # (run_id, key, name, modified) of every event file not taken before
        fresh: list[tuple[str, str, keys.EventName, float]] = []
        for run_id, objects in zip(listed, listings, strict=True):
            cursor = self._cursors.get(run_id)
            for info in objects:
                name = keys.parse_event_name(info.key.rsplit("/", 1)[-1])
                if name is None or (cursor is not None and cursor.has_taken(info.key, name)):
                    continue
                fresh.append((run_id, info.key, name, info.modified))
        to_read = [key for _, key, _, _ in fresh] + list(self._pending)
        results = await storage.read_events(to_read) if to_read else []
        last_event = self._last_event
        if self._last_event_unknown and self._last is not None:
            last_event = await storage.read_event(self._last[1])

        # Everything read: commit (a failure above leaves the follower as it was).
        new_runs = [r for r in run_ids if r not in self._cursors]
        for run_id in new_runs:
            self._cursor(run_id)
        self._last_event, self._last_event_unknown = last_event, False
        now, wall = time.monotonic(), time.time()
        self.polls += 1
        for run_id, key, name, modified in fresh:
            self._cursors[run_id].take(key, name.timestamp, name.type, now)
            self._pending[key] = _Pending(key, name.timestamp, modified)
        for cursor in self._cursors.values():
            cursor.advance(self.lookback_ms, self.settle, now)
        ready = self._held
        for key, event in zip(to_read, results, strict=True):
            pending = self._pending[key]
            pending.attempts += 1
            if isinstance(event, Unreadable) and not self._give_up(pending, now, wall):
                continue
            del self._pending[key]
            ready.append(((pending.timestamp, key), event))
        ready.sort(key=lambda item: item[0])
        # Hold back whatever comes after the oldest pending event, to keep the order.
        if self._pending:
            barrier = min((p.timestamp, p.key) for p in self._pending.values())
            cut = next((i for i, (order, _) in enumerate(ready) if order > barrier), len(ready))
            ready, self._held = ready[:cut], ready[cut:]
        else:
            self._held = []
        for order, event in ready:
            if self._last is None or order > self._last:
                self._last, self._last_event = order, event
        state: FollowState = "idle" if self.ended else "live"
        return FollowUpdate(
            new_runs,
            [event for _, event in ready],
            state,
            event_keys=[key for (_, key), _ in ready],
        )

    def _give_up(self, pending: _Pending, now: float, wall: float) -> bool:
        """Whether a file that does not parse is bad for good, not just being written."""
        if wall - pending.modified > self.pending_timeout:
            return True  # untouched for a while: nobody is writing it any more
        return (
            pending.attempts >= self.pending_attempts
            and now - pending.first_seen >= self.pending_timeout
        )

    @property
    def busy(self) -> bool:
        """Whether files are waiting to be read again (poll soon rather than at the interval)."""
        return bool(self._pending)

    async def updates(self) -> AsyncIterator[FollowUpdate]:
        """Poll forever; yield the first poll, then whenever something is new or the state changes.

        Storage failures back off exponentially (``backoff_initial`` doubling up to
        ``backoff_max``). Stop iterating to stop following.
        """
        waker = _Waker.for_storage(self.storage, keys.runs_prefix(self.job_id), recursive=False)
        waker.watch_also(self.runs)
        await waker.start()
        failures = 0
        previous: FollowState | None = None
        try:
            while True:
                update = await self.poll()
                waker.watch_also(update.new_runs)
                if previous is None or not update.is_empty or update.state != previous:
                    yield update
                previous = update.state
                if update.state == "reconnecting":
                    delay = min(self.backoff_initial * 2**failures, self.backoff_max)
                    failures += 1
                    await asyncio.sleep(delay)
                    continue
                failures = 0
                delay = self.interval
                if self.busy:
                    delay = min(delay, self.pending_timeout / self.pending_attempts)
                await waker.wait(delay)
        finally:
            await waker.close()


class _Waker:
    """Waits between polls: the interval, or less when the backend can tell of a change.

    On a local directory it watches the files (inotify and friends, through watchfiles),
    so a new event is polled for within tens of milliseconds of being written; where
    watching is not possible it polls often instead (a directory listing is cheap).

    The watch runs in a thread of its own: setting it up walks what it watches, holding the
    interpreter lock (~40 ms for a folder of 10,000 files, recursively), which the event
    loop must not wait for. A job is watched folder by folder, not recursively: its runs
    folder and each run's (:meth:`watch_also`), so setting up costs no walk of its events.
    """

    #: how often to poll a local directory that cannot be watched (0.5 s latency goal)
    FILESYSTEM_INTERVAL = 0.25
    #: let a burst of writes settle before polling (ms)
    DEBOUNCE_MS = 20
    #: how often the watch reports that it is installed and alive (ms)
    ALIVE_MS = 1000

    def __init__(self, watch: Path | None = None, *, recursive: bool = True) -> None:
        self.watch = watch
        self.recursive = recursive
        self._also: list[Path] = []  # subfolders of ``watch``, watched too
        self._changed = asyncio.Event()
        self._stop: threading.Event | None = None  # the running watch's
        self._watching = False  # the running watch is installed

    @classmethod
    def for_storage(
        cls, storage: KeyValueStorage, prefix: str, *, recursive: bool = True
    ) -> _Waker:
        """A waker for ``prefix`` of ``storage`` (watching only local directories)."""
        path_of = getattr(storage, "path_of", None)
        if storage.storage_info().type != "filesystem" or path_of is None:
            return cls()
        return cls(path_of(prefix), recursive=recursive)

    async def start(self) -> bool:
        """Begin watching, if possible and not already; True if a watch was just started.

        Call it before the first poll: until the watch is installed, :meth:`wait` polls soon.
        """
        if self.watch is None or self._stop is not None or not self.watch.is_dir():
            return False
        self._changed.clear()
        self._stop = stop = threading.Event()
        paths = [self.watch, *(p for p in self._also if p.is_dir())]
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=self._run, args=(paths, stop, loop), name="perstack-watch", daemon=True
        ).start()
        return True

    def watch_also(self, names: Iterable[str]) -> None:
        """Watch these subfolders of the watched directory too (each by itself): the watch
        starts again, with them, when there are new ones."""
        if self.watch is None:
            return
        new = [self.watch / name for name in names]
        new = [path for path in new if path not in self._also]
        if new:
            self._also += new
            self._restart()

    async def wait(self, timeout: float) -> None:
        """Sleep ``timeout`` seconds, or until the watched directory changes."""
        if self.watch is None:
            await asyncio.sleep(timeout)
            return
        if await self.start() or not self._watching:
            # not watching, or only since now (a write may have slipped by): poll soon
            timeout = min(timeout, self.FILESYSTEM_INTERVAL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    def _run(
        self, paths: list[Path], stop: threading.Event, loop: asyncio.AbstractEventLoop
    ) -> None:
        """The watch, in its thread: tells the loop of each change (and that it is alive)."""
        try:
            from watchfiles import watch

            changes = watch(
                *paths,
                stop_event=stop,
                debounce=self.DEBOUNCE_MS,
                step=self.DEBOUNCE_MS,
                rust_timeout=self.ALIVE_MS,
                yield_on_timeout=True,
                recursive=self.recursive,
                raise_interrupt=False,
            )
            for changed in changes:  # an empty set: nothing changed, the watch is installed
                loop.call_soon_threadsafe(self._seen, stop, bool(changed))
        except Exception:  # no watchfiles, the directory went, no inotify left: poll instead
            pass
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(self._ended, stop)

    def _seen(self, stop: threading.Event, changed: bool) -> None:
        if stop is self._stop:
            self._watching = True
            if changed:
                self._changed.set()

    def _ended(self, stop: threading.Event) -> None:
        if stop is self._stop:  # the watch failed: start() may try again
            self._stop, self._watching = None, False

    def _restart(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop, self._watching = None, False

    async def close(self) -> None:
        """Stop watching (the thread ends within a few milliseconds)."""
        self._restart()


#: the longest wait between two listings of a large bucket's jobs (seconds)
MAX_JOBS_POLL = 15.0


class JobsWatcher:
    """Reports jobs that appear after it started (for the jobs list).

    Job ids are random, so every poll is one delimiter listing of ``jobs/`` (one request
    per thousand jobs on S3). So that a large bucket is not listed every 2 s, the wait
    between polls grows with it: half a second a page, at least ``interval``, at most
    :data:`MAX_JOBS_POLL` (a filesystem is woken by its file events anyway). ``known``
    are the ids the caller already shows; without them, the first listing is the
    baseline. ``state`` and ``error`` tell whether the last listing failed (it is retried
    with backoff).
    """

    def __init__(
        self,
        storage: KeyValueStorage,
        *,
        interval: float = 2.0,
        known: Iterable[str] | None = None,
        backoff_max: float = 5.0,
    ) -> None:
        self.storage = storage
        self.interval = interval
        self.backoff_max = backoff_max
        self.known: set[str] | None = set(known) if known is not None else None
        self.state: FollowState = "live"
        self.error: str | None = None

    @property
    def wait(self) -> float:
        """Seconds between polls for the storage's size (see the class docstring)."""
        pages = -(-len(self.known or ()) // 1000)
        return min(max(self.interval, pages * 0.5), max(self.interval, MAX_JOBS_POLL))

    async def poll(self) -> list[str]:
        """Job ids not seen before, sorted; raises :class:`StorageError` on failure."""
        ids = await self.storage.list_job_ids()
        if self.known is None:
            self.known = set(ids)
            return []
        new = [job_id for job_id in ids if job_id not in self.known]
        self.known.update(new)
        return new

    async def new_job_ids(self) -> AsyncIterator[list[str]]:
        """Yield each batch of new job ids as it appears; stop iterating to stop watching."""
        failures = 0
        waker = _Waker.for_storage(self.storage, keys.JOBS, recursive=False)
        await waker.start()
        try:
            while True:
                try:
                    new = await self.poll()
                except (StorageError, OSError) as error:
                    self.state, self.error = "reconnecting", str(error) or type(error).__name__
                    failures += 1
                    await asyncio.sleep(min(0.5 * 2 ** (failures - 1), self.backoff_max))
                    continue
                self.state, self.error, failures = "live", None, 0
                if new:
                    yield new
                await waker.wait(self.wait)
        finally:
            await waker.close()
