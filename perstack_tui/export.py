"""Copy keys out of any storage into a local directory, hierarchy kept.

The output directory is itself a valid filesystem storage base (``DIR/jobs/{jobId}/...``), so
``perstack-tui log --storage DIR`` reads an export back. Run settings are written with their
secrets masked unless asked otherwise; keys that would escape the output directory are refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from . import keys
from .models import mask_secrets
from .storage.base import KeyValueStorage, NotFoundError, StorageError, dump_compact

#: called as ``progress(done, total)`` after each file
Progress = Callable[[int, int], None]
#: called as ``on_skip(key, reason)`` for a file that was not written
OnSkip = Callable[[str, str], None]


class UnsafeKeyError(ValueError):
    """A key or id that would make a path escape the output directory."""


def safe_path(out_dir: Path, key: str) -> Path:
    """Where ``key`` goes under ``out_dir``; :class:`UnsafeKeyError` if it would escape it."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts)
    ):
        raise UnsafeKeyError(f"refusing to export {key!r}: it would escape the output directory")
    root = out_dir.resolve()
    target = root.joinpath(*parts).resolve()
    if not target.is_relative_to(root):
        raise UnsafeKeyError(f"refusing to export {key!r}: it would escape the output directory")
    return target


async def tree_keys(storage: KeyValueStorage, prefix: str) -> list[str]:
    """Every key under ``prefix`` (which ends with ``/``), at any depth, sorted."""
    found = [o.key for o in await storage.list_objects(prefix)]
    children = await storage.list_prefixes(prefix)
    nested = await asyncio.gather(*(tree_keys(storage, f"{prefix}{c}/") for c in children))
    for keys_below in nested:
        found.extend(keys_below)
    return sorted(found)


async def job_tree_keys(storage: KeyValueStorage, job_id: str) -> list[str]:
    """A job's whole key tree as stored: job.json, checkpoints, runs, events, anything else."""
    try:
        prefix = keys.job_prefix(job_id)
    except keys.UnsafeIdError as error:
        raise UnsafeKeyError(str(error)) from None
    return await tree_keys(storage, prefix)


def _masked_run_setting(key: str, raw: bytes) -> bytes | str:
    """The run setting with secrets masked, or the reason it cannot be masked."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        return f"not valid JSON ({error}), so its secrets cannot be masked"
    if not isinstance(value, dict):
        return "not a JSON object, so its secrets cannot be masked"
    return dump_compact(mask_secrets(value))


async def export_keys(
    storage: KeyValueStorage,
    keys_: Sequence[str],
    out_dir: str | Path,
    *,
    reveal_secrets: bool = False,
    progress: Progress | None = None,
    on_skip: OnSkip | None = None,
) -> list[Path]:
    """Copy ``keys_`` into ``out_dir`` (``out_dir/<key>``) and return the paths written.

    Every key is checked before anything is written (:class:`UnsafeKeyError`). Run settings
    have their secrets masked unless ``reveal_secrets``; one that is not valid JSON cannot be
    masked and is skipped (reported through ``on_skip``) rather than copied with its secrets.
    A key listed but gone by the time it is read is skipped the same way.
    """
    out = Path(out_dir)
    targets = [safe_path(out, key) for key in keys_]
    written: list[Path] = []
    total = len(targets)
    done = 0
    batch = max(storage.max_concurrency, 1)
    for start in range(0, total, batch):
        chunk_keys = keys_[start : start + batch]
        chunk_targets = targets[start : start + batch]
        for key, target, raw in zip(
            chunk_keys, chunk_targets, await storage.read_many(chunk_keys), strict=True
        ):
            done += 1
            data: bytes | str
            if isinstance(raw, NotFoundError):
                data = "listed but gone when read"
            elif isinstance(raw, StorageError):
                raise raw
            elif not reveal_secrets and keys.parse_key(key).kind == "run-setting":
                data = _masked_run_setting(key, raw)
            else:
                data = raw
            if isinstance(data, str):
                if on_skip is not None:
                    on_skip(key, data)
            else:
                await asyncio.to_thread(_write, target, data)
                written.append(target)
            if progress is not None:
                progress(done, total)
    return written


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


async def export_job(
    storage: KeyValueStorage,
    job_id: str,
    out_dir: str | Path,
    *,
    reveal_secrets: bool = False,
    progress: Progress | None = None,
    on_skip: OnSkip | None = None,
) -> list[Path]:
    """Copy a job's whole key tree into ``out_dir/jobs/{jobId}/...``; see :func:`export_keys`.

    :class:`NotFoundError` if the storage holds nothing under the job.
    """
    job_keys = await job_tree_keys(storage, job_id)
    if not job_keys:
        raise NotFoundError(f"no job {job_id!r} in {storage.storage_info()}", key=job_id)
    return await export_keys(
        storage,
        job_keys,
        out_dir,
        reveal_secrets=reveal_secrets,
        progress=progress,
        on_skip=on_skip,
    )
