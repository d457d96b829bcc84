"""Write the benchmark data sets once into ``bench/data/`` and reuse them (keyed by size+seed).

Files are written through the project's storage layer: keys from :mod:`perstack_tui.keys`,
JSON as ``store_event``/``store_checkpoint``/``store_job`` write it, bytes through
``write_bytes``, many at once, so they are exactly what the app reads. The S3 copy is
uploaded from the filesystem copy with a thread pool of bare ``put_object`` calls
(byte-identical, and independent of the S3 backend under test).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perstack_tui import keys
from perstack_tui.storage.base import KeyValueStorage
from perstack_tui.storage.filesystem import FileSystemStorage

from . import synth

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class DataSet:
    """One generated storage: ``kind`` is "jobs", "run" or "checkpoint"; ``size`` its scale."""

    kind: str
    size: float
    seed: int = 1

    @property
    def name(self) -> str:
        size = f"{self.size:g}".replace(".", "_")
        return f"{self.kind}-{size}-s{self.seed}"

    @property
    def path(self) -> Path:
        """The storage base directory (holds ``jobs/``)."""
        return DATA / "fs" / self.name

    def plans(self) -> Iterable[synth.JobPlan]:
        if self.kind == "jobs":
            return synth.many_jobs(int(self.size), self.seed)
        if self.kind == "run":
            return [synth.long_run(self.seed, int(self.size))]
        if self.kind == "checkpoint":
            return [synth.big_checkpoint(self.seed, self.size)]
        raise ValueError(self.kind)

    def job_id(self) -> str:
        """The id of the (first) job of the set: the long run's or the big checkpoint's."""
        return next(iter(self.plans())).job_id


def files_of_plan(plan: synth.JobPlan) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) of every file of a job, as ``store_event``/``store_checkpoint``/... write.

    The keys come from :mod:`perstack_tui.keys` and the JSON is written as
    :func:`~perstack_tui.storage.base.dump_compact`/``dump_pretty`` do (the synthetic data
    holds no floats, so their JavaScript number rewrite, the slow part, has nothing to do).
    """
    for event in plan.events:
        yield (
            keys.event_key(
                plan.job_id, event["runId"], event["timestamp"], event["stepNumber"], event["type"]
            ),
            _compact(event),
        )
    for checkpoint in plan.checkpoints:
        yield keys.checkpoint_key(plan.job_id, checkpoint["id"]), _compact(checkpoint)
    for setting in plan.run_settings:
        yield keys.run_setting_key(plan.job_id, setting["runId"]), _compact(setting)
    if plan.job is not None:
        yield keys.job_key(plan.job_id), json.dumps(plan.job, indent=2).encode()


def _compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def write_plans(
    storage: KeyValueStorage, plans: Iterable[synth.JobPlan], concurrency: int = 32
) -> int:
    """Write every file of every job through ``storage.write_bytes``, many at once."""
    limit = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()
    count = 0

    async def one(key: str, data: bytes) -> None:
        async with limit:
            await storage.write_bytes(key, data)

    for plan in plans:
        for key, data in files_of_plan(plan):
            count += 1
            task = asyncio.create_task(one(key, data))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if len(pending) > concurrency * 8:  # keep memory flat: wait for the backlog
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.gather(*pending)
    return count


def ensure_fs(dataset: DataSet, log: Callable[[str], None] = print) -> Path:
    """The data set on disk, generated when missing (a ``.done`` marker makes it reusable)."""
    marker = dataset.path.with_suffix(".done")
    if marker.exists():
        return dataset.path
    dataset.path.parent.mkdir(parents=True, exist_ok=True)
    with dataset.path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be generating the same set
        if not marker.exists():
            _generate(dataset, marker, log)
    return dataset.path


def _generate(dataset: DataSet, marker: Path, log: Callable[[str], None]) -> None:
    if dataset.path.exists():
        shutil.rmtree(dataset.path)  # a half-written earlier attempt
    started = time.perf_counter()
    log(f"generating {dataset.name} into {dataset.path} ...")
    # Two processes, each writing every other job (plans are cheap to rebuild, writes not).
    with ProcessPoolExecutor(WORKERS) as pool:
        count = sum(pool.map(_write_share, [(dataset, share) for share in range(WORKERS)]))
    marker.write_text(f"{count} files\n")
    log(f"  {count} files in {time.perf_counter() - started:.1f} s")


WORKERS = 2


def _write_share(task: tuple[DataSet, int]) -> int:
    dataset, share = task
    plans = (p for i, p in enumerate(dataset.plans()) if i % WORKERS == share)
    return asyncio.run(write_plans(FileSystemStorage(dataset.path), plans))


def files_of(base: Path) -> list[tuple[str, Path]]:
    """Every (key, path) under a storage base directory."""
    found = []
    for folder, _dirs, names in os.walk(base):
        for name in names:
            path = Path(folder) / name
            found.append((path.relative_to(base).as_posix(), path))
    return found


def ensure_s3(
    dataset: DataSet, client: Any, bucket: str, log: Callable[[str], None] = print
) -> str:
    """The data set uploaded under ``{name}/`` in ``bucket``; returns the prefix."""
    prefix = f"{dataset.name}/"
    marker = f"{dataset.name}.done"
    try:
        client.head_object(Bucket=bucket, Key=marker)
        return prefix
    except client.exceptions.ClientError:
        pass
    base = ensure_fs(dataset, log)
    files = files_of(base)
    started = time.perf_counter()
    log(f"uploading {dataset.name} ({len(files)} objects) to s3://{bucket}/{prefix} ...")

    def put(item: tuple[str, Path]) -> None:
        client.put_object(Bucket=bucket, Key=prefix + item[0], Body=item[1].read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    client.put_object(Bucket=bucket, Key=marker, Body=b"done")
    log(f"  uploaded in {time.perf_counter() - started:.1f} s")
    return prefix
