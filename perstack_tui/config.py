"""Where the storage is: ``--storage`` URIs, ``perstack.toml``'s ``[storage]``, the environment.

Precedence: ``--storage`` > ``--config``/found ``perstack.toml`` ``[storage]`` >
``PERSTACK_STORAGE_PATH`` > ``./perstack``. Errors name the file, the key and what
was expected (:class:`ConfigError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

StorageType = Literal["filesystem", "s3", "r2", "memory"]
CONFIG_NAME = "perstack.toml"


class ConfigError(Exception):
    """A configuration problem; the message names the file, key and what was expected."""


@dataclass(frozen=True)
class StorageConfig:
    type: StorageType = "filesystem"
    path: str | None = None  # filesystem base directory
    bucket: str | None = None
    region: str | None = None
    prefix: str = ""
    endpoint: str | None = None
    force_path_style: bool = False
    account_id: str | None = None  # r2
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True)
class ResolvedStorage:
    config: StorageConfig
    source: str  # "flag", "file", "env", "default"
    config_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def describe_source(self) -> str:
        if self.source == "file" and self.config_file:
            return f"file {self.config_file}"
        if self.source == "env":
            return "env PERSTACK_STORAGE_PATH"
        if self.source == "flag":
            return "flag --storage"
        return "default ./perstack"


def find_config(cwd: Path) -> Path | None:
    """``perstack.toml`` in ``cwd`` or the nearest parent, as Perstack finds it."""
    for folder in (cwd, *cwd.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def resolve_storage(
    storage_uri: str | None = None,
    config_path: str | os.PathLike[str] | None = None,
    cwd: Path | None = None,
    environ: dict[str, str] | None = None,
) -> ResolvedStorage:
    """Decide which storage to open (placeholder: filesystem only, completed by the config work)."""
    cwd = cwd or Path.cwd()
    environ = dict(os.environ) if environ is None else environ
    if storage_uri:
        return ResolvedStorage(StorageConfig(path=str(cwd / storage_uri)), "flag")
    if environ.get("PERSTACK_STORAGE_PATH"):
        return ResolvedStorage(StorageConfig(path=environ["PERSTACK_STORAGE_PATH"]), "env")
    return ResolvedStorage(StorageConfig(path=str(cwd / "perstack")), "default")
