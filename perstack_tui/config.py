"""Where the storage is: ``--storage`` URIs, ``perstack.toml``'s ``[storage]``, the environment.

Precedence: ``--storage`` > ``--config``/found ``perstack.toml`` ``[storage]`` >
``PERSTACK_STORAGE_PATH`` > ``./perstack``. Errors name the file, the key and what
was expected (:class:`ConfigError`), e.g.
``perstack.toml: storage.s3.bucket: expected a string, got 42``.

Nothing here imports a cloud SDK: this module only decides *what* to open;
:mod:`perstack_tui.storage.factory` opens it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

StorageType = Literal["filesystem", "s3", "r2", "memory"]
CONFIG_NAME = "perstack.toml"
ENV_STORAGE_PATH = "PERSTACK_STORAGE_PATH"
#: R2 credentials read from the environment (else boto3's default chain: AWS_* variables,
#: profiles); Cloudflare's docs and our R2 tests use these names.
ENV_R2_ACCESS_KEY_ID = "R2_ACCESS_KEY_ID"
ENV_R2_SECRET_ACCESS_KEY = "R2_SECRET_ACCESS_KEY"


class ConfigError(Exception):
    """A configuration problem; the message names the file, key and what was expected."""


@dataclass(frozen=True)
class StorageConfig:
    """Which storage to open; paths are absolute once resolved."""

    type: StorageType = "filesystem"
    path: str | None = None  # filesystem base directory
    bucket: str | None = None
    region: str | None = None
    prefix: str = ""  # as given; the S3 backend adds Perstack's trailing "/"
    endpoint: str | None = None
    force_path_style: bool = False
    account_id: str | None = None  # r2
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def __repr__(self) -> str:
        # Credentials must not leak through logs or tracebacks.
        shown = {
            name: ("***" if name in ("access_key_id", "secret_access_key") and value else value)
            for name, value in self.__dict__.items()
        }
        return "StorageConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


@dataclass(frozen=True)
class ResolvedStorage:
    """A :class:`StorageConfig` and where it came from (to tell the user)."""

    config: StorageConfig
    source: str  # "flag", "file", "env", "default"
    config_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def describe_source(self) -> str:
        """Where the setting came from, in words (``file /p/perstack.toml``, ``flag --storage``)."""
        if self.source == "file" and self.config_file:
            return f"file {self.config_file}"
        if self.source == "env":
            return f"env {ENV_STORAGE_PATH}"
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
    """Decide which storage to open, and say where that choice came from.

    ``--storage`` wins; then the ``[storage]`` section of ``config_path`` (or of the
    ``perstack.toml`` found walking up from ``cwd``); then ``PERSTACK_STORAGE_PATH``;
    then ``./perstack``. A config file without ``[storage]`` falls through. Raises
    :class:`ConfigError` for any invalid setting.
    """
    cwd = (cwd or Path.cwd()).absolute()
    environ = dict(os.environ) if environ is None else environ
    if storage_uri is not None:
        return ResolvedStorage(_with_env_credentials(parse_uri(storage_uri, cwd), environ), "flag")

    config_file = _given_config(config_path, cwd) if config_path else find_config(cwd)
    if config_file is not None:
        from_file = load_config_file(config_file)
        if from_file is not None:
            config, warnings = from_file
            return ResolvedStorage(
                _with_env_credentials(config, environ), "file", config_file, warnings
            )

    env_path = environ.get(ENV_STORAGE_PATH)
    if env_path:
        return ResolvedStorage(StorageConfig(path=_absolute(env_path, cwd)), "env", config_file)
    return ResolvedStorage(StorageConfig(path=str(cwd / "perstack")), "default", config_file)


def _given_config(config_path: str | os.PathLike[str], cwd: Path) -> Path:
    path = cwd / Path(config_path).expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise ConfigError(f"{config_path}: {what} (given with --config)")
    return path


def _absolute(path: str, base: Path) -> str:
    """``path`` made absolute against ``base`` (``~`` expanded, ``..`` folded for display)."""
    return os.path.normpath(base / Path(path).expanduser())


def _with_env_credentials(config: StorageConfig, environ: dict[str, str]) -> StorageConfig:
    """R2 credentials from the environment when not in the file (S3 uses boto3's chain)."""
    if config.type != "r2" or config.access_key_id or config.secret_access_key:
        return config
    key_id = environ.get(ENV_R2_ACCESS_KEY_ID) or None
    secret = environ.get(ENV_R2_SECRET_ACCESS_KEY) or None
    if key_id is None and secret is None:
        return config
    return replace(config, access_key_id=key_id, secret_access_key=secret)


# --- --storage URIs -------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_S3_OPTIONS = ("region", "endpoint", "forcePathStyle")
_R2_OPTIONS = ("endpoint",)
_CREDENTIAL_OPTIONS = {
    "accesskeyid",
    "secretaccesskey",
    "access_key_id",
    "secret_access_key",
    "sessiontoken",
    "password",
}
_CREDENTIALS_HELP = (
    "credentials are never read from a URI; set them in the environment "
    "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or R2_ACCESS_KEY_ID/"
    "R2_SECRET_ACCESS_KEY for r2)"
)


def parse_uri(uri: str, cwd: Path | None = None) -> StorageConfig:
    """The storage a ``--storage`` URI names.

    Forms: ``./path`` or any path (relative to ``cwd``), ``file:///abs``,
    ``s3://bucket/prefix?region=..&endpoint=..&forcePathStyle=true``,
    ``r2://account/bucket/prefix`` (``?endpoint=`` overrides Cloudflare's).
    Credentials in a URI are refused.
    """
    cwd = (cwd or Path.cwd()).absolute()
    where = f"--storage {uri}"
    if not uri.strip():
        raise ConfigError(f"{where}: expected a path or a file://, s3:// or r2:// URI, got ''")
    match = _SCHEME.match(uri)
    if match is None:
        return StorageConfig(path=_absolute(uri, cwd))
    scheme = match.group(1).lower()
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        # never echo the secret back: name the URI without its user info
        host = parts.netloc.rsplit("@", 1)[1]
        raise ConfigError(f"--storage {scheme}://***@{host}...: {_CREDENTIALS_HELP}")
    if parts.fragment:
        raise ConfigError(f"{where}: unexpected '#{parts.fragment}'")
    options = _query_options(parts.query, where)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{where}: expected file:///absolute/path (three slashes), "
                f"got host {parts.netloc!r}"
            )
        _check_options(options, (), where)
        path = unquote(parts.path)
        if not path:
            raise ConfigError(f"{where}: expected file:///absolute/path, got no path")
        return StorageConfig(path=_absolute(path, cwd))
    if scheme == "s3":
        _check_options(options, _S3_OPTIONS, where)
        bucket = unquote(parts.netloc)
        if not bucket:
            raise ConfigError(f"{where}: expected s3://bucket/prefix, got no bucket")
        return StorageConfig(
            type="s3",
            bucket=bucket,
            prefix=unquote(parts.path).lstrip("/"),
            region=options.get("region") or None,
            endpoint=options.get("endpoint") or None,
            force_path_style=_bool_option(options.get("forcePathStyle", "false"), where),
        )
    if scheme == "r2":
        _check_options(options, _R2_OPTIONS, where)
        account = unquote(parts.netloc)
        bucket, _, prefix = unquote(parts.path).lstrip("/").partition("/")
        if not account or not bucket:
            raise ConfigError(
                f"{where}: expected r2://account/bucket/prefix, got "
                + ("no account id" if not account else "no bucket")
            )
        return StorageConfig(
            type="r2",
            account_id=account,
            bucket=bucket,
            prefix=prefix,
            endpoint=options.get("endpoint") or None,
        )
    raise ConfigError(
        f"{where}: unknown scheme {scheme + '://'!r}, expected a path, file://, s3:// or r2://"
    )


def _query_options(query: str, where: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as error:
        raise ConfigError(f"{where}: malformed query {query!r} ({error})") from None
    return dict(pairs)


def _check_options(options: dict[str, str], allowed: tuple[str, ...], where: str) -> None:
    for name in options:
        if name.lower() in _CREDENTIAL_OPTIONS:
            shown = where.split("?", 1)[0]  # the query holds the secret
            raise ConfigError(f"{shown}?{name}=***: {_CREDENTIALS_HELP}")
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "none"
            raise ConfigError(f"{where}: unknown option {name!r} (expected: {expected})")


def _bool_option(value: str, where: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ConfigError(f"{where}: forcePathStyle: expected true or false, got {value!r}")


# --- perstack.toml --------------------------------------------------------------------


class _Section(BaseModel):
    # strict: 42 is not a string and "true" is not a boolean; unknown keys are errors
    # (a misspelt "bucekt" must not silently fall back to another storage).
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class _FilesystemSection(_Section):
    path: str | None = None


class _S3Section(_Section):
    bucket: str | None = None  # required when type = "s3", checked after validation
    region: str | None = None
    prefix: str = ""
    endpoint: str | None = None
    forcePathStyle: bool = False
    accessKeyId: str | None = None
    secretAccessKey: str | None = None


class _R2Section(_Section):
    accountId: str | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint: str | None = None
    accessKeyId: str | None = None
    secretAccessKey: str | None = None


class _StorageSection(_Section):
    type: Literal["filesystem", "s3", "r2"] | None = None
    filesystem: _FilesystemSection | None = None
    s3: _S3Section | None = None
    r2: _R2Section | None = None


_SECTIONS = ("filesystem", "s3", "r2")
_REQUIRED = {"s3": ("bucket",), "r2": ("accountId", "bucket")}
_SECRETS = ("accessKeyId", "secretAccessKey")


def load_config_file(path: Path) -> tuple[StorageConfig, list[str]] | None:
    """The ``[storage]`` of a ``perstack.toml`` and its warnings; ``None`` if it has none.

    Other sections (experts, models...) belong to Perstack and are ignored. A
    filesystem ``path`` is relative to the file's folder.
    """
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: malformed TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    if "storage" not in document:
        return None
    raw = document["storage"]
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: storage: expected a table ([storage]), got {_show(raw)}")
    try:
        section = _StorageSection.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_render_validation_error(path, error)) from None

    storage_type = section.type or _infer_type(section, path)
    chosen = getattr(section, storage_type)
    if chosen is None and storage_type != "filesystem":
        required = " and ".join(f"{name} = ..." for name in _REQUIRED[storage_type])
        raise ConfigError(
            f"{path}: storage.{storage_type}: missing, expected a [storage.{storage_type}] "
            f"table with {required}"
        )
    for name in _REQUIRED.get(storage_type, ()):
        if getattr(chosen, name) in (None, ""):
            raise ConfigError(f"{path}: storage.{storage_type}.{name}: required, expected a string")

    warnings = [
        f"{path}: storage.{name}.{secret}: a secret in the file works, but keep credentials "
        "in the environment or an AWS profile instead"
        for name in _SECTIONS
        for secret in _SECRETS
        if getattr(getattr(section, name), secret, None)
    ]
    return _to_config(storage_type, chosen, path), warnings


def _infer_type(section: _StorageSection, path: Path) -> Literal["filesystem", "s3", "r2"]:
    """Without ``type``: the one sub-table present, else filesystem."""
    present = [name for name in _SECTIONS if getattr(section, name) is not None]
    if len(present) > 1:
        raise ConfigError(
            f"{path}: storage.type: required when several of "
            + ", ".join(f"[storage.{name}]" for name in present)
            + ' are present, expected "filesystem", "s3" or "r2"'
        )
    return present[0] if present else "filesystem"  # type: ignore[return-value]


def _to_config(storage_type: str, chosen: Any, path: Path) -> StorageConfig:
    folder = path.parent.absolute()
    if storage_type == "filesystem":
        base = chosen.path if chosen is not None and chosen.path else "perstack"
        return StorageConfig(path=_absolute(base, folder))
    common = {
        "bucket": chosen.bucket,
        "prefix": chosen.prefix,
        "endpoint": chosen.endpoint or None,
        "access_key_id": chosen.accessKeyId or None,
        "secret_access_key": chosen.secretAccessKey or None,
    }
    if storage_type == "s3":
        return StorageConfig(
            type="s3",
            region=chosen.region or None,
            force_path_style=chosen.forcePathStyle,
            **common,
        )
    return StorageConfig(type="r2", account_id=chosen.accountId, **common)


_EXPECTED = {
    "string_type": "expected a string",
    "bool_type": "expected true or false",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "dict_type": "expected a table",
    "literal_error": 'expected "filesystem", "s3" or "r2"',
}
#: every key [storage] accepts, by table (the example file shows them all)
STORAGE_KEYS = {
    "storage": ["type", *_SECTIONS],
    "filesystem": list(_FilesystemSection.model_fields),
    "s3": list(_S3Section.model_fields),
    "r2": list(_R2Section.model_fields),
}


def _render_validation_error(path: Path, error: ValidationError) -> str:
    """``FILE: storage.s3.bucket: expected a string, got 42`` for the first problem."""
    problem = error.errors()[0]
    location = [str(part) for part in problem["loc"] if not str(part).startswith("function-")]
    key = ".".join(["storage", *location])
    kind = problem["type"]
    if kind == "extra_forbidden":
        parent = location[-2] if len(location) > 1 else "storage"
        known = ", ".join(STORAGE_KEYS.get(parent, []))
        return f"{path}: {key}: unknown key (expected one of: {known})"
    expected = _EXPECTED.get(kind, problem["msg"])
    return f"{path}: {key}: {expected}, got {_show(problem.get('input'))}"


def _show(value: Any) -> str:
    """A value as it looks in TOML, for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)
