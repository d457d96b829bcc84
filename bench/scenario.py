"""One measurement per process (``run-app-pairs``: many, see there):
``python -m bench.scenario NAME JSON-PARAMS``.

Each scenario runs in a fresh interpreter so its peak RSS (VmHWM) is its own, and prints
one JSON line: ``{"seconds": ..., "rss_mb": ..., ...}``. Floors live here too, beside the
values they bound, so both are measured the same way on the same data.

Every scenario has a cache directory of its own (``PERSTACK_TUI_CACHE_DIR``), never the
user's: a fresh empty one (cold figures stay cold however often they repeat), a copy of a
prepared one (``"cache_from"``: a reopen with a warm job index), or a given one used as is
(``"cache_dir"``: the run that prepares that index).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: rows of a first screen (a 120x36 terminal shows about this many)
SCREEN = 40
#: the concurrency of KeyValueStorage.read_many, used by the read floors too
CONCURRENCY = 16

Params = dict[str, Any]
SCENARIOS: dict[str, Callable[[Params], Awaitable[dict[str, Any]]]] = {}


def scenario(name: str):  # type: ignore[no-untyped-def]
    def register(function):  # type: ignore[no-untyped-def]
        SCENARIOS[name] = function
        return function

    return register


def vm_hwm_mb() -> float:
    """This process's peak resident set size in MB (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def own_cache_dir(params: Params) -> Iterator[Path]:
    """Point ``PERSTACK_TUI_CACHE_DIR`` at this scenario's own cache directory (see the
    module docstring); a fresh one is removed afterwards."""
    from perstack_tui.index import CACHE_ENV

    given = params.get("cache_dir")
    if given:
        os.environ[CACHE_ENV] = given
        yield Path(given)
        return
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as fresh:
        if params.get("cache_from"):  # copied before the clock starts
            shutil.copytree(params["cache_from"], fresh, dirs_exist_ok=True)
        os.environ[CACHE_ENV] = fresh
        yield Path(fresh)


def index_counts() -> dict[str, int]:
    """Jobs, and finished jobs with a complete summary, in the job index files of this
    process's cache directory (read after the app has saved them)."""
    from perstack_tui.index import cache_dir

    jobs = summaries = 0
    folder = cache_dir()
    for path in (folder / "index").glob("*.json") if folder else ():
        with contextlib.suppress(OSError, ValueError):
            entries = json.loads(path.read_bytes()).get("jobs", {})
            jobs += len(entries)
            summaries += sum(1 for e in entries.values() if isinstance(e[2], dict))
    return {"index_jobs": jobs, "index_summaries": summaries}


# --- storages ---------------------------------------------------------------------------


def open_storage(spec: Params):  # type: ignore[no-untyped-def]
    """The project's storage for a spec: ``{"backend": "fs", "path"}`` or an S3 spec."""
    if spec["backend"] == "fs":
        from perstack_tui.storage.filesystem import FileSystemStorage

        return FileSystemStorage(spec["path"])
    from perstack_tui.config import StorageConfig
    from perstack_tui.storage.factory import create_storage

    return create_storage(
        StorageConfig(
            type="s3",
            bucket=spec["bucket"],
            region=spec.get("region", "us-east-1"),
            prefix=spec["prefix"],
            endpoint=spec["endpoint"],
            force_path_style=True,
            access_key_id=spec["access_key"],
            secret_access_key=spec["secret_key"],
        )
    )


def s3_client(spec: Params):  # type: ignore[no-untyped-def]
    """A bare boto3 client for the floors (pooled like the backend under test)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=spec["endpoint"],
        region_name=spec.get("region", "us-east-1"),
        aws_access_key_id=spec["access_key"],
        aws_secret_access_key=spec["secret_key"],
        config=Config(max_pool_connections=CONCURRENCY * 2, s3={"addressing_style": "path"}),
    )


def storage_stats(storage: Any) -> dict[str, Any]:
    """The S3 backend's request counters, as a plain dict (empty for other backends)."""
    stats = getattr(storage, "stats", None)
    if stats is None:
        return {}
    if hasattr(stats, "as_dict"):
        return dict(stats.as_dict())
    if isinstance(stats, dict):
        return dict(stats)
    return {k: v for k, v in vars(stats).items() if isinstance(v, int | float)}


class S3Counter:
    """Counts requests and response bytes of a boto3 client (for the floors)."""

    def __init__(self, client: Any) -> None:
        self.requests = 0
        self.bytes = 0
        client.meta.events.register("after-call.s3", self._count)

    def _count(self, http_response: Any = None, **_: Any) -> None:
        self.requests += 1
        if http_response is not None:
            self.bytes += int(http_response.headers.get("content-length") or 0)


# --- listing floors ---------------------------------------------------------------------


def read_file(path: str | os.PathLike[str]) -> bytes:
    """A file's bytes with the bare calls (open, fstat, read), the quickest read Python
    has (a file object is ~40% of the cost of reading a small file): the app's filesystem
    storage reads so, and a floor reads no slower than the app it bounds."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, os.fstat(fd).st_size + 1)
    finally:
        os.close(fd)


def scandir_walk(root: str) -> int:
    """The fastest raw listing of a tree: names only, d_type from readdir, no stat."""
    count = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    count += 1
    return count


def s3_list_all(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """A bare ListObjectsV2 loop (no delimiter), as Perstack lists."""
    objects: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if token:
            kwargs["ContinuationToken"] = token
        page = client.list_objects_v2(**kwargs)
        objects.extend(page.get("Contents", []))
        if not page.get("IsTruncated"):
            return objects
        token = page["NextContinuationToken"]


@scenario("list-floor")
async def list_floor(p: Params) -> dict[str, Any]:
    """Raw listing of every key under the jobs list's prefix (or a run's)."""
    spec, sub = p["storage"], p.get("sub", "jobs/")
    started = time.perf_counter()
    if spec["backend"] == "fs":
        count = scandir_walk(os.path.join(spec["path"], sub))
        extra: dict[str, Any] = {}
    else:
        client = s3_client(spec)
        counter = S3Counter(client)
        started = time.perf_counter()
        count = len(s3_list_all(client, spec["bucket"], spec["prefix"] + sub))
        extra = {"requests": counter.requests, "bytes": counter.bytes}
    return {"seconds": time.perf_counter() - started, "keys": count, **extra}


@scenario("perstack-jobs")
async def perstack_jobs(p: Params) -> dict[str, Any]:
    """Perstack's getAllJobs: list the whole prefix, then read each job.json in turn."""
    spec = p["storage"]
    started = time.perf_counter()
    jobs = []
    if spec["backend"] == "fs":
        base = os.path.join(spec["path"], "jobs")
        for name in os.listdir(base):
            try:
                with open(os.path.join(base, name, "job.json"), "rb") as file:
                    jobs.append(json.loads(file.read()))
            except FileNotFoundError:
                continue
        extra: dict[str, Any] = {}
    else:
        client = s3_client(spec)
        counter = S3Counter(client)
        started = time.perf_counter()
        listed = s3_list_all(client, spec["bucket"], spec["prefix"] + "jobs/")
        for obj in listed:
            if obj["Key"].endswith("/job.json"):
                body = client.get_object(Bucket=spec["bucket"], Key=obj["Key"])["Body"].read()
                jobs.append(json.loads(body))
        extra = {"requests": counter.requests, "bytes": counter.bytes}
    jobs.sort(key=lambda j: -j["startedAt"])
    return {"seconds": time.perf_counter() - started, "jobs": len(jobs), **extra}


# --- jobs list ----------------------------------------------------------------------------


@scenario("jobs-engine")
async def jobs_engine(p: Params) -> dict[str, Any]:
    """The engine path of the jobs list: every job newest first (one scan), one screen
    of them completed (expert and usage read)."""
    from perstack_tui.catalog import Catalog

    storage = open_storage(p["storage"])
    started = time.perf_counter()
    catalog = Catalog(storage)
    summaries = await catalog.scan_jobs()
    ids = [s.id for s in summaries]
    first = await catalog.jobs(ids[:SCREEN])
    seconds = time.perf_counter() - started
    stats = storage_stats(storage)
    await storage.close()
    return {"seconds": seconds, "jobs": len(ids), "rows": len(first), **stats}


async def _wait(condition: Callable[[], bool], deadline: float, every: float = 0.005) -> bool:
    """Let the app run until ``condition`` holds (False when ``deadline`` passes first).

    Polled ``every`` so often with a bare ``asyncio.sleep``: ``Pilot.pause`` would post a
    message to every widget and refresh the screen each time, load that the measured app
    does not have on its own (a tenth of the jobs list's first-visit figure). A cheap
    condition is polled more often: the time it is seen to hold is late by up to ``every``,
    and work the app puts off until then is counted within it.
    """
    limit = time.perf_counter() + deadline
    while not condition():
        if time.perf_counter() > limit:
            return False
        await asyncio.sleep(every)
    return True


@scenario("jobs-app")
async def jobs_app(p: Params) -> dict[str, Any]:
    """The real app, headless: time from start until the jobs list shows rows.

    Four moments: rows (ids listed, id order), rows newest first (``_ordered``: right after
    the id listing when the job index knows the jobs, else when the one-listing scan is
    over), the first screen filled (the visible rows checked against a listing, expert and
    tokens known), and every summary complete. The clock starts before the app is built,
    so loading the job index counts. With ``"cache_from"`` (a warm index) this is a reopen.
    """
    from perstack_tui.tui.app import PerstackApp

    storage = open_storage(p["storage"])
    deadline = p.get("deadline", 300.0)
    marks: dict[str, Any] = {}
    started = time.perf_counter()
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 36)):

        def jobs_screen() -> Any:
            screen = app.screen
            return screen if hasattr(screen, "order") and hasattr(screen, "list") else None

        def listed() -> bool:
            screen = jobs_screen()
            return screen is not None and screen._ids_listed.is_set()

        def rows() -> bool:
            screen = jobs_screen()
            return screen is not None and screen.list.row_count > 0

        def complete(job_id: str) -> bool:
            summary = app.catalog.cached_job(job_id)
            return (
                summary is not None
                and getattr(summary, "checked", True)
                and not getattr(summary, "partial", False)
            )

        def newest_first() -> bool:
            screen = jobs_screen()
            # the app before the job index had only `_scanned`; before the scan, nothing
            ordered = getattr(screen, "_ordered", None) or getattr(screen, "_scanned", None)
            if ordered is None:
                return all_loaded()
            return ordered.is_set() and screen.list.row_count > 0

        def first_screen() -> bool:
            screen = jobs_screen()
            if screen is None or not screen.order:
                return False
            first, last = screen.list.visible_range
            return all(complete(j) for j in screen.order[first : max(last, first + 1)])

        def all_loaded() -> bool:
            screen = jobs_screen()
            if screen is None or not screen.order or screen._pending:
                return False
            scanned = getattr(screen, "_scanned", None)
            return (scanned is None or scanned.is_set()) and all(map(complete, screen.job_ids))

        if p.get("empty"):
            marks["ok"] = await _wait(listed, deadline)
            marks["seconds"] = time.perf_counter() - started
        else:
            marks["ok"] = await _wait(rows, deadline)
            marks["rows_s"] = time.perf_counter() - started
            marks["ok"] &= await _wait(newest_first, deadline)
            marks["sorted_s"] = time.perf_counter() - started
            marks.update({f"sorted_{k}": v for k, v in storage_stats(storage).items()})
            marks["ok"] &= await _wait(first_screen, deadline)
            marks["seconds"] = marks["first_screen_s"] = time.perf_counter() - started
            marks["rss_first_screen_mb"] = round(vm_hwm_mb(), 1)
            marks["rows_shown"] = jobs_screen().list.row_count
            stats = storage_stats(storage)
            marks.update({f"first_{k}": v for k, v in stats.items()})
            if p.get("all", True):
                marks["ok"] &= await _wait(all_loaded, deadline)
                marks["all_loaded_s"] = time.perf_counter() - started
                marks.update({f"all_{k}": v for k, v in storage_stats(storage).items()})
    marks.update(index_counts())  # what the app saved on exit
    return marks


# --- a long run ---------------------------------------------------------------------------


@scenario("run-engine")
async def run_engine(p: Params) -> dict[str, Any]:
    """Open a run: list its event names, read the first screen of events.

    In a running engine: its worker threads are started before the clock, as every path
    that opens a run has used them already (the app's jobs list, ``log`` finding the job);
    starting the first costs ~1.5 ms here, which the floor (no thread) would not pay.
    """
    storage = open_storage(p["storage"])
    await asyncio.to_thread(int)
    started = time.perf_counter()
    metas = await storage.list_event_metas(p["job"], p["run"])
    events = await storage.read_events([m.key for m in metas[:SCREEN]])
    seconds = time.perf_counter() - started
    stats = storage_stats(storage)
    await storage.close()
    return {"seconds": seconds, "events": len(metas), "read": len(events), **stats}


@scenario("run-app")
async def run_app(p: Params) -> dict[str, Any]:
    """The real app, headless, on the run's job: time from opening the job screen until its
    first screen of rows is shown (painted) with those rows' events read, measured once the
    jobs list is done with the job."""
    from perstack_tui.tui.app import PerstackApp

    storage = open_storage(p["storage"])
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()

        def summarized() -> bool:  # the jobs list done with the job: nothing else runs
            summary = app.catalog.cached_job(p["job"])
            warmed = getattr(app.screen, "warmed_up", None)  # as a user reads the list
            return summary is not None and summary.complete and (warmed is None or warmed.is_set())

        if not await _wait(summarized, 60.0):
            return {"error": "run-app: the jobs list did not summarize the job"}

        listed: list[float] = []  # when the job's runs were listed (the screen is built then)
        runs = app.catalog.runs

        async def timed_runs(job_id: str) -> Any:
            found = await runs(job_id)
            listed.append(time.perf_counter() - started)
            return found

        app.catalog.runs = timed_runs  # type: ignore[method-assign]

        def shown() -> bool:
            screen = app.screen
            rows = getattr(screen, "rows", None)
            if not rows or not screen.is_mounted:
                return False
            first, last = screen.events_list.visible_range
            wanted = [r.key for r in rows[first:last]]
            return bool(wanted) and all(key in screen.events for key in wanted)

        pushed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        push_screen = app.push_screen

        def push(screen: Any, *args: Any, **kwargs: Any) -> Any:  # the job screen, unmounted
            if not pushed.done():
                pushed.set_result(screen)
            return push_screen(screen, *args, **kwargs)

        app.push_screen = push  # type: ignore[method-assign]
        started, cpu = time.perf_counter(), time.process_time()
        app.open_job(p["job"])
        ended = await _first_screen(app, pushed, shown)
        ok = ended is not None
        ended = ended or (time.perf_counter(), time.process_time(), 0)
        seconds, cpu, rows = ended[0] - started, ended[1] - cpu, ended[2]
        read = list(getattr(app.screen, "events", {}))
    if p.get("keys_out"):  # for run-app-floor: the same files
        Path(p["keys_out"]).write_text(json.dumps(read))
    stats = storage_stats(storage)
    return {
        "seconds": seconds,
        "listed_s": listed[0] if listed else seconds,
        "cpu_s": cpu,
        "ok": ok,
        "rows": rows,
        "read": len(read),
        **stats,
    }


async def _first_screen(
    app: Any, pushed: asyncio.Future[Any], shown: Callable[[], bool]
) -> tuple[float, float, int] | None:
    """When the job screen ``pushed`` showed its first screen with the events of the rows
    on it read (``shown()``): the moment the screen says it is painted (sets its
    ``shown``), waited for without polling; else (the events took longer than the screen
    waits for them: S3) once polling sees them read, and their paint is made. Its
    ``perf_counter`` and ``process_time``, and the rows the screen had made when it was
    first painted; ``None`` if not within a minute.

    A poll every millisecond wakes the app's process a thousand times a second, and each
    wake-up takes the interpreter from the listing's thread (~1 ms more for 10,000 events):
    load the app does not have on its own. The moment is taken as ``shown`` is set, not
    when this wakes up: the screen's next work (the rest of the rows) may run first."""
    try:
        screen = await asyncio.wait_for(pushed, 60.0)
    except TimeoutError:
        return None
    painted: list[tuple[float, float, int, bool]] = []  # when, and whether shown() held

    def mark(set_shown: Callable[[], None] = screen.shown.set) -> None:  # the first paint
        painted.append((time.perf_counter(), time.process_time(), len(screen.rows), shown()))
        set_shown()

    screen.shown.set = mark
    try:
        await asyncio.wait_for(screen.shown.wait(), 60.0)
    except TimeoutError:
        return None
    seconds, cpu, rows, read = painted[0]
    if read:
        return seconds, cpu, rows
    # the rows on screen only: cheap; then painted, with whatever layout the rows asked for
    # (the screen's callbacks after a refresh run once nothing is left to lay out or paint)
    if await _wait(shown, 60.0, every=0.001) and await app.screen.wait_for_refresh():
        return time.perf_counter(), time.process_time(), rows
    return None


@scenario("run-app-pairs")
async def run_app_pairs(p: Params) -> dict[str, Any]:
    """run-app on two runs (``runs``) in one process, a fresh app each time, ``pairs`` times
    in turn (ABBA: neither goes first more often), after one unmeasured opening of each
    (the process's first: imports and Textual's own first-time work, the same for both).

    For the difference between the two openings: a pair a fraction of a second apart in
    one process, where fresh processes each add this VM's spread to a ~130 ms opening (a
    fixed pure-Python workload takes 70-130 ms here from one run to the next).

    Each opening is followed by its floor (run-app-floor on ``keys_files``, each run's, as
    run-app writes them) in this process: ``floor_s``, what the floor takes in a process
    that holds apps, for comparison with the bare one."""
    runs, keys_files = p["runs"], p["keys_files"]
    order = [0, 1]  # the unmeasured openings
    for pair in range(p["pairs"]):
        order += (0, 1) if pair % 2 == 0 else (1, 0)
    results: list[list[dict[str, Any]]] = [[], []]
    for which in order:
        gc.collect()  # what the apps before left: not collected within the next one's opening
        result = await run_app(runs[which])
        if "error" in result or not result.get("ok"):
            return {"error": result.get("error", "run-app-pairs: the first screen never showed")}
        floor = await run_app_floor({**runs[which], "keys_file": keys_files[which]})
        result["floor_s"] = floor["seconds"]
        results[which].append(result)
    return {
        name: [[r[name] for r in measured[1:]] for measured in results]
        for name in ("seconds", "listed_s", "floor_s")
    }


@scenario("run-app-floor")
async def run_app_floor(p: Params) -> dict[str, Any]:
    """run-app's floor: raw listing of the run's keys plus raw reads of the files the app
    read for its first screen (``keys_file``, written by run-app), as run-floor reads."""
    wanted = [key.rpartition("/")[2] for key in json.loads(Path(p["keys_file"]).read_text())]
    return _list_and_read(p, lambda names: wanted)


@scenario("run-floor")
async def run_floor(p: Params) -> dict[str, Any]:
    """Raw listing of the run's keys plus raw reads of one screen."""
    return _list_and_read(p, lambda names: names[:SCREEN])


def _list_and_read(p: Params, pick: Callable[[list[str]], list[str]]) -> dict[str, Any]:
    """Raw listing of the run's folder, then raw reads of the names ``pick`` takes from it,
    with the concurrency the storage reads a screen with: on the filesystem in one thread
    (its ``read_many`` reads up to 1,024 files a thread: from the page cache, 40 small files
    take ~0.5-1 ms in one thread, ~5 ms in a pool of 16), on S3 16 at once
    (``KeyValueStorage.read_many``)."""
    spec = p["storage"]
    sub = f"jobs/{p['job']}/runs/{p['run']}/"
    if spec["backend"] == "fs":
        folder = os.path.join(spec["path"], sub)
        started = time.perf_counter()
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries)
        blobs = []
        for name in pick(names):
            blobs.append(read_file(os.path.join(folder, name)))
        return {"seconds": time.perf_counter() - started, "events": len(names), "read": len(blobs)}
    client = s3_client(spec)
    counter = S3Counter(client)
    folder = spec["prefix"] + sub
    started = time.perf_counter()
    listed = s3_list_all(client, spec["bucket"], folder)
    chosen = pick([o["Key"][len(folder) :] for o in listed])
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        blobs = list(
            pool.map(
                lambda n: client.get_object(Bucket=spec["bucket"], Key=folder + n)["Body"].read(),
                chosen,
            )
        )
    return {
        "seconds": time.perf_counter() - started,
        "events": len(listed),
        "read": len(blobs),
        "requests": counter.requests,
        "bytes": counter.bytes,
    }


# --- the big checkpoint -------------------------------------------------------------------


def _biggest_checkpoint(base: str, job: str) -> str:
    folder = Path(base) / "jobs" / job / "checkpoints"
    return max(folder.iterdir(), key=lambda f: f.stat().st_size).stem


@scenario("checkpoint-engine")
async def checkpoint_engine(p: Params) -> dict[str, Any]:
    """Open the 20 MB checkpoint: read and parse into the model."""
    from perstack_tui.models import Checkpoint

    storage = open_storage(p["storage"])
    checkpoint_id = _biggest_checkpoint(p["storage"]["path"], p["job"])
    started = time.perf_counter()
    checkpoint = await storage.read_checkpoint(p["job"], checkpoint_id)
    seconds = time.perf_counter() - started
    assert isinstance(checkpoint, Checkpoint), checkpoint
    return {"seconds": seconds, "messages": len(checkpoint.messages)}


@scenario("checkpoint-app")
async def checkpoint_app(p: Params) -> dict[str, Any]:
    """The TUI's checkpoint screen on the big checkpoint: time to its first view, and the
    longest the event loop stalled meanwhile (the app's responsiveness)."""
    from perstack_tui.tui.app import PerstackApp
    from perstack_tui.tui.screens.checkpoint import CheckpointScreen

    storage = open_storage(p["storage"])
    checkpoint_id = _biggest_checkpoint(p["storage"]["path"], p["job"])
    app = PerstackApp(storage)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        stalls: list[float] = []
        stop = asyncio.Event()

        async def watch_loop() -> None:
            while not stop.is_set():
                tick = time.perf_counter()
                await asyncio.sleep(0.005)
                stalls.append(time.perf_counter() - tick - 0.005)

        watcher = asyncio.create_task(watch_loop())
        screen = CheckpointScreen(app.catalog, p["job"], checkpoint_id)
        started = time.perf_counter()
        await app.push_screen(screen)
        ok = await _wait(lambda: screen.checkpoint is not None and not screen.is_loading, 60.0)
        await pilot.pause()  # the first render of what was loaded
        seconds = time.perf_counter() - started
        stop.set()
        await watcher
    return {"seconds": seconds, "ok": ok, "max_stall_s": max(stalls, default=0.0)}


@scenario("checkpoint-floor")
async def checkpoint_floor(p: Params) -> dict[str, Any]:
    """Raw read of the same bytes plus json.loads."""
    checkpoint_id = _biggest_checkpoint(p["storage"]["path"], p["job"])
    path = Path(p["storage"]["path"]) / "jobs" / p["job"] / "checkpoints" / f"{checkpoint_id}.json"
    started = time.perf_counter()
    value = json.loads(read_file(path))
    return {"seconds": time.perf_counter() - started, "messages": len(value["messages"])}


# --- live tail ------------------------------------------------------------------------------


def _tail_event(job: str, run: str, timestamp: int, step: int) -> tuple[str, bytes]:
    from perstack_tui import keys

    event = {"type": "streamReasoning", "id": f"tail{timestamp}", "expertKey": "bench",
             "timestamp": timestamp, "jobId": job, "runId": run, "stepNumber": step,
             "delta": "more reasoning "}  # fmt: skip
    return keys.event_key(job, run, timestamp, step, "streamReasoning"), json.dumps(
        event, separators=(",", ":")
    ).encode()


@scenario("tail-poll")
async def tail_poll(p: Params) -> dict[str, Any]:
    """Per-poll cost of a live tail over a run with N existing events.

    The follower catches up once; then, ``polls`` times, one new event is written (by a
    separate client, not counted) and one poll is counted. The new events are deleted after.
    """
    from perstack_tui.follow import JobFollower

    spec, job, run = p["storage"], p["job"], p["run"]
    storage = open_storage(spec)
    writer = open_storage(spec)
    follower = JobFollower(storage, job, lookback_ms=p.get("lookback_ms", 3000))
    await follower.poll()  # catch up on the existing events
    metas = await writer.list_event_metas(job, run)
    clock, step = metas[-1].timestamp + 10_000, metas[-1].stepNumber
    before = storage_stats(storage)
    written: list[str] = []
    seen = 0
    started = time.perf_counter()
    try:
        for index in range(p.get("polls", 5)):
            key, data = _tail_event(job, run, clock + index * 1000, step)
            await writer.write_bytes(key, data)
            written.append(key)
            update = await follower.poll()
            seen += len(update.new_events)
        seconds = (time.perf_counter() - started) / max(1, len(written))
        after = storage_stats(storage)
    finally:
        await _delete(spec, written)
        await storage.close()
        await writer.close()
    polls = max(1, len(written))
    per_poll = {k: (after.get(k, 0) - before.get(k, 0)) / polls for k in after}
    return {"seconds": seconds, "existing": len(metas), "seen": seen, **per_poll}


@scenario("tail-latency")
async def tail_latency(p: Params) -> dict[str, Any]:
    """Time from an event file being complete to the follower yielding it, over ``events`` writes.

    The follower runs its real loop (``updates()``: file-system notifications on a directory,
    polling every ``interval`` on S3). Writes are spread at irregular gaps so they do not line
    up with the poll phase. Floor: one raw read of the same new object right after writing it.
    """
    import random
    import statistics

    from perstack_tui.follow import JobFollower

    spec, job, run = p["storage"], p["job"], p["run"]
    interval = p.get("interval", 1.0)
    storage = open_storage(spec)
    writer = open_storage(spec)
    metas = await writer.list_event_metas(job, run)
    clock, step = metas[-1].timestamp + 20_000, metas[-1].stepNumber
    follower = JobFollower(storage, job, interval=interval, seen={run: metas})
    received: dict[str, float] = {}

    async def follow() -> None:
        async for update in follower.updates():
            now = time.perf_counter()
            for event in update.new_events:
                received.setdefault(getattr(event, "id", ""), now)

    task = asyncio.create_task(follow())
    latencies: list[float] = []
    floors: list[float] = []
    written: list[str] = []
    gaps = random.Random(7)
    try:
        await asyncio.sleep(interval)  # the follower has caught up with the existing events
        for index in range(p.get("events", 10)):
            key, data = _tail_event(job, run, clock + index * 1000, step)
            await writer.write_bytes(key, data)
            done = time.perf_counter()
            written.append(key)
            started = time.perf_counter()
            await writer.read_bytes(key)
            floors.append(time.perf_counter() - started)
            event_id = json.loads(data)["id"]
            deadline = done + 10 * interval + 5
            while event_id not in received and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            if event_id in received:
                latencies.append(received[event_id] - done)
            await asyncio.sleep(gaps.uniform(0.05, interval))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await _delete(spec, written)
        await storage.close()
        await writer.close()
    return {
        "seconds": statistics.median(latencies) if latencies else None,
        "max_seconds": max(latencies) if latencies else None,
        "floor_seconds": statistics.median(floors) if floors else None,
        "seen": len(latencies),
        "written": len(written),
    }


async def _delete(spec: Params, written: list[str]) -> None:
    if not written:
        return
    if spec["backend"] == "fs":
        for key in written:
            Path(spec["path"], key).unlink(missing_ok=True)
        return
    client = s3_client(spec)
    client.delete_objects(
        Bucket=spec["bucket"],
        Delete={"Objects": [{"Key": spec["prefix"] + k} for k in written]},
    )


@scenario("tail-memory")
async def tail_memory(p: Params) -> dict[str, Any]:
    """Peak RSS over a tail of N events written in batches into a fresh directory.

    The writer writes files directly (not through the storage, so its cache is not
    counted); the follower reads every event once; the caller keeps only a count.
    """
    import tempfile

    from perstack_tui.follow import JobFollower
    from perstack_tui.storage.filesystem import FileSystemStorage

    total, batch = p.get("events", 50_000), p.get("batch", 2_000)
    job, run = "tailjob0000000000000000000", "tailrun0000000000000000000"
    seen = 0
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as base:
        storage = FileSystemStorage(base)
        follower = JobFollower(storage, job, lookback_ms=0)
        folder = Path(base, "jobs", job, "runs", run)
        folder.mkdir(parents=True)
        rss_start = vm_hwm_mb()
        started = time.perf_counter()
        clock = 1_790_000_000_000
        for first in range(0, total, batch):
            for index in range(first, min(total, first + batch)):
                key, data = _tail_event(job, run, clock + index, 1 + index // 1000)
                Path(base, key).write_bytes(data)
            update = await follower.poll()
            seen += len(update.new_events)
        while seen < total:  # stragglers of the last batch
            update = await follower.poll()
            if not update.new_events:
                break
            seen += len(update.new_events)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "seen": seen, "rss_start_mb": round(rss_start, 1)}


# --- log ------------------------------------------------------------------------------------


def raw_log(base: str, job: str) -> int:
    """The floor of ``log --json --take 0``: read every event of a job, parse, write JSON."""
    folder = Path(base, "jobs", job, "runs")
    paths = sorted(p for run in folder.iterdir() for p in run.iterdir() if p.name[:6] == "event-")

    def load(path: Path) -> Any:
        try:
            return json.loads(read_file(path))
        except ValueError:
            return None

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        events = [e for e in pool.map(load, paths) if e is not None]
    events.sort(key=lambda e: e.get("timestamp", 0))
    out = sys.stdout
    out.write(json.dumps({"events": events}))
    out.flush()
    return len(events)


@scenario("empty")
async def empty(p: Params) -> dict[str, Any]:
    """Nothing: the interpreter's own baseline RSS."""
    return {"seconds": 0.0}


def main(argv: list[str]) -> int:
    if argv[0] == "raw-log":  # prints the events: no JSON result line
        raw_log(argv[1], argv[2])
        return 0
    name, params = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    with own_cache_dir(params):
        result = asyncio.run(SCENARIOS[name](params))
    result["rss_mb"] = round(vm_hwm_mb(), 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
