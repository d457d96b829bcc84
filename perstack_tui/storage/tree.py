"""One job's keys from a listing, grouped the way the jobs list needs them.

A recursive listing of ``jobs/`` (or of one job's folder) is grouped into a
:class:`JobTree` per job: whether it has a job.json, the keys of each run folder, and a
**fingerprint** of what the listing said about the files a summary is derived from (job.json
and the run folders). Two listings with the same fingerprint saw the same files in the same
versions, so whatever was derived from the first (status, steps, expert, usage) still
holds: the persistent job index (:mod:`perstack_tui.index`) trusts a stored summary only
when its fingerprint matches a fresh listing's. A filesystem does not even list the
checkpoints/ folders for it (a quarter of the folders Perstack writes).

What a version is depends on what the listing returns for free: S3 gives every object's
ETag and size; a filesystem listing gives names only, and pays a ``stat()`` only for the
files that can be rewritten in place (job.json, run-setting.json, anything unexpected).
Events and checkpoints are written once under a name of their own (an event's timestamp,
step and type; a checkpoint's id), so their name is their version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import keys
from ..keys import RunFacts

if TYPE_CHECKING:  # base imports this module
    from .base import ObjectInfo


def fingerprint_of(lines: Iterable[str]) -> str:
    """The digest of a job's ``key<TAB>version`` lines (in key order)."""
    return hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()


#: the fingerprint of a job folder that holds no file
EMPTY_FINGERPRINT = fingerprint_of(())


@dataclass(slots=True, eq=False)
class JobTree:
    """One job's files from a listing (no reads)."""

    job_id: str
    has_job_file: bool = False
    #: run id -> keys of the files directly in that run folder, sorted
    run_keys: dict[str, list[str]] = field(default_factory=dict)
    #: run id -> the facts of its event names, where the listing already read them off
    #: (a filesystem walk does, for the folders it takes from their names alone)
    run_facts: dict[str, RunFacts] = field(default_factory=dict)
    #: the ``key<TAB>version`` lines of every file under the job (in key order) that
    #: :attr:`fingerprint` digests, until it is first asked for
    lines: list[str] = field(default_factory=list, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        """A digest of every key under the job with its version; worked out when first
        asked for (10,000 jobs: ~60 ms), so a listing whose jobs are ordered before they
        are checked against the index does not wait for it."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.lines)
            self.lines = []
        return self._fingerprint

    def __eq__(self, other: object) -> bool:
        """The same job with the same runs and files, in the same versions."""
        if not isinstance(other, JobTree):
            return NotImplemented
        return (self.job_id, self.has_job_file, self.run_keys, self.fingerprint) == (
            other.job_id,
            other.has_job_file,
            other.run_keys,
            other.fingerprint,
        )


def version_of(info: ObjectInfo) -> str:
    """What tells a file's content apart from an earlier one at the same key.

    The ETag where the listing gives one (S3); else size and mtime where they were
    listed; else nothing (a names-only listing: the name is the version).
    """
    if info.etag:
        return f"{info.etag}:{info.size}"
    if info.size or info.modified:
        return f"{info.size}:{info.modified!r}"
    return ""


def group_job_trees(objects: Iterable[ObjectInfo]) -> dict[str, JobTree]:
    """Group a recursive listing of ``jobs/`` (sorted by key) into one tree per job.

    Any file in a run folder makes it a run, as a folder listing would; only the files
    directly in it are its events. The fingerprint covers what a job's summary is derived
    from: its job.json and every file in its run folders; not checkpoints/ (no summary
    reads a checkpoint file: the usage comes from the latest event that carries one).
    """
    trees: dict[str, JobTree] = {}
    for info in objects:  # 100,000s of keys: kept lean
        key = info.key
        parts = key.split("/", 4)
        count = len(parts)
        if count < 3:
            continue
        job_id = parts[1]
        tree = trees.get(job_id)
        if tree is None:
            tree = trees[job_id] = JobTree(job_id)
        if count == 3:
            if parts[2] == keys.JOB_FILE:
                tree.has_job_file = True
                tree.lines.append(f"{key}\t{version_of(info)}")
        elif count == 5 and parts[2] == "runs":
            tree.lines.append(f"{key}\t{version_of(info)}")
            run_keys = tree.run_keys.get(parts[3])
            if run_keys is None:
                run_keys = tree.run_keys[parts[3]] = []
            if "/" not in parts[4]:
                run_keys.append(key)
    return trees
