"""Perstack's S3 and R2 storages (AWS S3, Cloudflare R2, MinIO, SeaweedFS, any S3 API).

Keys are ``{prefix}jobs/...`` as Perstack writes them. boto3 is blocking, so every call
runs on a bounded thread pool (as many workers as HTTP connections); one client per
storage, created on first use. Every botocore failure becomes a :class:`StorageError`
whose message names the bucket, the endpoint and the setting to check.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from .base import KeyValueStorage, NotFoundError, ObjectInfo, StorageError, StorageInfo

T = TypeVar("T")

#: fail fast when a server is down or hangs: short timeouts and a couple of retries
#: (the read timeout is per socket read, not per object, so large checkpoints are fine)
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
MAX_ATTEMPTS = 3

_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
_NOT_FOUND_CODES = {"NoSuchKey", "404", "NotFound"}


_loader_lock = threading.Lock()
_shared_loader: Any = None


def _new_session(access_key_id: str | None, secret_access_key: str | None) -> boto3.Session:
    """A boto3 session of its own (the default one is not thread-safe, and credentials
    stay per storage) that shares the parsed service models: loading them is most of
    the ~0.1 s a client takes to create."""
    global _shared_loader
    with _loader_lock:
        core = botocore.session.get_session()
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _shared_loader)
        return boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            botocore_session=core,
        )


def normalize_prefix(prefix: str) -> str:
    """Perstack's rule: a non-empty prefix gets a trailing ``/`` (leading ``/`` dropped)."""
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


class S3Storage(KeyValueStorage):
    """Perstack data in an S3 bucket (or any S3-compatible server via ``endpoint``).

    ``stats`` counts requests by operation (``list`` pages, ``get``, ``put``) and bytes
    received/sent, so benchmarks and live-tail tests can measure what browsing costs.
    """

    #: the name used in settings and messages (``storage.s3.bucket``)
    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str | None = None,
        endpoint: str | None = None,
        force_path_style: bool = False,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_concurrency: int = 16,
    ) -> None:
        super().__init__()
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.region = region
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.force_path_style = force_path_style
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.max_concurrency = max(1, max_concurrency)
        self.connect_timeout = CONNECT_TIMEOUT
        self.read_timeout = READ_TIMEOUT
        self.stats: dict[str, int] = {"list": 0, "get": 0, "put": 0, "bytes_in": 0, "bytes_out": 0}
        self._client: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # --- what the user sees -----------------------------------------------------------

    def storage_info(self) -> StorageInfo:
        location = f"s3://{self.bucket}/{self.prefix}"
        if self.endpoint:
            location += f" ({self.endpoint})"
        return StorageInfo("s3", location)

    def url_of(self, key: str) -> str:
        """Where ``key`` lives, as a URL for messages."""
        return f"s3://{self.bucket}/{self.prefix}{key}"

    @property
    def where(self) -> str:
        """The server in messages: the endpoint, or the AWS region's."""
        if self.endpoint:
            return self.endpoint
        if self._client is not None:
            return self._client.meta.endpoint_url
        return f"AWS S3 ({self.region or 'default region'})"

    def credentials_hint(self) -> str:
        return (
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile, "
            f"or storage.{self.kind}.accessKeyId / secretAccessKey"
        )

    # --- the client -------------------------------------------------------------------

    def client_config(self) -> Config:
        return Config(
            max_pool_connections=self.max_concurrency,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path" if self.force_path_style else "auto"},
            user_agent_extra="perstack-tui",
        )

    def client_region(self) -> str | None:
        return self.region

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                session = _new_session(self.access_key_id, self.secret_access_key)
                self._client = session.client(
                    "s3",
                    region_name=self.client_region(),
                    endpoint_url=self.endpoint,
                    config=self.client_config(),
                )
            return self._client

    def _count(self, operation: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[operation] += amount

    async def _call(self, operation: Callable[[], T], key: str, action: str) -> T:
        """Run ``operation`` on the pool; translate botocore errors for ``key``."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.max_concurrency, thread_name_prefix=f"perstack-{self.kind}"
                )
            executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, operation)
        except (BotoCoreError, ClientError) as error:
            raise self.translate_error(error, key, action) from error

    async def close(self) -> None:
        """Shut the thread pool down and close the HTTP connections."""
        with self._lock:
            executor, self._executor = self._executor, None
            client, self._client = self._client, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()

    # --- primitives -------------------------------------------------------------------

    def _pages(
        self, full_prefix: str, start_after: str | None, *, delimiter: bool = True
    ) -> Iterator[dict[str, Any]]:
        """ListObjectsV2 pages, each counted in :attr:`stats` (blocking: run it on the pool)."""
        client = self._get_client()
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full_prefix}
        if delimiter:
            params["Delimiter"] = "/"
        if start_after:
            params["StartAfter"] = self.prefix + start_after
        for page in client.get_paginator("list_objects_v2").paginate(**params):
            self._count("list")
            yield page

    async def list_prefixes(self, prefix: str) -> list[str]:
        full = self.prefix + prefix
        pages = await self._call(lambda: list(self._pages(full, None)), prefix, "list")
        names = {
            common["Prefix"][len(full) :].rstrip("/")
            for page in pages
            for common in page.get("CommonPrefixes", ())
        }
        names.discard("")
        return sorted(names)

    async def list_objects(self, prefix: str, start_after: str | None = None) -> list[ObjectInfo]:
        full = self.prefix + prefix
        pages = await self._call(lambda: list(self._pages(full, start_after)), prefix, "list")
        objects = self._objects_of(pages, full)
        if start_after is not None:
            objects = [o for o in objects if o.key > start_after]
        objects.sort(key=lambda o: o.key)
        return objects

    async def list_tree(self, prefix: str, *, stat: bool = False) -> list[ObjectInfo]:
        """Every object under ``prefix``: one ``ListObjectsV2`` loop without delimiter, 1,000
        keys a page (each page counted in :attr:`stats`); size, mtime and ETag come free."""
        full = self.prefix + prefix

        def walk() -> list[ObjectInfo]:
            # each page becomes small tuples at once: 100 pages of parsed XML held together
            # would take ~100 MB at 100,000 keys
            found: list[ObjectInfo] = []
            for page in self._pages(full, None, delimiter=False):
                found.extend(o for o in self._objects_of([page], full) if o.key[-1:] != "/")
            return found

        objects = await self._call(walk, prefix, "list")
        objects.sort(key=lambda o: o.key)
        return objects

    def _objects_of(self, pages: list[dict[str, Any]], full_prefix: str) -> list[ObjectInfo]:
        return [
            ObjectInfo(
                key=entry["Key"][len(self.prefix) :],
                size=int(entry.get("Size", 0)),
                modified=entry["LastModified"].timestamp() if "LastModified" in entry else 0.0,
                etag=str(entry.get("ETag", "")).strip('"'),
            )
            for page in pages
            for entry in page.get("Contents", ())
            # a "folder marker" object named like the prefix itself is not a file
            if entry["Key"] != full_prefix
        ]

    async def read_bytes(self, key: str) -> bytes:
        def get() -> bytes:
            client = self._get_client()
            self._count("get")  # a request made is a request paid for, found or not
            response = client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            data = response["Body"].read()
            self._count("bytes_in", len(data))
            return data

        return await self._call(get, key, "read")

    async def write_bytes(self, key: str, data: bytes) -> None:
        def put() -> None:
            client = self._get_client()
            self._count("put")
            client.put_object(
                Bucket=self.bucket, Key=self.prefix + key, Body=data, ContentType="application/json"
            )
            self._count("bytes_out", len(data))

        await self._call(put, key, "write")

    # --- errors -----------------------------------------------------------------------

    def translate_error(self, error: Exception, key: str, action: str) -> StorageError:
        """A botocore failure as a :class:`StorageError` a user can act on."""
        target = self.url_of(key)
        setting = f"storage.{self.kind}"
        if isinstance(error, ClientError):
            info = error.response.get("Error", {})
            code = str(info.get("Code", ""))
            message = str(info.get("Message", "")) or code
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return StorageError(
                    f"bucket '{self.bucket}' does not exist at {self.where} ({setting}.bucket)",
                    key=key,
                    setting=f"{setting}.bucket",
                )
            if code in _NOT_FOUND_CODES and action == "read":
                return NotFoundError(f"{target}: no such key", key=key)
            if code in _CREDENTIAL_CODES:
                return StorageError(
                    f"credentials refused by {self.where}: {code}: {message} "
                    f"({self.credentials_hint()})",
                    key=key,
                    setting=f"{setting}.accessKeyId",
                )
            if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
                return StorageError(
                    f"access denied: cannot {action} {target} at {self.where}: {message} "
                    f"(the credentials need {action} permission on bucket '{self.bucket}'; "
                    f"{self.credentials_hint()})",
                    key=key,
                    setting=f"{setting}.accessKeyId",
                )
            if (
                code in ("PermanentRedirect", "301", "AuthorizationHeaderMalformed")
                or status == 301
            ):
                return StorageError(
                    f"bucket '{self.bucket}' is in another region than {self.where}: {message} "
                    f"({setting}.region)",
                    key=key,
                    setting=f"{setting}.region",
                )
            return StorageError(
                f"cannot {action} {target} at {self.where}: {code} (HTTP {status}): {message}",
                key=key,
            )
        if isinstance(error, EndpointConnectionError):
            reason = str(error.kwargs.get("error", ""))
            if "refused" in reason.lower():
                detail = "connection refused"
            elif "Name or service not known" in reason or "nodename nor servname" in reason:
                detail = "unknown host"
            else:
                detail = reason or "no connection"
            return StorageError(
                f"cannot reach {self.where}: {detail} (is the server up? {setting}.endpoint)",
                key=key,
                setting=f"{setting}.endpoint",
            )
        if isinstance(error, ConnectTimeoutError):
            return StorageError(
                f"cannot reach {self.where}: connection timed out after "
                f"{self.connect_timeout:g}s (a firewall, or a wrong {setting}.endpoint?)",
                key=key,
                setting=f"{setting}.endpoint",
            )
        if isinstance(error, ReadTimeoutError):
            return StorageError(
                f"no answer from {self.where} within {self.read_timeout:g}s while trying to "
                f"{action} {target} (the server is overloaded or hung; try again)",
                key=key,
                setting=f"{setting}.endpoint",
            )
        if isinstance(error, ConnectionClosedError):
            return StorageError(
                f"{self.where} closed the connection while trying to {action} {target} (try again)",
                key=key,
                setting=f"{setting}.endpoint",
            )
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return StorageError(
                f"no credentials for {self.where} ({self.credentials_hint()})",
                key=key,
                setting=f"{setting}.accessKeyId",
            )
        if isinstance(error, NoRegionError):
            return StorageError(
                f"no region for bucket '{self.bucket}' (set {setting}.region or AWS_REGION)",
                setting=f"{setting}.region",
            )
        if isinstance(error, ParamValidationError):
            return StorageError(
                f"invalid request for bucket '{self.bucket}': {error} ({setting}.bucket)",
                key=key,
                setting=f"{setting}.bucket",
            )
        return StorageError(f"cannot {action} {target} at {self.where}: {error}", key=key)


class R2Storage(S3Storage):
    """Perstack data in a Cloudflare R2 bucket (the S3 API at the account's endpoint)."""

    kind = "r2"

    def __init__(
        self,
        account_id: str,
        bucket: str,
        prefix: str = "",
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        endpoint: str | None = None,
        max_concurrency: int = 16,
    ) -> None:
        super().__init__(
            bucket,
            prefix,
            region="auto",
            endpoint=endpoint or f"https://{account_id}.r2.cloudflarestorage.com",
            force_path_style=True,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            max_concurrency=max_concurrency,
        )
        self.account_id = account_id

    def storage_info(self) -> StorageInfo:
        return StorageInfo("r2", f"r2://{self.account_id}/{self.bucket}/{self.prefix}")

    def url_of(self, key: str) -> str:
        return f"r2://{self.account_id}/{self.bucket}/{self.prefix}{key}"

    def credentials_hint(self) -> str:
        return (
            "check storage.r2.accessKeyId / secretAccessKey or R2_ACCESS_KEY_ID / "
            "R2_SECRET_ACCESS_KEY: an R2 API token's Access Key ID and Secret Access Key"
        )

    def client_config(self) -> Config:
        # R2 rejects the CRC checksums newer botocore sends by default
        return (
            super()
            .client_config()
            .merge(
                Config(
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
            )
        )
