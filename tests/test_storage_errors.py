"""S3 and R2 failures become StorageErrors whose message says what to fix (real local server)."""

from __future__ import annotations

import socket
import time

import pytest

from perstack_tui.storage.base import NotFoundError, StorageError
from perstack_tui.storage.s3 import R2Storage, S3Storage

from .s3server import S3Server, unused_port

pytestmark = pytest.mark.s3


def make(kind: str, bucket: str, endpoint: str, access_key: str | None, secret: str | None):
    if kind == "s3":
        return S3Storage(
            bucket,
            "team/perstack",
            region="us-east-1",
            endpoint=endpoint,
            force_path_style=True,
            access_key_id=access_key,
            secret_access_key=secret,
        )
    return R2Storage(
        "acct",
        bucket,
        "team/perstack",
        endpoint=endpoint,
        access_key_id=access_key,
        secret_access_key=secret,
    )


KINDS = ["s3", "r2"]


async def each_operation_error(storage) -> list[StorageError]:
    """The error each kind of request raises (list, read, write): all must fail."""
    errors = []
    for operation in (
        storage.list_job_ids,
        lambda: storage.read_bytes("jobs/j/job.json"),
        lambda: storage.write_bytes("jobs/j/job.json", b"{}"),
    ):
        with pytest.raises(StorageError) as caught:
            await operation()
        errors.append(caught.value)
    await storage.close()
    return errors


@pytest.mark.parametrize("kind", KINDS)
async def test_a_missing_bucket_is_named_with_its_endpoint_and_setting(s3_server, kind):
    storage = make(kind, "perstack-no-such-bucket", s3_server.endpoint, *credentials(s3_server))
    for error in await each_operation_error(storage):
        assert not isinstance(error, NotFoundError)  # else a missing job.json would hide it
        assert str(error) == (
            f"bucket 'perstack-no-such-bucket' does not exist at {s3_server.endpoint} "
            f"(storage.{kind}.bucket)"
        )
        assert error.setting == f"storage.{kind}.bucket"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_missing_bucket_is_not_mistaken_for_a_missing_job(s3_server, kind):
    storage = make(kind, "perstack-no-such-bucket", s3_server.endpoint, *credentials(s3_server))
    with pytest.raises(StorageError, match="does not exist"):
        await storage.retrieve_job("some-job")
    await storage.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("wrong", ["access key", "secret"])
async def test_wrong_credentials_say_which_settings_to_check(s3_server, s3_bucket, kind, wrong):
    access_key, secret = credentials(s3_server)
    if wrong == "access key":
        access_key = "not-a-known-key"
    else:
        secret = "not-the-secret"
    storage = make(kind, s3_bucket, s3_server.endpoint, access_key, secret)
    for error in await each_operation_error(storage):
        message = str(error)
        assert message.startswith(f"credentials refused by {s3_server.endpoint}: ")
        assert ("InvalidAccessKeyId" if wrong == "access key" else "SignatureDoesNotMatch") in (
            message
        )
        if kind == "s3":
            assert "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile" in message
        else:
            assert "R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY" in message
        assert f"storage.{kind}.accessKeyId / secretAccessKey" in message
        assert not isinstance(error, NotFoundError)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_that_is_down_fails_fast_with_connection_refused(s3_server, kind):
    endpoint = f"http://127.0.0.1:{unused_port()}"
    storage = make(kind, "perstack-any-bucket", endpoint, *credentials(s3_server))
    started = time.monotonic()
    errors = await each_operation_error(storage)
    assert time.monotonic() - started < 15  # three operations, each with a few quick retries
    for error in errors:
        assert str(error) == (
            f"cannot reach {endpoint}: connection refused "
            f"(is the server up? storage.{kind}.endpoint)"
        )


async def test_missing_credentials_point_at_the_environment_and_the_profile(
    s3_server, s3_bucket, monkeypatch, tmp_path
):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookups
    storage = make("s3", s3_bucket, s3_server.endpoint, None, None)
    for error in await each_operation_error(storage):
        assert str(error).startswith(f"no credentials for {s3_server.endpoint} (check ")
        assert "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile" in str(error)


async def test_credentials_from_the_environment_are_used_when_none_are_configured(
    s3_server, s3_bucket, monkeypatch, tmp_path
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    storage = make("s3", s3_bucket, s3_server.endpoint, None, None)
    await storage.write_bytes("jobs/j/job.json", b"{}")
    assert await storage.list_job_ids() == ["j"]
    await storage.close()


async def test_an_invalid_bucket_name_names_the_bucket_setting(s3_server):
    storage = make("s3", "Not A Bucket!", s3_server.endpoint, *credentials(s3_server))
    with pytest.raises(StorageError) as caught:
        await storage.list_job_ids()
    assert "'Not A Bucket!'" in str(caught.value) and "storage.s3.bucket" in str(caught.value)
    await storage.close()


async def test_reads_fail_clearly_while_the_server_is_down_and_work_after_restart(
    s3_server: S3Server, s3_storage
):
    await s3_storage.write_bytes("jobs/j/job.json", b'{"kept": true}')
    s3_server.stop()
    try:
        with pytest.raises(StorageError, match="connection refused"):
            await s3_storage.read_bytes("jobs/j/job.json")
    finally:
        s3_server.start()
    assert await s3_storage.read_bytes("jobs/j/job.json") == b'{"kept": true}'


def credentials(server: S3Server) -> tuple[str, str]:
    return server.access_key, server.secret_key


@pytest.mark.parametrize("kind", KINDS)
async def test_read_only_credentials_are_told_they_cannot_write(s3_server, s3_bucket, kind):
    storage = make(kind, s3_bucket, s3_server.endpoint, *s3_server.reader)
    assert await storage.list_job_ids() == []  # reading is allowed
    with pytest.raises(StorageError) as caught:
        await storage.write_bytes("jobs/j/job.json", b"{}")
    await storage.close()
    message = str(caught.value)
    assert message.startswith(f"access denied: cannot write {kind}://")
    assert f"need write permission on bucket '{s3_bucket}'" in message
    assert f"storage.{kind}.accessKeyId" in message


@pytest.mark.parametrize("kind", KINDS)
async def test_credentials_without_rights_on_the_bucket_are_denied_listing(
    s3_server, s3_bucket, kind
):
    storage = make(kind, s3_bucket, s3_server.endpoint, *s3_server.stranger)
    with pytest.raises(StorageError) as caught:
        await storage.list_job_ids()
    await storage.close()
    assert str(caught.value).startswith(f"access denied: cannot list {kind}://")
    assert s3_server.endpoint in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_server_that_never_answers_times_out_with_a_clear_message(s3_server, kind):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # connections are accepted by the kernel, never answered
        endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}"
        storage = make(kind, "perstack-any-bucket", endpoint, *credentials(s3_server))
        storage.read_timeout = 0.2
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            await storage.read_bytes("jobs/j/job.json")
        await storage.close()
    assert time.monotonic() - started < 10
    assert str(caught.value).startswith(f"no answer from {endpoint} within 0.2s while trying to ")
    assert caught.value.setting == f"storage.{kind}.endpoint"
