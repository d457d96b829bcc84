"""The scan's per-run facts: read off a canonical folder in bulk, exactly as key by key."""

from __future__ import annotations

import random

from perstack_tui import keys
from perstack_tui.catalog import _run_facts

FOLDER = "jobs/job-1/runs/run-1/"


def reference(run_keys: list[str]) -> tuple[int, int, str, int] | None:
    """The per-key rules: first by time, last by (time, key), highest step."""
    parsed = [(n, k) for k in run_keys if (n := keys.parse_event_name(k.rpartition("/")[2]))]
    if not parsed:
        return None
    first = min(n.timestamp for n, _ in parsed)
    last, _ = max(parsed, key=lambda p: (p[0].timestamp, p[1]))
    return first, last.timestamp, last.type, max(n.step_number for n, _ in parsed)


def name(rng: random.Random, odd: bool) -> str:
    timestamp = rng.choice([1_790_000_000_000 + rng.randrange(5000), rng.randrange(10**6)])
    step, kind = rng.randrange(1, 30), rng.choice(["callTools", "completeRun", "stop-by-x"])
    if not odd:
        return f"event-{1_790_000_000_000 + rng.randrange(5000)}-{step}-{kind}.json"
    return rng.choice(
        [
            f"event-{timestamp}-{step}-{kind}.json",
            f"event-{timestamp}-{step}-{kind}.tmp.json",
            "run-setting.json",
            f"event-{timestamp}-x-{kind}.json",
            f"event-{timestamp}-{step}-{kind}.json\nevent-{timestamp}-99-y.json",
            f"checkpoint-{timestamp}.json",
        ]
    )


def test_run_facts_are_those_of_the_per_key_parse_for_any_folder():
    rng = random.Random(6)
    for case in range(3000):
        odd = case % 3 == 0
        names = sorted({name(rng, odd and rng.random() < 0.3) for _ in range(rng.randrange(8))})
        run_keys = [FOLDER + n for n in names]
        assert _run_facts(run_keys) == reference(run_keys), run_keys


def test_a_canonical_folder_is_read_off_its_ends_and_its_steps():
    run_keys = [
        FOLDER + "event-1790000000001-1-startRun.json",
        FOLDER + "event-1790000000002-3-callTools.json",
        FOLDER + "event-1790000000002-3-resolveToolResults.json",
        FOLDER + "event-1790000000009-2-stopRunByError.json",  # a step lower than before
    ]
    assert _run_facts(run_keys) == (1790000000001, 1790000000009, "stopRunByError", 3)
    assert _run_facts([]) is None
    assert _run_facts([FOLDER + "run-setting.json"]) is None


def test_paused_gc_nests_and_restores_what_was_there():
    import gc

    from perstack_tui.storage.base import paused_gc

    assert gc.isenabled()
    with paused_gc():
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still holds
    assert gc.isenabled()
    try:
        with paused_gc():
            raise ValueError("a failing bulk parse")
    except ValueError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
