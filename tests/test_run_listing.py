"""Opening a run: the filesystem lists a run folder's events in the listing's thread, from
its names, exactly as listing its keys and parsing them key by key does."""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from perstack_tui import keys
from perstack_tui.storage import base
from perstack_tui.storage.base import (
    NotFoundError,
    StorageError,
    event_metas_by_time,
    folder_event_metas,
)
from perstack_tui.storage.filesystem import FileSystemStorage

from .test_event_names import ODD_NAMES, canonical, reference_by_time

RUN = "jobs/job1/runs/run1/"
#: names a folder may hold (a file name holds no "/" and no NUL, in at most 255 bytes)
FILE_NAMES = [
    name for name in ODD_NAMES if name and "/" not in name and len(os.fsencode(name)) <= 255
]


def folder_names(rng: random.Random) -> list[str]:
    """A run folder's sorted file names: mostly canonical, sometimes odd ones too."""
    if rng.random() < 0.3:  # many events at the same millisecond
        timestamps = [1700000000000 + rng.randrange(3) for _ in range(3)]
    else:
        timestamps = [1700000000000 + rng.randrange(10**6) for _ in range(50)]
    names = {canonical(rng, timestamps) for _ in range(rng.randrange(0, 60))}
    if rng.random() < 0.5:
        names.update(rng.choice(FILE_NAMES) for _ in range(rng.randrange(1, 4)))
    return sorted(names)


@pytest.mark.parametrize("seed", range(10))
def test_a_folders_names_list_as_its_keys_parsed_key_by_key(seed: int):
    rng = random.Random(seed)
    for _ in range(200):
        names = folder_names(rng)
        expected = reference_by_time([RUN + name for name in names])
        assert folder_event_metas(RUN, names) == expected, names


@pytest.mark.parametrize("name", FILE_NAMES)
def test_each_odd_name_among_canonical_names_lists_as_key_by_key(name: str):
    rng = random.Random(repr(name))
    names = sorted({canonical(rng, [1700000000000, 1700000000001]) for _ in range(30)})
    for position in (0, len(names) // 2, len(names)):
        mixed = sorted({*names[:position], name, *names[position:]})
        assert folder_event_metas(RUN, mixed) == reference_by_time([RUN + n for n in mixed])


def test_a_folder_of_canonical_names_is_parsed_in_bulk():
    """Else the comparisons above would only ever test the per-key parse."""
    rng = random.Random(3)
    names = sorted({canonical(rng, list(range(1700000000000, 1700000001000))) for _ in range(300)})
    object_keys = [RUN + name for name in names]
    bulk = base._canonical_block("\n".join(names), object_keys)
    assert bulk is not None and bulk[0] == reference_by_time(object_keys)
    with_others = sorted([*names, "run-setting.json", "a.json", "zz"])
    assert folder_event_metas(RUN, with_others) == bulk[0]


def test_a_name_with_a_dash_too_many_beside_one_with_a_dash_too_few_is_parsed_per_key():
    """Together they hold as many "-" as two canonical names."""
    names = [
        "event-1700000000001-2.json",  # not an event
        "event-1700000000002-3-4-run.json",  # of type "4-run"
    ]
    assert base._canonical_block("\n".join(names), [RUN + n for n in names]) is None
    assert [m.type for m in folder_event_metas(RUN, names)] == ["4-run"]


@pytest.mark.parametrize("last", ["x.JSON", "x.jsonl", "x.js", "x.txt"])
def test_a_last_name_of_another_extension_lists_as_key_by_key(last: str):
    names = ["event-1700000000000-1-startRun.json", f"event-1700000000009-1-{last}"]
    assert folder_event_metas(RUN, names) == reference_by_time([RUN + n for n in names])


#: what an odd name may hold: the parts of canonical names, and what could fake them
FRAGMENTS = ["-", "1", "17", ".json", "\n", "\nevent-", "event", "a", ".", " ", "_", "\u0661"]


def edited(rng: random.Random, name: str) -> str:
    """A canonical name with a fragment put in, or a character taken out, somewhere."""
    for _ in range(rng.randrange(1, 3)):
        at = rng.randrange(len("event-"), len(name) + 1)
        if rng.random() < 0.7:
            name = name[:at] + rng.choice(FRAGMENTS) + name[at:]
        else:
            name = name[:at] + name[at + 1 :]
    return name


def test_canonical_names_edited_list_as_key_by_key():
    """Names a character away from canonical: as many "-" as canonical ones in all, a
    newline and "event" that look like the start of the next name, numbers int() takes with
    spaces or underscores: the bulk parse takes them as the per-key one, or leaves them."""
    rng = random.Random(17)
    bulk = 0
    for _ in range(3000):
        timestamps = [1700000000000 + i for i in range(3)]
        found = {canonical(rng, timestamps) for _ in range(rng.randrange(1, 6))}
        found |= {edited(rng, canonical(rng, timestamps)) for _ in range(rng.randrange(1, 3))}
        names = sorted(name for name in found if "/" not in name)
        object_keys = [RUN + name for name in names]
        assert folder_event_metas(RUN, names) == reference_by_time(object_keys), names
        bulk += base._canonical_block("\n".join(names), object_keys) is not None  # all event-
    assert bulk > 300  # the odd names the bulk parse takes are tested too


def make_run(base_dir: Path, names: list[str]) -> Path:
    run = base_dir / RUN
    run.mkdir(parents=True)
    for name in names:
        (run / name).write_text("{}")
    return run


async def test_filesystem_run_listing_is_its_key_listing_parsed(tmp_path: Path):
    """Folders, links to folders and dangling links are no events, whatever their names;
    a link to a file is one, as in the key listing."""
    rng = random.Random(11)
    names = sorted({canonical(rng, [1700000000000 + i for i in range(20)]) for _ in range(40)})
    run = make_run(tmp_path, [*names, "run-setting.json"])
    (run / "event-1700000000003-3-folder.json").mkdir()
    (run / "event-1700000000003-3-folder.json" / names[0]).write_text("{}")
    os.symlink(run / names[0], run / "event-1700000000004-4-link.json")
    os.symlink(run / "event-1700000000003-3-folder.json", run / "event-1700000000005-5-dir.json")
    os.symlink(run / "gone.json", run / "event-1700000000006-6-dangling.json")
    storage = FileSystemStorage(tmp_path)
    listed = await storage.list_keys(RUN)
    metas = await storage.list_event_metas("job1", "run1")
    assert metas == event_metas_by_time(listed) == reference_by_time(listed)
    found = {m.key.rpartition("/")[2] for m in metas}
    assert "event-1700000000004-4-link.json" in found and len(found) == len(names) + 1
    middle = metas[len(metas) // 2].key
    assert await storage.list_event_metas("job1", "run1", start_after=middle) == (
        event_metas_by_time(await storage.list_keys(RUN, start_after=middle))
    )


async def test_filesystem_run_listing_of_odd_names_is_its_key_listing_parsed(tmp_path: Path):
    rng = random.Random(5)
    names = sorted({canonical(rng, [1700000000000, 1700000000001]) for _ in range(20)})
    make_run(tmp_path, [*names, *FILE_NAMES])
    storage = FileSystemStorage(tmp_path)
    listed = await storage.list_keys(RUN)
    assert await storage.list_event_metas("job1", "run1") == reference_by_time(listed)


async def test_a_missing_run_folder_lists_no_events_and_a_file_in_its_place_neither(
    tmp_path: Path,
):
    storage = FileSystemStorage(tmp_path)
    assert await storage.list_event_metas("job1", "missing") == []
    (tmp_path / "jobs" / "job1" / "runs").mkdir(parents=True)
    (tmp_path / "jobs" / "job1" / "runs" / "file").write_text("")
    assert await storage.list_event_metas("job1", "file") == []


async def test_reading_what_is_not_a_regular_file_fails_at_once_naming_it(tmp_path: Path):
    """A FIFO or a folder where a file is expected (a job.json, an event) is no file: the
    read says so at once; a FIFO never holds its reader (nothing writes to it)."""
    run = make_run(tmp_path, [])
    os.mkfifo(run / "event-1700000000000-1-startRun.json")
    (run / "event-1700000000001-1-callTools.json").mkdir()
    storage = FileSystemStorage(tmp_path)
    for name in ("event-1700000000000-1-startRun.json", "event-1700000000001-1-callTools.json"):
        with pytest.raises(NotFoundError, match=re.escape(f"{name}: not a file")):
            await asyncio.wait_for(storage.read_bytes(RUN + name), timeout=5)
    with pytest.raises(NotFoundError, match=re.escape("gone.json: no such file")):
        await storage.read_bytes(RUN + "gone.json")


async def test_a_file_read_is_whole_though_it_grew_after_its_size_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    run = make_run(tmp_path, [])
    data = os.urandom(3 << 20)  # past the first read and a next one
    (run / "event-1700000000000-1-startRun.json").write_bytes(data)
    fstat = os.fstat

    def smaller(fd: int) -> os.stat_result:  # the size before the file grew
        info = list(fstat(fd))
        info[6] = 10  # st_size
        return os.stat_result(info)

    monkeypatch.setattr(os, "fstat", smaller)
    storage = FileSystemStorage(tmp_path)
    assert await storage.read_bytes(RUN + "event-1700000000000-1-startRun.json") == data


@pytest.mark.skipif(os.geteuid() == 0, reason="root may list any folder")
async def test_a_run_folder_that_may_not_be_listed_says_so(tmp_path: Path):
    run = make_run(tmp_path, ["event-1700000000000-1-startRun.json"])
    run.chmod(0)
    try:
        with pytest.raises(StorageError, match="permission denied"):
            await FileSystemStorage(tmp_path).list_event_metas("job1", "run1")
    finally:
        run.chmod(0o755)


async def test_real_runs_list_in_bulk_as_key_by_key(real_storage: FileSystemStorage):
    runs = 0
    for job_id in await real_storage.list_job_ids():
        for run_id in await real_storage.list_run_ids(job_id):
            listed = await real_storage.list_keys(keys.run_prefix(job_id, run_id))
            names = [key.rpartition("/")[2] for key in listed]
            events = [(n, k) for n, k in zip(names, listed, strict=True) if n.startswith("event-")]
            if events:  # Perstack's own names: the bulk parse takes them
                event_names, event_keys = zip(*events, strict=True)
                assert base._canonical_block("\n".join(event_names), list(event_keys))
            assert await real_storage.list_event_metas(job_id, run_id) == (
                reference_by_time(listed)
            )
            runs += 1
    assert runs >= 3


@pytest.mark.parametrize("ordered", [True, False], ids=["sorted", "as-listed"])
def test_a_listing_reads_as_its_parsed_list_by_index_slice_and_iteration(ordered: bool):
    """An :class:`~perstack_tui.storage.base.EventList` of canonical names answers every
    index, slice and step range as the list the per-key parse gives, however it is reached
    first, whether its names came sorted or as a folder lists them (a first page and the
    ends are picked without a sort); adding parses the rest and keeps the order."""
    rng = random.Random(5)
    for _ in range(300):
        timestamps = [1700000000000 + rng.randrange(10**6) for _ in range(40)]
        names = sorted({canonical(rng, timestamps) for _ in range(rng.randrange(1, 80))})
        if rng.random() < 0.2:  # a type holding "-": canonical, parsed per key in bulk's place
            names = sorted({*names, f"event-{timestamps[0]}-7-a-b.json"})
        if rng.random() < 0.1:  # a "." in the type ends it (Perstack's split): not canonical
            names = sorted({*names, f"event-{timestamps[1]}-4-a.b.json"})
        if rng.random() < 0.1:  # one name, two canonical lines: not canonical
            names = sorted(
                {*names, f"event-{timestamps[2]}-5-a.json\nevent-{timestamps[3]}-6-b.json"}
            )
        if rng.random() < 0.2:  # a run setting beside the events
            names = sorted({*names, "run-setting.json"})
        expected = reference_by_time([RUN + name for name in names])
        listed = names if ordered else rng.sample(names, len(names))
        events = folder_event_metas(RUN, listed, ordered=ordered)
        assert len(events) == len(expected)
        assert events.steps == (
            min(m.stepNumber for m in expected),
            max(m.stepNumber for m in expected),
        )
        first = rng.randrange(len(expected) + 2)
        assert events[0] == expected[0] and events[-1] == expected[-1]
        assert events[:first] == expected[:first]
        for _ in range(5):
            at = rng.randrange(-len(expected), len(expected))
            assert events[at] == expected[at]
            start, stop = sorted(rng.randrange(-len(expected), len(expected) + 2) for _ in "ab")
            assert events[start:stop] == expected[start:stop]
            assert events[start::3] == expected[start::3]
        taken = []
        for meta in events:
            taken.append(meta)
            if len(taken) == 1:
                added = expected[-1]._replace(timestamp=expected[-1].timestamp + 1, key="x")
                events.add(added)
                expected.append(added)
        assert taken == expected == list(reversed(events))[::-1]
        assert events == expected and len(events) == len(expected)
        early = expected[0]._replace(key=RUN + "event-0")  # first by time: first in the list
        events.add(early)
        assert events[0] == early and events[1:] == expected
    with pytest.raises(IndexError):
        folder_event_metas(RUN, [n for n in names if n.startswith("event-")])[len(names) + 5]


def test_opening_a_long_listing_parses_only_what_is_asked(monkeypatch: pytest.MonkeyPatch):
    """Count, ends, step range and the newest few of 10,000 canonical names: no bulk parse
    of them all (that waits for an iteration, which parses each name once)."""
    parsed: list[int] = []
    bulk = base._canonical_block
    monkeypatch.setattr(
        base, "_canonical_block", lambda text, block: parsed.append(len(block)) or bulk(text, block)
    )
    names = [f"event-{1700000000000 + i}-{i // 100}-streamReasoning.json" for i in range(10_000)]
    listed = random.Random(1).sample(names, len(names))  # as a folder lists them
    events = folder_event_metas(RUN, listed, ordered=False)
    assert (len(events), events[0].stepNumber, events[-1].key) == (10_000, 0, RUN + names[-1])
    assert [m.key for m in events[:40]] == [RUN + name for name in names[:40]]
    assert events.steps == (0, 99) and listed != names  # kept as listed: not sorted (yet)
    assert sum(parsed) <= 40
    assert len(events[-40:]) == 40
    assert sum(parsed) <= 80
    assert [m.key for m in events] == [RUN + name for name in names]
    assert sum(parsed) <= 10_080


async def test_a_run_folders_first_names_and_last_are_picked_in_its_listings_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A folder's first screen of names and its last are picked once, where it was listed
    (its names still in that thread's cache), not when the screen asks for them."""
    monkeypatch.setattr(base, "_FIRST_SLICE", 4)  # 40 names are then a long listing
    picked: list[threading.Thread] = []  # where the first names were picked
    greatest: list[threading.Thread] = []  # where the greatest of all the names was
    least_names = base._least_names

    def least(names: list[str], count: int) -> list[str]:
        picked.append(threading.current_thread())
        return least_names(names, count)

    def most(*args: Any, **kwargs: Any) -> Any:  # the builtin, looked up in base
        if len(args) == 1:
            greatest.append(threading.current_thread())
        return max(*args, **kwargs)

    monkeypatch.setattr(base, "_least_names", least)
    monkeypatch.setattr(base, "max", most, raising=False)
    names = [f"event-{1700000000000 + i}-{i // 4}-callTools.json" for i in range(40)]
    make_run(tmp_path, random.Random(3).sample(names, len(names)))
    events = await FileSystemStorage(tmp_path).list_event_metas("job1", "run1")
    done = [*picked, *greatest]
    assert len(done) == 2 and threading.main_thread() not in done
    assert [m.key for m in islice(events, 4)] == [RUN + name for name in names[:4]]
    assert (events[0].key, events[-1].key) == (RUN + names[0], RUN + names[-1])
    assert [*picked, *greatest] == done  # the screen and the ends: nothing picked again


def test_a_first_screen_of_a_long_listing_sorts_only_its_first_names():
    """Iterating the first few hundred of 10,000 names as a folder lists them sorts only the
    least of them (up to a pivot read off a sample); the rest are sorted when reached. Each
    position holds its event however the sample falls: spread over the names, or taken all
    from the least (then the whole listing is sorted at once)."""
    names = [f"event-{1700000000000 + i}-{i // 100}-streamReasoning.json" for i in range(10_000)]
    expected = [RUN + name for name in names]
    rng = random.Random(2)
    shuffled = rng.sample(names, len(names))
    least = iter(names[:257])  # a sample takes every 39th name: here the least of them all
    rest = iter(names[257:])
    misleading = [next(least) if i % 39 == 0 else next(rest) for i in range(len(names))]
    for listed, sorts_at_once in ((shuffled, False), (misleading, True)):
        events = folder_event_metas(RUN, listed, ordered=False)
        first_screen = [meta.key for _, meta in zip(range(700), events, strict=False)]
        assert first_screen == expected[:700]
        assert events[699].key == expected[699] and events[-1].key == expected[-1]
        assert (listed == names) is sorts_at_once  # the listing itself, sorted or not
        assert [meta.key for meta in events] == expected
        assert listed == names
