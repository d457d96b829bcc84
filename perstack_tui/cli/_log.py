"""The engine side of ``perstack-tui log`` (see :mod:`perstack_tui.cli.log` for its flags).

Kept apart from the argument parser so that ``log --help`` does not import the models.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TextIO

from .. import keys
from ..catalog import Catalog, JobSummary, events_by_time
from ..describe import (
    DELEGATION_EVENT_TYPES,
    TOOL_EVENT_TYPES,
    event_details,
    event_is_error,
    format_time,
    format_timestamp,
    job_json,
    message_text,
    one_line,
)
from ..filters import EventFilter, FilterError, build_filter, with_context
from ..models import Checkpoint, EventMeta, RunEvent, Unreadable, mask_secrets
from ..storage.base import KeyValueStorage, NotFoundError, StorageInfo
from .log import DEFAULT_TAKE, EXIT_NO_MATCH, EXIT_OK, EXIT_USAGE

RULE = "─" * 50
# Bodies are read in batches this size when a filter needs them, stopping once enough match.
_READ_BATCH = 64

AnyEvent = RunEvent | Unreadable


def run(args: argparse.Namespace) -> int:
    try:
        event_filter = build_filter(
            step=args.step,
            types=args.type,
            errors=args.errors,
            tools=args.tools,
            delegations=args.delegations,
            condition=args.filter,
        )
        for value, what in ((args.job, "job id"), (args.run, "run id"), (args.checkpoint, "id")):
            if value is not None:
                keys.check_id(value, what)
    except (FilterError, keys.UnsafeIdError) as error:
        print(f"perstack-tui: {error}", file=sys.stderr)
        return EXIT_USAGE
    from ..storage.factory import open_storage

    storage, _ = open_storage(args)
    return asyncio.run(_run_and_close(storage, args, event_filter))


async def _run_and_close(
    storage: KeyValueStorage, args: argparse.Namespace, event_filter: EventFilter
) -> int:
    try:
        return await log_command(storage, args, event_filter)
    finally:
        await storage.close()


# --- choosing the events ----------------------------------------------------------------


@dataclass
class LogSelection:
    """What ``log`` will print: the job, its chosen events and how they were chosen."""

    job: JobSummary
    latest: bool
    metas: list[EventMeta]  # every event in scope (job, run or checkpoint's run)
    shown: list[tuple[EventMeta, AnyEvent]] = field(default_factory=list)
    matched: int = 0  # matches found (all of them when ``complete``)
    page: int = 0  # matches shown (``shown`` adds the --context events around them)
    complete: bool = True  # False when reading stopped early, once enough matched
    checkpoint: Checkpoint | Unreadable | None = None
    #: unreadable files a --filter condition could not be checked against
    unchecked: list[Unreadable] = field(default_factory=list)
    #: every event of the job as listed, by run (where --follow resumes)
    seen: dict[str, Sequence[EventMeta]] = field(default_factory=dict)


class NothingFound(Exception):
    """No such job, run or checkpoint: the message says what was looked for and where."""


async def select_events(
    storage: KeyValueStorage,
    event_filter: EventFilter,
    *,
    job_id: str | None = None,
    run_id: str | None = None,
    checkpoint_id: str | None = None,
    take: int = DEFAULT_TAKE,
    offset: int = 0,
    context: int = 0,
    messages: bool = False,
    from_end: bool = False,
) -> LogSelection:
    """Pick the events ``log`` shows, reading only what the filters and the page need."""
    catalog = Catalog(storage)
    where = storage.storage_info().location
    latest = job_id is None
    if job_id is None:
        job_id = await _find_job(catalog, run_id, checkpoint_id)
        if job_id is None and (run_id or checkpoint_id) and await catalog.job_ids():
            what = f"run {run_id!r}" if run_id else f"checkpoint {checkpoint_id!r}"
            raise NothingFound(f"no {what} in any job in {where}")
        if job_id is None:
            raise NothingFound(storage.no_jobs_message())
    job = await catalog.job(job_id)
    if job.source == "empty" and job.status == "unknown":
        raise NothingFound(f"no job {job_id!r} in {where}")
    runs = await catalog.runs(job_id)
    metas = events_by_time(runs)
    seen = {run.run_id: run.events for run in runs}
    selection = LogSelection(job=job, latest=latest, metas=metas, seen=seen)
    if checkpoint_id is not None:
        try:
            selection.checkpoint = await storage.read_checkpoint(job_id, checkpoint_id)
        except NotFoundError:
            raise NothingFound(f"no checkpoint {checkpoint_id!r} in job {job_id!r}") from None
        if isinstance(selection.checkpoint, Checkpoint) and run_id is None:
            in_run = seen.get(selection.checkpoint.runId, [])
            # A continued job's checkpoint may name an earlier run: then keep its step's events.
            step = selection.checkpoint.stepNumber
            metas = in_run or [m for m in metas if m.stepNumber == step]
    elif messages:
        selection.checkpoint = await catalog.last_checkpoint(job_id)
    if run_id is not None:
        metas = seen.get(run_id, [])
        if not metas and run_id not in await storage.list_run_ids(job_id):
            raise NothingFound(f"no run {run_id!r} in job {job_id!r}")
    selection.metas = metas
    await _match(storage, selection, event_filter, take, offset, context, from_end)
    return selection


async def _find_job(catalog: Catalog, run_id: str | None, checkpoint_id: str | None) -> str | None:
    """The latest job, or the job holding ``run_id`` / ``checkpoint_id`` (latest first)."""
    if run_id is not None:  # run folders are in the one listing of every job's files
        return await catalog.latest_job_id(with_run=run_id)
    if checkpoint_id is None:
        return await catalog.latest_job_id()
    # checkpoint files too: one recursive listing, not one listing per job
    name = f"/{checkpoint_id}.json"
    holders = [
        parsed.job_id
        for info in await catalog.storage.list_tree(keys.JOBS)
        if info.key.endswith(name) and (parsed := keys.parse_key(info.key)).kind == "checkpoint"
    ]
    return holders[0] if holders else None


async def _match(
    storage: KeyValueStorage,
    selection: LogSelection,
    event_filter: EventFilter,
    take: int,
    offset: int,
    context: int,
    from_end: bool = False,
) -> None:
    """Find the page of matches; ``from_end`` pages back from the newest (as ``tail`` does)."""
    metas = selection.metas
    candidates = [i for i, meta in enumerate(metas) if event_filter.matches_name(meta)]
    if from_end:
        candidates.reverse()
    bodies: dict[int, AnyEvent] = {}
    if event_filter.needs_body:
        wanted = offset + take if take else None
        matched: list[int] = []
        for start in range(0, len(candidates), _READ_BATCH):
            batch = candidates[start : start + _READ_BATCH]
            events = await storage.read_events([metas[i].key for i in batch])
            for index, event in zip(batch, events, strict=True):
                bodies[index] = event
                if event_filter.matches_event(event):
                    matched.append(index)
                elif isinstance(event, Unreadable):
                    selection.unchecked.append(event)
            if wanted is not None and len(matched) >= wanted:
                selection.complete = start + _READ_BATCH >= len(candidates)
                break
    else:
        matched = candidates
    selection.matched = len(matched)
    page = matched[offset : offset + take] if take else matched[offset:]
    if from_end:
        page.sort()
    shown = with_context(len(metas), page, context)
    missing = [i for i in shown if i not in bodies]
    read = await storage.read_events([metas[i].key for i in missing])
    for index, event in zip(missing, read, strict=True):
        bodies[index] = event
    selection.page = len(page)
    selection.shown = [(metas[i], bodies[i]) for i in shown]


# --- JSON -------------------------------------------------------------------------------


def event_json(event: AnyEvent, *, reveal_secrets: bool = False) -> dict[str, Any]:
    """An event as Perstack wrote it (secrets masked), or an unreadable file's record."""
    if isinstance(event, Unreadable):
        record: dict[str, Any] = {"type": "unreadable", "key": event.key, "reason": event.reason}
        name = keys.parse_key(event.key).event
        if name is not None:
            record.update(eventType=name.type, stepNumber=name.step_number)
            record["timestamp"] = name.timestamp
        return record
    data = event.to_json_dict()
    return data if reveal_secrets else mask_secrets(data)


def format_event_jsonl(event: AnyEvent, *, reveal_secrets: bool = False) -> str:
    """One event as one line of JSON (``--jsonl`` and ``--follow --json``)."""
    return json.dumps(event_json(event, reveal_secrets=reveal_secrets), ensure_ascii=False)


def summarize(events: Sequence[tuple[EventMeta, AnyEvent]]) -> dict[str, Any]:
    """Perstack's summary fields over the given events (tool errors counted as errors)."""
    summary: dict[str, Any] = {
        "totalEvents": len(events),
        "errorCount": sum(1 for _, e in events if event_is_error(e)),
        "toolCallCount": sum(1 for m, _ in events if m.type in TOOL_EVENT_TYPES),
        "delegationCount": sum(1 for m, _ in events if m.type in DELEGATION_EVENT_TYPES),
    }
    if events:
        steps = [m.stepNumber for m, _ in events]
        summary["stepRange"] = {"min": min(steps), "max": max(steps)}
    unreadable = sum(1 for _, e in events if isinstance(e, Unreadable))
    if unreadable:
        summary["unreadableCount"] = unreadable
    return summary


def render_json(selection: LogSelection, args: argparse.Namespace) -> str:
    reveal = getattr(args, "reveal_secrets", False)
    shown = [] if args.summary else selection.shown
    data: dict[str, Any] = {
        "job": job_json(selection.job),
        "events": [event_json(e, reveal_secrets=reveal) for _, e in shown],
        "summary": summarize(selection.shown),
    }
    if selection.checkpoint is not None:
        checkpoint = selection.checkpoint
        data["checkpoint"] = (
            event_json(checkpoint)
            if isinstance(checkpoint, Unreadable)
            else (checkpoint.to_json_dict() if reveal else mask_secrets(checkpoint.to_json_dict()))
        )
    return json.dumps(data, indent=2 if args.pretty else None, ensure_ascii=False)


# --- text -------------------------------------------------------------------------------


def format_event_line(event: AnyEvent, *, verbose: bool = False) -> str:
    """An event as ``log`` prints it: ``[Step N] type  HH:MM:SS  expert`` and detail lines."""
    if isinstance(event, Unreadable):
        name = keys.parse_key(event.key).event
        step = str(name.step_number) if name else "?"
        kind = name.type if name else "unreadable"
        time = format_time(name.timestamp) if name else "--:--:--"
        header = f"[Step {step}] {kind:<24} {time}  UNREADABLE"
    else:
        header = f"[Step {event.stepNumber}] {event.type:<24} {format_time(event.timestamp)}"
        header += f"  {event.expertKey}" if event.expertKey else ""
        header += "  ERROR" if event_is_error(event) else ""
    details = event_details(event, verbose=verbose)
    return "\n".join([header, *(f"  {line}" for line in details)])


def render_text(selection: LogSelection, info: StorageInfo, args: argparse.Namespace) -> str:
    job = selection.job
    lines = [f"Storage: {info.type} {_location(info)}"]
    latest = "  (showing latest job)" if selection.latest else ""
    lines.append(f"Job: {job.id} ({job.status}){latest}")
    lines.append(f"Expert: {job.expert or '-'}")
    lines.append(f"Started: {format_timestamp(job.started_at)}")
    lines.append(f"Steps: {job.steps}")
    if job.finished_at is not None:
        lines.append(f"Finished: {format_timestamp(job.finished_at)}")
    if job.problem:
        lines.append(f"Problem: {job.problem}")
    lines.append("")
    if selection.checkpoint is not None:
        lines += [*_checkpoint_lines(selection.checkpoint, args.messages), ""]
    summary = summarize(selection.shown)
    lines += ["Summary:", f"  Total Events: {summary['totalEvents']}"]
    lines.append(f"  Errors: {summary['errorCount']}")
    lines.append(f"  Tool Calls: {summary['toolCallCount']}")
    lines.append(f"  Delegations: {summary['delegationCount']}")
    if "stepRange" in summary:
        lines.append(f"  Step Range: {summary['stepRange']['min']} - {summary['stepRange']['max']}")
    if "unreadableCount" in summary:
        lines.append(f"  Unreadable: {summary['unreadableCount']}")
    if not args.summary and selection.shown:
        lines += ["", "Events:", RULE]
        for _, event in selection.shown:
            lines += [format_event_line(event, verbose=args.verbose), ""]
        lines.append(RULE)
    lines.append(_paging_note(selection, args))
    return "\n".join(lines)


def _location(info: StorageInfo) -> str:
    return info.location.removeprefix(f"{info.type}:")


def _checkpoint_lines(checkpoint: Checkpoint | Unreadable, messages: bool) -> list[str]:
    if isinstance(checkpoint, Unreadable):
        return [f"Checkpoint: UNREADABLE {checkpoint.key}", f"  {checkpoint.reason}"]
    lines = [
        f"Checkpoint: {checkpoint.id}",
        f"Status: {checkpoint.status}",
        f"Step: {checkpoint.stepNumber}",
        f"Expert: {checkpoint.expert.key if checkpoint.expert else '-'}",
        f"Run: {checkpoint.runId}",
    ]
    if messages:
        lines += ["", "Messages:"]
        for message in checkpoint.messages:
            lines.append(f"  [{message.type}] {one_line(message_text(message), 100)}")
    return lines


def _paging_note(selection: LogSelection, args: argparse.Namespace) -> str:
    shown = selection.page
    around = len(selection.shown) - shown
    context = f", with {around} events around them (--context)" if around else ""
    if not selection.complete:
        return f"Showing {shown} matching events{context}; more may match (--take 0 for all)."
    return (
        f"Showing {shown} of {selection.matched} matching events{context} "
        f"({len(selection.metas)} in all)."
    )


# --- the command ------------------------------------------------------------------------


async def log_command(
    storage: KeyValueStorage,
    args: argparse.Namespace,
    event_filter: EventFilter,
    out: TextIO | None = None,
) -> int:
    """``log`` on an open storage (tests inject one); returns the exit code."""
    out = out or sys.stdout
    take = 0 if args.summary else args.take
    try:
        selection = await select_events(
            storage,
            event_filter,
            job_id=args.job,
            run_id=args.run,
            checkpoint_id=args.checkpoint,
            take=take,
            offset=args.offset,
            context=args.context,
            messages=args.messages,
            # Following starts like `tail -f`: the newest events, then what comes.
            from_end=args.follow and args.offset == 0,
        )
    except NothingFound as error:
        print(f"perstack-tui: {error}", file=sys.stderr)
        return EXIT_NO_MATCH
    for unreadable in selection.unchecked:
        print(
            f"perstack-tui: note: not checked against --filter (unreadable): "
            f"{unreadable.key}: {unreadable.reason}",
            file=sys.stderr,
        )
    reveal = getattr(args, "reveal_secrets", False)
    streaming = args.jsonl or (args.follow and args.json)
    if streaming:
        for _, event in selection.shown:
            print(format_event_jsonl(event, reveal_secrets=reveal), file=out)
    elif args.json:
        print(render_json(selection, args), file=out)
    else:
        print(render_text(selection, storage.storage_info(), args), file=out)
    out.flush()
    if args.follow:

        def emit(event: AnyEvent) -> None:
            if streaming:
                print(format_event_jsonl(event, reveal_secrets=reveal), file=out)
            else:
                print(format_event_line(event, verbose=args.verbose) + "\n", file=out)
            out.flush()

        await follow_events(
            storage,
            selection.job.id,
            event_filter,
            emit,
            seen=selection.seen,
            run_id=args.run,
            interval=getattr(args, "interval", 1.0),
        )
        return EXIT_OK
    return EXIT_OK if selection.shown else EXIT_NO_MATCH


async def follow_events(
    storage: KeyValueStorage,
    job_id: str,
    event_filter: EventFilter,
    emit: Callable[[AnyEvent], None],
    *,
    seen: dict[str, Sequence[EventMeta]] | None = None,
    run_id: str | None = None,
    interval: float = 1.0,
) -> None:
    """Emit each new event of a job that passes the filter, once, in order, until the job ends."""
    from ..follow import JobFollower

    follower = JobFollower(storage, job_id, interval=interval, seen=seen)
    announced_state = "live"
    async with aclosing(follower.updates()) as updates:  # stop the watch when the job ends
        async for update in updates:
            if update.state == "reconnecting" != announced_state:
                print(
                    f"perstack-tui: storage unreachable, retrying: {update.error}", file=sys.stderr
                )
            elif announced_state == "reconnecting" != update.state:
                print("perstack-tui: reconnected", file=sys.stderr)
            announced_state = update.state
            for key, event in zip(update.event_keys, update.new_events, strict=True):
                name = keys.parse_key(key)
                if name.event is None or (run_id is not None and name.run_id != run_id):
                    continue
                meta = EventMeta(
                    timestamp=name.event.timestamp,
                    stepNumber=name.event.step_number,
                    type=name.event.type,
                    key=key,
                )
                if event_filter.matches_name(meta) and event_filter.matches_event(event):
                    emit(event)
            if update.state == "idle":  # the job has ended
                return
