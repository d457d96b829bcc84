"""The Textual application: storage state, navigation between screens, copy and export.

The app holds the one :class:`~perstack_tui.catalog.Catalog` every screen reads from and
the storage state the header shows. Storage calls go through :meth:`PerstackApp.guarded`,
which turns a :class:`StorageError` into an "error" state and a message, never a crash.
Browsing never writes to the storage; export writes only to a local directory.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive

from .. import keys
from ..catalog import Catalog
from ..export import export_job, export_keys
from ..index import JobIndex
from ..storage.base import KeyValueStorage, StorageError
from .commands import JumpProvider
from .screens.help import HelpScreen
from .screens.job import JobScreen
from .screens.jobs import JobsScreen

T = TypeVar("T")

THEMES = ("textual-dark", "textual-light", "textual-ansi", "nord", "gruvbox")


@dataclass(frozen=True)
class Target:
    """Where ``perstack-tui open JOB[/RUN][#STEP]`` starts."""

    job_id: str
    run_id: str | None = None
    step: int | None = None

    def __str__(self) -> str:
        text = self.job_id + (f"/{self.run_id}" if self.run_id else "")
        return text + (f"#{self.step}" if self.step is not None else "")


class PerstackApp(App[None]):
    """Browse and live-tail a Perstack storage."""

    TITLE = "perstack-tui"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {JumpProvider}
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding(
            "colon",
            "command_palette",
            "jump",
            show=False,
            tooltip="jump to a job, run, step or checkpoint",
        ),
        Binding("T", "cycle_theme", "theme", show=False, tooltip="next colour theme"),
    ]

    storage_state: reactive[str] = reactive("ok")
    storage_problem: reactive[str] = reactive("")

    def __init__(
        self,
        storage: KeyValueStorage,
        *,
        now: Callable[[], float] = time.time,
        target: Target | None = None,
        follow: bool = False,
        ansi: bool = False,
        export_dir: str | Path = "perstack-export",
        index: JobIndex | None = None,
    ) -> None:
        """``index``: the persistent job index; by default the one of this storage in the
        cache directory (see :mod:`perstack_tui.index`)."""
        super().__init__()
        self.storage = storage
        location = storage.storage_info().location
        self.catalog = Catalog(storage, index or JobIndex.for_location(location))
        self.now = now
        self.target = target
        self.start_following = follow
        self.export_dir = Path(export_dir)
        self.storage_location = storage.storage_info().location
        self._busy = 0
        if ansi:
            self.theme = "textual-ansi"

    def on_mount(self) -> None:
        self.push_screen(JobsScreen())
        # what the app is made of once it has drawn (modules, widgets, styles: ~70,000
        # objects that live as long as the app) is left out of the cyclic collector's walks,
        # whose full passes otherwise stalled the event loop ~50-100 ms at random moments
        self.call_after_refresh(gc.freeze)
        index = self.catalog.index
        if index is not None and index.problem:  # a cache: said once, then rebuilt
            self.notify(index.problem, severity="warning", timeout=8)
        if self.target is not None:
            self.open_job(
                self.target.job_id,
                run_id=self.target.run_id,
                step=self.target.step,
                follow=self.start_following,
            )
        elif self.start_following:
            self.open_newest_job()

    async def on_unmount(self) -> None:
        gc.unfreeze()  # the process may go on (tests, an embedding program)
        await self.catalog.save_index()
        await self.storage.close()

    # --- storage state ------------------------------------------------------------------

    async def guarded(self, call: Awaitable[T], *, quiet: bool = False) -> T | None:
        """Await a storage call; on :class:`StorageError` show it and return ``None``.

        ``quiet`` calls (background polls) do not flip the header to "loading".
        """
        if not quiet:
            self._busy += 1
            self.storage_state = "loading"
        try:
            result = await call
        except (StorageError, OSError) as error:
            self.storage_problem = str(error) or type(error).__name__
            self.storage_state = "error"
            return None
        finally:
            if not quiet:
                self._busy -= 1
        if self.storage_state != "error" or not quiet:
            self.storage_state = "loading" if self._busy else "ok"
            self.storage_problem = ""
        return result

    # --- navigation ---------------------------------------------------------------------

    def open_job(
        self,
        job_id: str,
        *,
        run_id: str | None = None,
        step: int | None = None,
        follow: bool = False,
    ) -> None:
        """Show a job's runs and events (replacing an open job screen), once its runs
        are listed or a moment has passed (:meth:`JobScreen.list_first`)."""
        self._show_job(JobScreen(job_id, run_id=run_id, step=step, follow=follow))

    @work(exclusive=True, group="open-job")
    async def _show_job(self, screen: JobScreen) -> None:
        await screen.list_first(self.catalog)
        while isinstance(self.screen, JobScreen | HelpScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        if isinstance(self.screen, JobScreen):
            self.pop_screen()
        self.push_screen(screen)

    @work(group="open-newest")
    async def open_newest_job(self) -> None:
        """``--follow`` without a target: the newest running job, else the newest job.

        From the jobs list's own scan (one listing of every key, no read per job): summarizing
        each job in turn would cost three requests a job on a large bucket."""
        jobs = next(s for s in self.screen_stack if isinstance(s, JobsScreen))
        await jobs.scanned()
        summaries = [
            s for j in jobs.job_ids if (s := self.catalog.cached_job(j)) is not None and s.checked
        ]
        if not summaries:
            return
        running = [s for s in summaries if s.status == "running"]
        newest = max(running or summaries, key=lambda s: s.started_at or 0)
        self.open_job(newest.id, follow=True)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_cycle_theme(self) -> None:
        current = self.theme if self.theme in THEMES else THEMES[0]
        self.theme = THEMES[(THEMES.index(current) + 1) % len(THEMES)]
        self.notify(f"theme: {self.theme}", timeout=2)

    # --- copy and export ----------------------------------------------------------------

    def copy_text(self, text: str, what: str) -> None:
        """Copy to the clipboard with OSC 52 (works over SSH) and say what was copied."""
        self.copy_to_clipboard(text)
        preview = text if len(text) <= 60 else f"{len(text):,} characters"
        self.notify(f"copied {what}: {preview}", timeout=3)

    def copy_json(self, value: Any, what: str) -> None:
        self.copy_text(json.dumps(value, indent=2, ensure_ascii=False), what)

    @work(group="export")
    async def export(self, job_id: str, object_keys: list[str] | None = None) -> None:
        """Export a whole job, or some of its keys, to :attr:`export_dir` (secrets masked)."""
        skipped: list[str] = []
        out = self.export_dir

        def on_skip(key: str, reason: str) -> None:
            skipped.append(f"{key}: {reason}")

        if object_keys is None:
            call = export_job(self.storage, job_id, out, on_skip=on_skip)
        else:
            call = export_keys(self.storage, object_keys, out, on_skip=on_skip)
        try:
            written = await self.guarded(call)
        except ValueError as error:  # an unsafe key: refused before anything was written
            self.notify(str(error), severity="error")
            return
        if written is None:
            self.notify(f"export failed: {self.storage_problem}", severity="error")
            return
        where = out.resolve() / keys.job_prefix(job_id)
        message = f"exported {len(written)} file(s) to {where}"
        if skipped:
            message += f" ({len(skipped)} skipped: {skipped[0]})"
        self.notify(message, timeout=6)
