"""The filesystem's layout-aware job-tree walk gives what a stat listing grouped would give."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from perstack_tui.keys import UnsafeIdError
from perstack_tui.storage.base import ObjectInfo, StorageError
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.storage.tree import EMPTY_FINGERPRINT, JobTree, group_job_trees

from .conftest import CLI_RUN, COORDINATOR_JOB, PROGRAMMATIC, PROGRAMMATIC_JOB

EVENT = "event-1700000000000-1-startRun.json"


def _is_event(key: str) -> bool:
    parts = key.split("/")
    return len(parts) == 5 and parts[2] == "runs" and parts[4].startswith("event-")


async def expected_trees(storage: FileSystemStorage) -> dict[str, JobTree]:
    """The default grouping of a stat listing, with events versioned by name only."""
    listing = await storage.list_tree("jobs/", stat=True)
    return group_job_trees(ObjectInfo(o.key) if _is_event(o.key) else o for o in listing)


def write(base: Path, key: str, text: str = "{}") -> Path:
    path = base / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def odd_dir(tmp_path: Path) -> Path:
    """A storage with every oddity a walk can meet beside two ordinary jobs."""
    base = tmp_path / "odd"
    shutil.copytree(PROGRAMMATIC, base)
    write(base, "jobs/stray.json")  # a file at the jobs/ level: no job
    (base / "jobs/emptyjob").mkdir()
    (base / "jobs/dirsonly/runs/emptyrun").mkdir(parents=True)
    (base / "jobs/dirsonly/checkpoints").mkdir()
    job = "jobs/oddjob/"
    write(base, job + "job.json", '{"id": "oddjob"}')
    write(base, job + "checkpoints/c1.json")
    write(base, job + "checkpoints/nested/c2.json")
    write(base, job + "runs.txt")  # sorts before runs/ ("." < "/")
    write(base, job + "runs/stray-in-runs.json")
    (base / job / "runs/emptyrun").mkdir(parents=True)
    run = job + "runs/r1/"
    write(base, run + EVENT)
    write(base, run + "event-1700000000001-1-callTools.json", '{"a": 1}')
    write(base, run + "run-setting.json", '{"x": 1}')
    write(base, run + "a-b")  # "a-b" < "a.json" < "a/..." < "ab"
    write(base, run + "a.json")
    write(base, run + "a/inner.json")
    write(base, run + "ab")
    write(base, run + "event-dir/inner.json")  # a folder named like an event
    write(base, run + "sub/deeper/event-1-1-x.json")
    os.symlink(base / run / "a.json", base / run / "link-to-file")  # a file (followed)
    os.symlink(base / run / "a", base / run / "link-to-folder")  # not followed
    os.symlink(base / "nowhere", base / run / "broken-link")
    write(base, job + "runs/onlynested/sub/event-2-2-y.json")  # a run with no direct file
    write(base, job + "runs/r0/" + EVENT)
    os.symlink(base / job, base / "jobs/linkedjob")  # not a job: the link is not followed
    write(base, "jobs/plainjob/runs/r/" + EVENT)  # files only in each folder (the usual)
    write(base, "jobs/plainjob/runs/r/run-setting.json")
    write(base, "jobs/plainjob/runs/r/zz-after-events.json")
    write(base, "jobs/plainjob/checkpoints/c1.json")
    write(base, "jobs/plainjob/checkpoints/c2.json")
    write(base, "jobs/runsfile/runs")  # "runs" is a file here
    write(base, "jobs/jobdir/job.json/inner.json")  # "job.json" is a folder here
    return base


def assert_walk_matches(got: dict[str, JobTree], expected: dict[str, JobTree]) -> None:
    for job_id, tree in got.items():
        if job_id not in expected:  # the walk sees job folders that hold no file
            assert tree == JobTree(job_id), job_id
            assert tree.fingerprint == EMPTY_FINGERPRINT
    assert {j: t for j, t in got.items() if j in expected} == expected
    assert set(expected) <= set(got)


@pytest.mark.parametrize("base", [CLI_RUN, PROGRAMMATIC], ids=["cli-run", "programmatic"])
async def test_walk_groups_the_real_fixtures_as_a_stat_listing_would(base: Path) -> None:
    storage = FileSystemStorage(base)  # read only: browsing never writes
    got = await storage.list_job_trees()
    expected = await expected_trees(storage)
    assert expected, "the fixture has jobs"
    assert got == expected
    for job_id, tree in expected.items():
        assert await storage.list_job_tree(job_id) == tree
    assert got[COORDINATOR_JOB if base == CLI_RUN else PROGRAMMATIC_JOB].run_keys


async def test_walk_groups_every_oddity_as_a_stat_listing_would(odd_dir: Path) -> None:
    storage = FileSystemStorage(odd_dir)
    got = await storage.list_job_trees()
    assert_walk_matches(got, await expected_trees(storage))
    for job_id, tree in got.items():
        assert await storage.list_job_tree(job_id) == tree
    odd = got["oddjob"]
    assert odd.has_job_file
    run = "jobs/oddjob/runs/r1/"
    assert odd.run_keys["r1"] == [
        run + name
        for name in (
            "a-b",
            "a.json",
            "ab",
            "event-1700000000000-1-startRun.json",
            "event-1700000000001-1-callTools.json",
            "link-to-file",
            "run-setting.json",
        )
    ]
    assert odd.run_keys["onlynested"] == []
    assert set(odd.run_keys) == {"r0", "r1", "onlynested"}  # an empty run folder is no run
    assert got["emptyjob"] == JobTree("emptyjob")
    assert got["dirsonly"] == JobTree("dirsonly")
    assert not got["jobdir"].has_job_file
    assert "linkedjob" not in got
    assert "stray.json" not in got


async def test_fingerprint_changes_when_job_json_is_rewritten(odd_dir: Path) -> None:
    storage = FileSystemStorage(odd_dir)
    before = (await storage.list_job_trees())["oddjob"].fingerprint
    assert (await storage.list_job_trees())["oddjob"].fingerprint == before  # stable
    path = write(odd_dir, "jobs/oddjob/job.json", '{"id": "oddjob", "status": "completed"}')
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    after = await storage.list_job_trees()
    assert after["oddjob"].fingerprint != before
    assert after == await expected_trees(storage) | {
        j: t for j, t in after.items() if t == JobTree(j)
    }
    assert (await storage.list_job_tree("oddjob")).fingerprint == after["oddjob"].fingerprint


async def test_only_what_a_summary_reads_counts_for_the_fingerprint(odd_dir: Path) -> None:
    # checkpoints are never read by a summary: the walk does not even list them
    storage = FileSystemStorage(odd_dir)
    before = (await storage.list_job_tree("oddjob")).fingerprint
    path = odd_dir / "jobs/oddjob/checkpoints/c1.json"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    write(odd_dir, "jobs/oddjob/checkpoints/c9.json")
    write(odd_dir, "jobs/oddjob/notes.txt")
    assert (await storage.list_job_tree("oddjob")).fingerprint == before
    # a file in a run folder that is not an event is stat()-ed: rewriting it counts
    setting = odd_dir / "jobs/oddjob/runs/r1/run-setting.json"
    stat = setting.stat()
    os.utime(setting, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert (await storage.list_job_tree("oddjob")).fingerprint != before


async def test_fingerprint_changes_when_an_event_is_added(odd_dir: Path) -> None:
    storage = FileSystemStorage(odd_dir)
    before = await storage.list_job_trees()
    write(odd_dir, "jobs/oddjob/runs/r1/event-1700000000002-2-callTools.json")
    after = await storage.list_job_trees()
    assert after["oddjob"].fingerprint != before["oddjob"].fingerprint
    assert (
        "jobs/oddjob/runs/r1/event-1700000000002-2-callTools.json" in after["oddjob"].run_keys["r1"]
    )
    assert {j: t for j, t in after.items() if j != "oddjob"} == {
        j: t for j, t in before.items() if j != "oddjob"
    }


async def test_a_file_or_folder_vanishing_mid_walk_is_left_out(
    odd_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileSystemStorage(odd_dir)
    gone_file = str(odd_dir / "jobs/oddjob/runs/r1/run-setting.json")
    gone_files = {
        gone_file,
        str(odd_dir / "jobs/plainjob/runs/r/run-setting.json"),
        str(odd_dir / "jobs/oddjob/runs/r1/a.json"),
    }
    gone_folders = {str(odd_dir / "jobs/oddjob/runs/r0"), str(odd_dir / "jobs/emptyjob")}
    real_stat, real_scandir, real_listdir = os.stat, os.scandir, os.listdir

    def vanish(path: object) -> None:
        """A folder is removed between the parent's listing and the first look into it."""
        for folder in list(gone_folders):
            if isinstance(path, str) and (path == folder or path.startswith(folder + "/")):
                gone_folders.discard(folder)
                shutil.rmtree(folder)

    def stat(path, *args, **kwargs):  # removed between the listing and the stat()
        vanish(path)
        if isinstance(path, str) and path in gone_files:
            gone_files.discard(path)
            os.remove(path)
        return real_stat(path, *args, **kwargs)

    def scandir(path="."):
        vanish(path)
        return real_scandir(path)

    def listdir(path="."):
        vanish(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    got = await storage.list_job_trees()
    monkeypatch.undo()
    assert not gone_files and not gone_folders, "the walk met each vanishing path"
    assert "jobs/oddjob/runs/r1/run-setting.json" not in got["oddjob"].run_keys["r1"]
    assert "r0" not in got["oddjob"].run_keys
    assert got["plainjob"].run_keys["r"] == [
        "jobs/plainjob/runs/r/" + EVENT,
        "jobs/plainjob/runs/r/zz-after-events.json",
    ]
    assert "emptyjob" not in got  # gone before its folder was listed
    assert_walk_matches(got, await expected_trees(storage))


async def test_permission_denied_names_the_folder(
    odd_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FileSystemStorage(odd_dir)
    locked = str(odd_dir / "jobs/oddjob/runs/r1")

    def refusing(real):  # as a folder without read permission (tests may run as root)
        def listing(path="."):
            if path == locked:
                raise PermissionError(13, "Permission denied", path)
            return real(path)

        return listing

    monkeypatch.setattr(os, "scandir", refusing(os.scandir))
    monkeypatch.setattr(os, "listdir", refusing(os.listdir))
    with pytest.raises(StorageError, match="r1: permission denied") as raised:
        await storage.list_job_trees()
    assert raised.value.key == "jobs/oddjob/runs/r1/"
    with pytest.raises(StorageError, match="r1: permission denied"):
        await storage.list_job_tree("oddjob")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
async def test_an_unreadable_folder_is_a_storage_error(odd_dir: Path) -> None:
    locked = odd_dir / "jobs/plainjob/runs/r"
    locked.chmod(0)
    try:
        with pytest.raises(StorageError, match="runs/r: permission denied"):
            await FileSystemStorage(odd_dir).list_job_trees()
    finally:
        locked.chmod(0o755)


async def test_walk_runs_in_worker_threads(odd_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    threads = set()
    real_scandir = os.scandir

    def scandir(path="."):
        threads.add(threading.get_ident())
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    storage = FileSystemStorage(odd_dir)
    await storage.list_job_trees()
    await storage.list_job_tree("oddjob")
    assert threads and threading.get_ident() not in threads


async def test_missing_jobs_folder_and_missing_job_give_empty_trees(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "nowhere")
    assert await storage.list_job_trees() == {}
    assert await storage.list_job_tree("nojob") == JobTree("nojob")
    with pytest.raises(UnsafeIdError):
        await storage.list_job_tree("../escape")


async def test_walk_of_ids_already_listed_walks_just_those(odd_dir: Path) -> None:
    storage = FileSystemStorage(odd_dir)
    every = await storage.list_job_trees()
    some = await storage.list_job_trees(["oddjob", "plainjob", "gone"])
    assert some == {"oddjob": every["oddjob"], "plainjob": every["plainjob"]}  # gone: no folder
    with pytest.raises(UnsafeIdError):
        await storage.list_job_trees(["../escape"])


async def test_walk_reads_the_facts_of_perstack_names_as_the_summary_would() -> None:
    from perstack_tui.catalog import _run_facts

    trees = await FileSystemStorage(CLI_RUN).list_job_trees()
    read_off = {(j, r): f for j, t in trees.items() for r, f in t.run_facts.items()}
    assert len(read_off) == sum(len(t.run_keys) for t in trees.values())  # every run: CLI names
    for (job_id, run_id), facts in read_off.items():
        assert facts == _run_facts(trees[job_id].run_keys[run_id])
    # a run-setting.json beside the events (programmatic use): walked entry by entry
    programmatic = await FileSystemStorage(PROGRAMMATIC).list_job_trees()
    assert not any(t.run_facts for t in programmatic.values())
