"""Command palette (ctrl+p or ``:``): jump to a job by id or expert, a run, a step, a checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..models import CHECKPOINT_EVENT_TYPES

#: the palette lists at most this many jobs (the matcher is cheap, painting is not)
_MAX_JOBS = 5000

Jump = tuple[str, Callable[[], object], str]  # (text to match, what to do, help line)


class JumpProvider(Provider):
    """Jobs of the jobs list, and the runs, steps and checkpoints of the open job."""

    def _jumps(self) -> Iterator[Jump]:
        from .screens.job import JobScreen
        from .screens.jobs import JobsScreen

        app = self.app
        job_screen = next((s for s in app.screen_stack if isinstance(s, JobScreen)), None)
        if job_screen is not None:
            yield from _job_jumps(job_screen)
        jobs_screen = next((s for s in app.screen_stack if isinstance(s, JobsScreen)), None)
        if jobs_screen is not None:
            for job_id in jobs_screen.order[:_MAX_JOBS]:
                summary = app.catalog.cached_job(job_id)  # type: ignore[attr-defined]
                expert = summary.expert if summary else ""
                label = f"job {job_id} {expert}".rstrip()
                yield label, partial(app.open_job, job_id), f"open job {job_id}"  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for index, (label, action, help_text) in enumerate(self._jumps()):
            if index >= 30:
                break
            yield DiscoveryHit(label, action, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, action, help_text in self._jumps():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), action, help=help_text)


def _job_jumps(screen) -> Iterator[Jump]:  # type: ignore[no-untyped-def]
    for run in screen.runs:
        label = f"run {run.run_id} {run.expert}".rstrip()
        yield label, partial(_jump_to_run, screen, run.run_id), f"show run {run.run_id}"
    steps = sorted({m.stepNumber for run in screen.runs for m in run.events})
    for step in steps:
        yield f"step {step}", partial(screen.jump_to_step, step), f"events of step {step}"
    for run in screen.runs:
        for meta in run.events:
            if meta.type in CHECKPOINT_EVENT_TYPES:
                label = f"checkpoint step {meta.stepNumber} {run.expert} ({meta.type})"
                yield label, partial(_open_checkpoint, screen, meta.key), "open this checkpoint"


def _jump_to_run(screen, run_id: str) -> None:  # type: ignore[no-untyped-def]
    screen.select_run(run_id)
    screen.events_list.focus()


def _open_checkpoint(screen, key: str) -> None:  # type: ignore[no-untyped-def]
    screen.jump_to_key(key)
    screen.action_checkpoint()
