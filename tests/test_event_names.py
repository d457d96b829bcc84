"""Event listings parsed in bulk give exactly what the per-key parse and sort give."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from perstack_tui import keys
from perstack_tui.models import EventMeta
from perstack_tui.storage.base import (
    _canonical_event_metas,
    event_metas,
    event_metas_by_time,
)
from perstack_tui.storage.filesystem import FileSystemStorage

RUN = "jobs/job1/runs/run1/"
TYPES = ["startRun", "callTools", "resolveToolResults", "completeRun", "streamReasoning", ""]


def reference(object_keys: list[str]) -> list[EventMeta]:
    """The definition: keys.parse_event_name on each name, in the order given."""
    metas = []
    for key in object_keys:
        name = keys.parse_event_name(key.rpartition("/")[2])
        if name is not None:
            metas.append(EventMeta(*name, key))
    return metas


def reference_by_time(object_keys: list[str]) -> list[EventMeta]:
    return sorted(reference(object_keys), key=lambda m: (m.timestamp, m.key))


def canonical(rng: random.Random, timestamps: list[int]) -> str:
    return f"event-{rng.choice(timestamps)}-{rng.randrange(0, 400)}-{rng.choice(TYPES)}.json"


# names a listing may hold that are not canonical: other files, names that do not parse,
# and names that parse but only the per-key way (int() takes more than ASCII digits)
ODD_NAMES = [
    "run-setting.json",
    "checkpoint.json",
    "event.json",
    "event-.json",
    "event-1-2.json",
    "event-1--x.json",
    "event--1-x.json",
    "event-abc-1-x.json",
    "event-1700000000000-1-stop-run.json",
    "event-1700000000000-1-a.b.json",
    "event-1700000000000-1-a.json.json",
    "event-1700000000000-1-x",
    "event-1700000000000-1-callTools",
    "event-1700000000000-1-x.JSON",
    "event-1700000000000-1-x.json.bak",
    "event-1700000000000-1-x-.json",
    "event-1700000000000-2-x-1700000000001-3-y.json",
    "event-1700000000000-2-x-\n-y.json",
    "event-1700000000000-2-a\nb.json",
    "event- 1700000000000-1-x.json",
    "event-+1700000000000-1-x.json",
    "event-1_700_000_000_000-1-x.json",
    "event-\u0661\u0662\u0663-1-x.json",
    "event-1700000000000-\u0663-x.json",
    "event-\udcff-1-x.json",
    "event-" + "9" * 5000 + "-1-x.json",
    "event-1-2-x.json",
    "event-17000000000000000-2-x.json",
    "event-0001700000000-3-x.json",
    "eventx-1-2-x.json",
    "",
]
# keys that are not directly in the run's folder
ODD_KEYS = [
    "jobs/job1/runs/run0/event-1700000000500-1-callTools.json",
    "jobs/job1/runs/run9/event-1600000000000-1-callTools.json",
    RUN + "sub/event-1700000000500-1-callTools.json",
    RUN + "event-1700000000000-1-sub/callTools.json",
    "event-1700000000500-1-callTools.json",
    "jobs/job1/runs/run1",
]


def listing(rng: random.Random) -> list[str]:
    """A run's listing: mostly canonical names, sometimes odd names and odd keys."""
    if rng.random() < 0.3:  # many events at the same millisecond
        timestamps = [1700000000000 + rng.randrange(3) for _ in range(3)]
    else:
        timestamps = [1700000000000 + rng.randrange(10**6) for _ in range(50)]
    found = [RUN + canonical(rng, timestamps) for _ in range(rng.randrange(0, 60))]
    if rng.random() < 0.5:
        found += [RUN + rng.choice(ODD_NAMES) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.2:
        found += rng.sample(ODD_KEYS, rng.randrange(1, 3))
    if found and rng.random() < 0.2:
        found.append(rng.choice(found))  # a duplicate
    if rng.random() < 0.9:
        found.sort()
    else:
        rng.shuffle(found)
    return found


@pytest.mark.parametrize("seed", range(20))
def test_bulk_parse_equals_the_per_key_parse_on_generated_listings(seed: int):
    rng = random.Random(seed)
    for _ in range(100):
        found = listing(rng)
        assert event_metas(found) == reference(found), found
        assert event_metas_by_time(found) == reference_by_time(found), found


@pytest.mark.parametrize("name", ODD_NAMES)
def test_each_odd_name_among_canonical_ones_parses_as_the_per_key_parse(name: str):
    rng = random.Random(repr(name))
    found = sorted({RUN + canonical(rng, [1700000000000, 1700000000001]) for _ in range(30)})
    for position in (0, len(found) // 2, len(found)):
        mixed = [*found[:position], RUN + name, *found[position:]]
        for object_keys in (sorted(mixed), mixed):
            assert event_metas(object_keys) == reference(object_keys)
            assert event_metas_by_time(object_keys) == reference_by_time(object_keys)


@pytest.mark.parametrize("key", ODD_KEYS)
def test_a_key_outside_the_run_folder_parses_as_the_per_key_parse(key: str):
    rng = random.Random(key)
    found = sorted({RUN + canonical(rng, [1700000000000 + i for i in range(9)]) for _ in range(30)})
    for object_keys in (sorted([*found, key]), [*found, key]):
        assert event_metas(object_keys) == reference(object_keys)
        assert event_metas_by_time(object_keys) == reference_by_time(object_keys)


def test_a_name_with_a_dash_too_few_and_one_with_a_dash_too_many_parse_as_per_key():
    """Together they hold as many "-" as two canonical names, and in between every piece
    that becomes a number is a number."""
    found = [
        RUN + name
        for name in [
            "event-1700000000000-1-startRun.json",
            "event-1700000000001-2.json",  # not an event
            "event-1700000000002-3-4.json",  # of type "4"
            "event-1700000000003-5-6-run.json",  # of type "6-run"
        ]
    ]
    assert event_metas(found) == reference(found)
    assert [m.type for m in event_metas_by_time(found)] == ["startRun", "4", "6-run"]


def test_canonical_listings_take_the_bulk_path():
    """Else the comparisons above would only ever test the per-key parse."""
    rng = random.Random(7)
    found = sorted(
        {RUN + canonical(rng, list(range(1700000000000, 1700000009999))) for _ in range(500)}
    )
    assert _canonical_event_metas(found) == (reference(found), True)
    with_setting = sorted([*found, RUN + "run-setting.json", RUN + "a.json"])
    assert _canonical_event_metas(with_setting) == (reference(with_setting), True)
    assert _canonical_event_metas(found[::-1]) is None  # not sorted: per key


def test_timestamps_of_other_widths_are_sorted_by_value_not_text():
    found = sorted(
        RUN + name
        for name in [
            "event-1700000000000-1-startRun.json",
            "event-999999999999-1-startRun.json",  # 12 digits: sorts after as text
            "event-17000000000001-2-callTools.json",  # 14 digits
            "event-1700000000000-0-callTools.json",  # same millisecond: by key
        ]
    )
    assert _canonical_event_metas(found) == (reference(found), False)  # bulk, not sorted
    assert [m.key.rpartition("/")[2] for m in event_metas_by_time(found)] == [
        "event-999999999999-1-startRun.json",
        "event-1700000000000-0-callTools.json",
        "event-1700000000000-1-startRun.json",
        "event-17000000000001-2-callTools.json",
    ]


def test_an_iterable_of_keys_is_parsed_like_a_list():
    found = [RUN + "event-1700000000001-1-callTools.json", RUN + "run-setting.json"]
    assert event_metas(iter(found)) == event_metas(found) == reference(found)


async def test_real_runs_list_as_the_per_key_parse_and_sort(real_storage: FileSystemStorage):
    runs = 0
    for job_id in await real_storage.list_job_ids():
        for run_id in await real_storage.list_run_ids(job_id):
            found = await real_storage.list_keys(keys.run_prefix(job_id, run_id))
            assert found == sorted(found) and found
            expected = reference_by_time(found)
            assert await real_storage.list_event_metas(job_id, run_id) == expected
            assert event_metas(found) == reference(found)
            runs += 1
    assert runs >= 3


async def test_filesystem_key_listing_holds_files_only_sorted_after_start_after(
    tmp_path: Path,
):
    run = tmp_path / RUN
    run.mkdir(parents=True)
    names = ["event-1700000000002-2-b.json", "event-1700000000001-1-a.json", "run-setting.json"]
    for name in names:
        (run / name).write_text("{}")
    (run / "event-1700000000003-3-folder.json").mkdir()
    os.symlink(run / names[0], run / "event-1700000000004-4-link.json")
    storage = FileSystemStorage(tmp_path)
    expected = [RUN + n for n in sorted([*names, "event-1700000000004-4-link.json"])]
    assert await storage.list_keys(RUN) == expected
    assert await storage.list_keys(RUN, start_after=expected[1]) == expected[2:]
    assert await storage.list_keys(RUN, start_after=RUN + "event-1700000000001") == expected
    assert await storage.list_keys(RUN, start_after=expected[-1]) == []
    assert await storage.list_keys("jobs/job1/runs/missing/") == []


def canonical_by_definition(names: list[str]) -> bool:
    """keys.all_canonical's definition, name by name."""
    pattern = re.compile(r"event-[0-9]{13}-[0-9]+-[^\n./]*\.json")
    return bool(names) and all(pattern.fullmatch(name) for name in names)


@pytest.mark.parametrize("seed", range(10))
def test_all_canonical_is_its_definition_name_by_name(seed: int):
    rng = random.Random(seed)
    odd = ODD_NAMES + [key.rpartition("/")[2] for key in ODD_KEYS]
    odd.append("event-1700000000000-1-sub/callTools.json")
    for _ in range(300):
        names = [canonical(rng, [1700000000000, 1799999999999]) for _ in range(rng.randrange(4))]
        for _ in range(rng.choice([0, 0, 1, 2])):
            names.insert(rng.randrange(len(names) + 1), rng.choice(odd))
        assert keys.all_canonical(names) == canonical_by_definition(names), names
    assert keys.all_canonical(["event-1700000000000-1-.json"])  # a type may be empty
    assert not keys.all_canonical([])
