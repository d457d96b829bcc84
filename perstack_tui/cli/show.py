"""``perstack-tui show KEY-OR-ID``: one event, checkpoint, job or run setting as pretty JSON.

The argument is a storage key (``jobs/J/runs/R/event-....json``; a path ending in such a key
works too) or an id: a job id, a checkpoint id, a run id (its run-setting.json), or an event
id (found by reading events, so narrow it with ``--job``). Secrets are masked unless
``--reveal-secrets``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from .. import keys

if TYPE_CHECKING:  # the engine is imported where used: ``show --help`` loads no models
    from ..catalog import Catalog
    from ..storage.base import KeyValueStorage

EXIT_OK, EXIT_NO_MATCH, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target", metavar="KEY-OR-ID", help="a storage key, or a job/run/checkpoint/event id"
    )
    parser.add_argument("--job", metavar="ID", help="look for the id in this job only")
    parser.add_argument("--compact", action="store_true", help="one line of JSON")
    parser.add_argument(
        "--reveal-secrets", action="store_true", help="show run-setting env, apiKey... unmasked"
    )


def run(args: argparse.Namespace) -> int:
    from ..storage.factory import open_storage

    storage, _ = open_storage(args)
    return asyncio.run(_run_and_close(storage, args))


async def _run_and_close(storage: KeyValueStorage, args: argparse.Namespace) -> int:
    try:
        return await show_command(storage, args)
    finally:
        await storage.close()


class NotShown(Exception):
    """Nothing by that key or id; the message says what was looked for and where."""


def _as_key(target: str) -> str | None:
    """The storage key in ``target`` when it names one (a path ending in a key works too)."""
    if "/" not in target:
        return None
    start = target.rfind("jobs/")
    if start < 0:
        return None
    return target[start:]


async def find(
    storage: KeyValueStorage, target: str, *, job_id: str | None = None
) -> tuple[str, Any]:
    """``(kind, value)`` for a key or id: a model, an :class:`Unreadable`, or raw JSON."""
    from ..catalog import Catalog
    from ..models import Unreadable

    key = _as_key(target)
    if key is not None:
        return await _by_key(storage, key)
    keys.check_id(target)
    catalog = Catalog(storage)
    job_ids = [job_id] if job_id else await catalog.job_ids()
    if target in job_ids:
        return await _job(storage, catalog, target)
    for job in job_ids:
        if target in await storage.list_checkpoint_ids(job):
            return await _by_key(storage, keys.checkpoint_key(job, target))
        if target in await storage.list_run_ids(job):
            setting = await storage.read_run_setting(job, target)
            if setting is None:
                hint = f"perstack-tui log --job {job} --run {target}"
                raise NotShown(
                    f"run {target!r} of job {job!r} has no run-setting.json (the Perstack CLI "
                    f"writes none); see its events with: {hint}"
                )
            return "run-setting", setting
    for job in job_ids:
        metas = await catalog.job_events(job)
        for event in await storage.read_events([m.key for m in metas]):
            if not isinstance(event, Unreadable) and event.id == target:
                return "event", event
    where = f"job {job_id!r}" if job_id else storage.storage_info().location
    raise NotShown(f"no job, run, checkpoint or event {target!r} in {where}")


async def _job(storage: KeyValueStorage, catalog: Catalog, job_id: str) -> tuple[str, Any]:
    from ..describe import job_json

    stored = await storage.retrieve_job(job_id)
    if stored is not None:
        return "job", stored
    # The Perstack CLI writes no job.json: show the job as derived from its events.
    return "job", job_json(await catalog.job(job_id))


async def _by_key(storage: KeyValueStorage, key: str) -> tuple[str, Any]:
    from ..models import Checkpoint, Job, RunSetting, Unreadable, parse_model
    from ..storage.base import NotFoundError

    parsed = keys.parse_key(key)
    try:
        if parsed.kind == "event":
            event = await storage.read_event(key)
            if isinstance(event, Unreadable) and event.reason.startswith("missing"):
                raise NotFoundError(key, key=key)
            return "event", event
        raw = await storage.read_bytes(key)
    except NotFoundError:
        raise NotShown(f"no {key!r} in {storage.storage_info().location}") from None
    model = {"job": Job, "checkpoint": Checkpoint, "run-setting": RunSetting}.get(parsed.kind)
    if model is not None:
        return parsed.kind, parse_model(model, raw, key)
    try:
        return "other", json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        return "other", Unreadable(key=key, reason=f"not valid JSON: {error}")


def to_json(value: Any, *, reveal_secrets: bool = False) -> Any:
    """What ``show`` prints for a found value (secrets masked unless revealed)."""
    from ..models import Unreadable, mask_secrets

    if isinstance(value, Unreadable):
        return {
            "type": "unreadable",
            "key": value.key,
            "reason": value.reason,
            "preview": value.preview,
        }
    data = value.to_json_dict() if hasattr(value, "to_json_dict") else value
    return data if reveal_secrets else mask_secrets(data)


async def show_command(
    storage: KeyValueStorage, args: argparse.Namespace, out: TextIO | None = None
) -> int:
    """``show`` on an open storage; returns the exit code."""
    from ..models import Unreadable

    out = out or sys.stdout
    try:
        if args.job:
            keys.check_id(args.job, "job id")
        if ".." in args.target.replace("\\", "/").split("/"):
            raise keys.UnsafeIdError(f"unsafe id or key: {args.target!r}")
        _, value = await find(storage, args.target, job_id=args.job)
    except keys.UnsafeIdError as error:
        print(f"perstack-tui: {error}", file=sys.stderr)
        return EXIT_USAGE
    except NotShown as error:
        print(f"perstack-tui: {error}", file=sys.stderr)
        return EXIT_NO_MATCH
    data = to_json(value, reveal_secrets=args.reveal_secrets)
    print(json.dumps(data, indent=None if args.compact else 2, ensure_ascii=False), file=out)
    if isinstance(value, Unreadable):
        print(f"perstack-tui: unreadable: {value.key}: {value.reason}", file=sys.stderr)
        return EXIT_NO_MATCH
    return EXIT_OK
