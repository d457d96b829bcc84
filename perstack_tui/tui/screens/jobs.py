"""The jobs list: every job, newest first, filled in lazily so 10,000 jobs open at once.

Ids come from one listing and show immediately. Where the persistent job index
(:mod:`perstack_tui.index`) knows them, the rows are newest first at once (a job's start
never moves) and the rows on screen are checked first, one listing of a job's files each:
a job whose files did not change shows what the index kept, with nothing read. One
recursive listing of every key (:meth:`Catalog.scan_jobs`) then gives every job's status,
start, steps and duration (and orders the rows, on a first visit); expert and tokens need
reads, done for the rows on screen first, then for the rest in the background, while the
cursor stays on the same job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Input, Static

from ...catalog import JobSummary
from ...describe import format_duration, format_relative, format_timestamp, format_tokens
from ...follow import JobsWatcher
from ..widgets.footer import Footer
from ..widgets.header import StorageHeader
from ..widgets.virtual_list import VirtualList

# status -> (mark, style, label)
STATUS_MARKS: dict[str, tuple[str, str, str]] = {
    "running": ("●", "bold green", "running"),
    "completed": ("✔", "green", "completed"),
    "stoppedByMaxSteps": ("⏹", "yellow", "max steps"),
    "stoppedByInteractiveTool": ("⏸", "cyan", "interactive"),
    "stoppedByError": ("✖", "bold red", "error"),
    "stoppedByDelegate": ("↪", "magenta", "delegated"),
    "unreadable": ("?", "red", "unreadable"),
    "unknown": ("·", "dim", "empty"),
}
LOADING_MARK = ("…", "dim", "loading")

#: sort keys the `s` key cycles through: (name, key function, newest/largest first)
SORTS = ("started", "expert", "status", "steps", "tokens", "id")
#: the value each sort orders summaries by (the id sort: none, rows are in id order)
_SORT_VALUES: dict[str, Callable[[JobSummary], Any]] = {
    "started": lambda s: -(s.started_at or 0),
    "expert": lambda s: s.expert.lower(),
    "status": attrgetter("status"),
    "steps": lambda s: -s.steps,
    "tokens": lambda s: -s.usage.totalTokens,
}
_BATCH = 32
#: at most this many jobs new since the index was written are summarized before the rows
#: are ordered from it; with more, the order waits for the full scan
_UNINDEXED_LIMIT = 64
#: how long the rows on screen wait for the order before they are filled anyway (seconds),
#: plus so long a job listed: a local disk orders ~25,000 jobs a second, and reading the
#: rows on screen before that is wasted (they move) and slows the scan; a bucket takes
#: seconds, and the rows on screen are not left blank that long
_ORDER_GRACE = 0.5
_ORDER_GRACE_PER_JOB = 0.0001
#: new jobs are watched for once the rows are ordered, or after this long (seconds)
_WATCH_DELAY = 2.0
#: running jobs on screen are refreshed this often (seconds)...
RUNNING_VISIBLE_INTERVAL = 3.0
#: ...and every running job, on screen or not, this often (so a job that finished while
#: scrolled away shows it); jobs that are not running never change and are never refreshed
RUNNING_ALL_INTERVAL = 20.0
#: running jobs refreshed at once
_REFRESH_CONCURRENCY = 4


def status_mark(status: str | None) -> tuple[str, str, str]:
    if status is None:
        return LOADING_MARK
    return STATUS_MARKS.get(status, ("•", "", status))


@dataclass
class JobsColumns:
    """Column widths of the jobs list for a given total width (narrow terminals drop some)."""

    width: int

    @property
    def wide(self) -> bool:
        return self.width >= 110

    @property
    def _free(self) -> int:
        """What is left for the job id and the expert after the fixed columns."""
        fixed = 3 + 12 + 10 + (17 if self.wide else 0) + 10 + 6 + 8 + 2
        return max(0, self.width - fixed)

    @property
    def job(self) -> int:
        """Room for a whole cuid (24 characters) when the terminal has it."""
        return min(25, max(11, self._free // 2))

    @property
    def expert(self) -> int:
        return min(30, max(12, self._free - self.job))


def fit(text: str, width: int) -> str:
    """``text`` in ``width - 1`` cells (one space before the next column), cut with ``…``."""
    room = max(1, width - 1)
    return text if len(text) <= room else text[: room - 1] + "…"


class JobsScreen(Screen[None]):
    """Every job in the storage; enter opens one."""

    BINDINGS = [
        Binding("enter", "open_job", "open", tooltip="open the job"),
        Binding("slash", "filter", "filter", tooltip="filter by id, expert or status"),
        Binding("s", "sort", "sort", tooltip="sort by the next column"),
        Binding("S", "reverse", "reverse", tooltip="reverse the order"),
        Binding("y", "copy", "copy id", tooltip="copy the job id"),
        Binding("e", "export", "export job", tooltip="export the job (secrets masked)"),
        Binding("R,ctrl+r", "retry", "retry/refresh", tooltip="list again (retry after an error)"),
        Binding("escape", "clear_filter", "clear filter", show=False),
    ]

    DEFAULT_CSS = """
    JobsScreen #jobs-heading { height: 1; padding: 0 1; background: $boost; color: $text-muted; }
    JobsScreen #jobs { height: 1fr; }
    JobsScreen #jobs-filter { display: none; }
    JobsScreen.filtering #jobs-filter { display: block; }
    JobsScreen #jobs-status { height: 1; padding: 0 1; color: $text-muted; background: $boost; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.job_ids: list[str] = []
        self.order: list[str] = []  # filtered and sorted: what the rows show
        self.sort_name = "started"
        self.sort_reverse = False
        self.filter_text = ""
        self._pending: set[str] = set()
        self._dirty = False
        self._wanted = asyncio.Event()
        self._ids_listed = asyncio.Event()
        #: rows are newest first: every job's start is known (from the index or the scan)
        self._ordered = asyncio.Event()
        #: the scan (or its failure) is over: rows are newest first, details can be read
        self._scanned = asyncio.Event()
        self._refreshing = False
        #: the user moved the cursor: re-sorting keeps it on that job (else on the top row)
        self._picked = False
        #: what a job screen's first opening imports is imported (:func:`job.warm_up`)
        self.warmed_up = asyncio.Event()

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StorageHeader("jobs")
        with Vertical():
            yield Static(id="jobs-heading")
            yield VirtualList(self.render_row, id="jobs", empty_text="loading jobs…")
            yield Input(
                placeholder="filter: id, expert or status (enter keeps, esc clears)",
                id="jobs-filter",
            )
            yield Static(id="jobs-status")
        yield Footer()

    @property
    def list(self) -> VirtualList:
        return self.query_one("#jobs", VirtualList)

    def on_mount(self) -> None:
        self.list.focus()
        self._update_heading()
        self.load_ids()
        self.fill_summaries()
        self.set_interval(0.4, self._resort_if_dirty)
        self.watch_new_jobs()
        self.set_interval(RUNNING_VISIBLE_INTERVAL, self._refresh_visible_running)
        self.set_interval(RUNNING_ALL_INTERVAL, self._refresh_all_running)

    # --- loading ------------------------------------------------------------------------

    @work(exclusive=True, group="job-ids")
    async def load_ids(self) -> None:
        """List job ids (one listing); details are fetched by :meth:`fill_summaries`."""
        with contextlib.suppress(NoMatches):  # the screen closed (or the app quit) meanwhile
            await self._load_ids()

    async def _load_ids(self) -> None:
        self.list.set_empty_text("loading jobs…")
        catalog = self.app.catalog
        scan: asyncio.Task[list[JobSummary] | None] | None = None
        if catalog.index is None or not len(catalog.index):
            # a first visit: nothing orders the rows before the scan, which starts at once,
            # beside the listing of ids (it lists every key: the long part)
            scan = asyncio.create_task(self._scan(None, self._order_by_start))
        try:
            await self._list_then_scan(scan)
        finally:
            if scan is not None:
                scan.cancel()  # the listing failed, or the screen closed, first

    async def _list_then_scan(self, scan: asyncio.Task[list[JobSummary] | None] | None) -> None:
        catalog = self.app.catalog
        ids = await self.app.guarded(catalog.job_ids())
        if ids is None:
            self.list.set_empty_text(
                f"cannot list jobs: {self.app.storage_problem}  — press R to retry"
            )
            return
        self.add_job_ids(ids)
        self._ids_listed.set()
        if not ids:
            self.list.set_empty_text(self.app.storage.no_jobs_message())
        if scan is None:
            unindexed = catalog.prime_from_index(ids)
            if len(unindexed) < min(len(ids), _UNINDEXED_LIMIT + 1):
                # the index knows (almost) every job: newest first now, the few new ones listed
                if unindexed and await self.app.guarded(catalog.jobs(unindexed)) is not None:
                    self._pending.difference_update(unindexed)
                self._apply_order()
                self._ordered.set()
                self._wanted.set()
            # one listing of every key orders all jobs; on failure, rows fill one by one
            on_starts = None if self._ordered.is_set() else self._order_by_start
            scan = asyncio.create_task(self._scan(ids, on_starts))
        scanned = await scan
        if scanned is not None:
            self.add_job_ids([s.id for s in scanned])  # any the scan saw first
            for summary in scanned:  # a partial summary still needs its expert and tokens
                if summary.partial:
                    self._pending.add(summary.id)
                else:
                    self._pending.discard(summary.id)
            self._apply_order()
        self._ordered.set()
        self._scanned.set()
        self._wanted.set()
        await catalog.save_index()
        if catalog.index is not None and catalog.index.problem:  # e.g. the cache is read-only
            self.notify(catalog.index.problem, severity="warning", timeout=8)

    async def _scan(
        self, ids: list[str] | None, on_starts: Callable[[list[str]], None] | None
    ) -> list[JobSummary] | None:
        return await self.app.guarded(self.app.catalog.scan_jobs(ids, on_starts=on_starts))

    def _order_by_start(self, job_ids: list[str]) -> None:
        """Every job's start is known (the scan goes on for the rest): rows newest first,
        and the rows on screen are read. ``job_ids``: every job the scan saw."""
        known = set(self.job_ids)
        new = [j for j in job_ids if j not in known]
        self.job_ids.extend(new)
        self._pending.update(new)
        self._apply_order()
        self._ordered.set()
        self._wanted.set()

    async def scanned(self) -> None:
        """Until every job's status and start are known (the one-listing scan is over)."""
        await self._scanned.wait()

    def add_job_ids(self, ids: list[str]) -> None:
        """Add jobs (new ones go through the same lazy fill as the first listing)."""
        known = set(self.job_ids)
        new = [j for j in ids if j not in known]
        if not new:
            return
        self.job_ids.extend(new)
        self._pending.update(new)
        self._apply_order()
        self._wanted.set()

    @work(group="job-summaries")
    async def fill_summaries(self) -> None:
        """Fetch summaries forever: visible rows first, then the rest, in small batches."""
        # until the rows are ordered, the rows on screen are not the ones that stay there:
        # a scan that ends soon (a local disk) orders them sooner without these reads
        await self._ids_listed.wait()
        grace = _ORDER_GRACE + _ORDER_GRACE_PER_JOB * len(self.job_ids)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ordered.wait(), grace)
        try:
            catalog = self.app.catalog
            warming = False
            while True:
                await self._wanted.wait()
                first, last = self.list.visible_range
                visible = [j for j in self.order[first:last] if j in self._pending]
                # while the scan runs (seconds on a large bucket) only the rows on screen are
                # read, so they are not blank meanwhile; the rest once the order is known
                scanned = self._scanned.is_set()
                rest = [j for j in self.order if j in self._pending and j not in visible]
                rest = rest if scanned else []
                batch = (visible + rest)[:_BATCH]
                if not batch:
                    self._wanted.clear()
                    continue
                summaries = await self.app.guarded(catalog.jobs(batch))
                if summaries is None:
                    self._wanted.clear()  # storage failed: wait for a retry
                    continue
                # a scan that ended meanwhile may have left a job partial again: it stays
                self._pending.difference_update(
                    j for j in batch if (s := catalog.cached_job(j)) and s.complete
                )
                self._dirty = True
                self.list.refresh()
                self._update_status()
                if not warming:  # the first screen filled: a job's screen is likely next
                    warming = True
                    self.call_after_refresh(self._warm_up)
        except NoMatches:  # the screen closed (or the app quit) meanwhile
            return

    def _warm_up(self) -> None:
        from .job import warm_up  # job's module imports this one

        warm_up()
        self.warmed_up.set()

    def _resort_if_dirty(self) -> None:
        if self._dirty:
            self._dirty = False
            self._apply_order()

    @work(group="new-jobs")
    async def watch_new_jobs(self) -> None:
        """New jobs appear (at the top, once their summary says they are newest)."""
        await self._ids_listed.wait()
        # its first listing would compete with the scan that orders the rows: after it (a
        # local disk: well under a second), or after 2 s (a large bucket: seconds more)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ordered.wait(), _WATCH_DELAY)
        watcher = JobsWatcher(self.app.catalog.storage, known=self.job_ids)
        with contextlib.suppress(NoMatches):  # the screen closed (or the app quit) meanwhile
            async for new_ids in watcher.new_job_ids():
                self.add_job_ids(new_ids)

    def _running_of(self, job_ids: list[str]) -> list[str]:
        catalog = self.app.catalog
        return [
            j for j in job_ids if (s := catalog.cached_job(j)) is not None and s.status == "running"
        ]

    def _refresh_visible_running(self) -> None:
        """Running jobs on screen update their status, steps and tokens."""
        first, last = self.list.visible_range
        running = self._running_of(self.order[first:last])
        if running:
            self.refresh_jobs(running)

    def _refresh_all_running(self) -> None:
        """Every running job, on screen or not (scrolled away, or hidden by the filter)."""
        running = self._running_of(self.job_ids)
        if running:
            self.refresh_jobs(running)

    @work(group="refresh-running")
    async def refresh_jobs(self, job_ids: list[str]) -> None:
        """Re-summarize ``job_ids`` (a few at once); skipped while a refresh is under way."""
        if self._refreshing:
            return
        self._refreshing = True
        catalog = self.app.catalog
        limit = asyncio.Semaphore(_REFRESH_CONCURRENCY)

        async def one(job_id: str) -> None:
            async with limit:
                if await self.app.guarded(catalog.job(job_id, refresh=True), quiet=True):
                    self._dirty = True

        try:
            await asyncio.gather(*(one(j) for j in job_ids))
        finally:
            self._refreshing = False
        if self.query("#jobs"):
            self.list.refresh()
            self._update_status()

    # --- order and filter ---------------------------------------------------------------

    def summary(self, job_id: str) -> JobSummary | None:
        return self.app.catalog.cached_job(job_id)

    def _matches(self, job_id: str, summary: JobSummary | None) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        haystack = [job_id]
        if summary is not None and summary.checked:
            haystack += [summary.expert, summary.status, status_mark(summary.status)[2]]
        return any(needle in value.lower() for value in haystack)

    def _apply_order(self) -> None:
        current = self.current_job_id
        cached = self.app.catalog.cached_job  # once: 10,000s of rows
        rows = sorted(self.job_ids)  # ties stay in id order (the sorts below are stable)
        if self.filter_text:
            rows = [j for j in rows if self._matches(j, cached(j))]
        # a summary not loaded yet sorts after every loaded one; its start alone is loaded
        # enough for the sort by start
        by_start = self.sort_name == "started"
        loaded = [j for j in rows if (s := cached(j)) is not None and (s.checked or by_start)]
        waiting = [j for j in rows if (s := cached(j)) is None or not (s.checked or by_start)]
        value = _SORT_VALUES.get(self.sort_name)
        if value is not None:  # one plain value a row: 4x faster than tuples at 10,000 rows
            loaded.sort(key=lambda j: value(cached(j)))
        if self.sort_reverse:
            loaded.reverse()
        order = loaded + waiting
        self.order = order
        cursor = order.index(current) if current in order and self._picked else 0
        self.list.set_row_count(len(order), cursor=cursor)
        if not order and self.job_ids:
            self.list.set_empty_text(f"no job matches {self.filter_text!r}  (esc clears)")
        self._update_heading()
        self._update_status()

    @property
    def current_job_id(self) -> str | None:
        if not self.order or not self.list.row_count:
            return None
        return self.order[min(self.list.cursor, len(self.order) - 1)]

    def select_job(self, job_id: str) -> bool:
        """Put the cursor on ``job_id`` (used by the palette); false if it is not listed."""
        if job_id not in self.order:
            self.filter_text = ""
            self._apply_order()
        if job_id not in self.order:
            return False
        self._picked = True
        self.list.set_cursor(self.order.index(job_id))
        return True

    # --- rows ---------------------------------------------------------------------------

    def render_row(self, index: int, width: int) -> Text:
        job_id = self.order[index]
        summary = self.summary(job_id)
        checked = summary is not None and summary.checked
        columns = JobsColumns(width)
        mark, style, label = status_mark(summary.status if checked and summary else None)
        row = Text(no_wrap=True)
        row.append(f" {mark} ", style)
        row.append(f"{label:<12}", style)
        row.append(f"{fit(job_id, columns.job):<{columns.job}}", "bold")
        if summary is None:
            row.append("…", "dim")
            return row
        size = columns.expert
        if summary.partial:  # expert and tokens not read yet
            row.append(f"{'…':<{size}}", "dim")
        else:
            row.append(f"{fit(summary.expert, size):<{size}}", "cyan")
        now_ms = int(self.app.now() * 1000)
        row.append(f"{format_relative(summary.started_at, now_ms):>9} ", "")
        if columns.wide:
            row.append(f"{format_timestamp(summary.started_at)[:16]:<17}", "dim")
        if not checked:  # known from the index, not listed yet: only its start holds
            row.append(f"{'…':>9} {'…':>5} {'…':>7} ", "dim")
            return row
        duration = summary.duration_ms
        if duration is None and summary.status == "running" and summary.started_at:
            duration = now_ms - summary.started_at
        row.append(f"{format_duration(duration):>9} ", "")
        row.append(f"{summary.steps:>5} ", "")
        tokens = "…" if summary.partial else format_tokens(summary.usage.totalTokens)
        row.append(f"{tokens:>7} ", "")
        if summary.problem:
            row.append(f" {summary.problem}", "red")
        return row

    def _update_heading(self) -> None:
        arrow = "↑" if self.sort_reverse else "↓"
        columns = JobsColumns(self.size.width or 120)
        wide = columns.wide
        heading = (
            f"   {'status':<12}{'job':<{columns.job}}{'expert':<{columns.expert}}{'started':>9} "
            + (f"{'(UTC)':<17}" if wide else "")
            + f"{'duration':>9} {'steps':>5} {'tokens':>7}"
        )
        self.query_one("#jobs-heading", Static).update(
            Text(heading) + Text(f"   sort: {self.sort_name} {arrow}", "italic")
        )

    def _update_status(self) -> None:
        total, shown = len(self.job_ids), len(self.order)
        text = f"{shown} of {total} jobs" if self.filter_text else f"{total} jobs"
        if self._pending:
            text += f" · loading details ({total - len(self._pending)}/{total})"
        if self.filter_text:
            text += f" · filter: {self.filter_text!r}"
        self.query_one("#jobs-status", Static).update(text)

    def on_resize(self) -> None:
        self._update_heading()

    # --- events and actions -------------------------------------------------------------

    @on(VirtualList.Highlighted, "#jobs")
    def _highlighted(self, event: VirtualList.Highlighted) -> None:
        if event.index != 0:
            self._picked = True

    @on(VirtualList.Scrolled, "#jobs")
    def _visible_changed(self) -> None:
        self._wanted.set()

    @on(VirtualList.Selected, "#jobs")
    def _job_selected(self) -> None:
        self.action_open_job()

    def action_open_job(self) -> None:
        job_id = self.current_job_id
        if job_id is not None:
            self.app.open_job(job_id)

    def action_filter(self) -> None:
        self.add_class("filtering")
        field = self.query_one("#jobs-filter", Input)
        field.value = self.filter_text
        field.focus()

    @on(Input.Changed, "#jobs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._apply_order()

    @on(Input.Submitted, "#jobs-filter")
    def _filter_submitted(self) -> None:
        if not self.filter_text:
            self.remove_class("filtering")
        self.list.focus()

    def action_clear_filter(self) -> None:
        self.remove_class("filtering")
        if self.filter_text:
            self.filter_text = ""
            self._apply_order()
        self.list.focus()

    def action_sort(self) -> None:
        self.sort_name = SORTS[(SORTS.index(self.sort_name) + 1) % len(SORTS)]
        self._apply_order()
        self.notify(f"sorted by {self.sort_name}", timeout=2)

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._apply_order()

    def action_copy(self) -> None:
        job_id = self.current_job_id
        if job_id is not None:
            self.app.copy_text(job_id, "job id")

    def action_export(self) -> None:
        job_id = self.current_job_id
        if job_id is not None:
            self.app.export(job_id)

    def action_retry(self) -> None:
        """Retry after an error, or refresh: list again and re-read what is not finished."""
        self.app.storage_state = "ok"
        self._pending.update(
            j for j in self.job_ids if (s := self.summary(j)) is None or s.status == "running"
        )
        self.load_ids()
        self._wanted.set()
