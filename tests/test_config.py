"""Where the storage comes from: precedence, --storage URIs, perstack.toml validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from perstack_tui.cli import main
from perstack_tui.config import ConfigError, StorageConfig, parse_uri, resolve_storage
from perstack_tui.storage.factory import create_storage
from perstack_tui.storage.filesystem import FileSystemStorage

S3_TOML = """
[storage]
type = "s3"
[storage.s3]
bucket = "my-bucket"
region = "eu-west-1"
prefix = "team/perstack"
endpoint = "http://127.0.0.1:9000"
forcePathStyle = true
"""


def write_toml(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "perstack.toml"
    path.write_text(text)
    return path


def resolve(tmp_path: Path, uri: str | None = None, config: str | None = None, env=None):
    return resolve_storage(uri, config, cwd=tmp_path, environ=env or {})


# --- precedence -----------------------------------------------------------------------


def test_default_is_perstack_under_the_working_directory(tmp_path):
    resolved = resolve(tmp_path)
    assert resolved.source == "default"
    assert resolved.config == StorageConfig(path=str(tmp_path / "perstack"))
    assert resolved.describe_source() == "default ./perstack"


def test_env_storage_path_beats_the_default(tmp_path):
    resolved = resolve(tmp_path, env={"PERSTACK_STORAGE_PATH": "data/runs"})
    assert resolved.source == "env"
    assert resolved.config.path == str(tmp_path / "data" / "runs")
    assert resolved.describe_source() == "env PERSTACK_STORAGE_PATH"


def test_empty_env_storage_path_is_ignored(tmp_path):
    assert resolve(tmp_path, env={"PERSTACK_STORAGE_PATH": ""}).source == "default"


def test_found_config_beats_the_env(tmp_path):
    toml = write_toml(tmp_path, S3_TOML)
    resolved = resolve(tmp_path, env={"PERSTACK_STORAGE_PATH": "/elsewhere"})
    assert resolved.source == "file" and resolved.config_file == toml
    assert resolved.config.type == "s3" and resolved.config.bucket == "my-bucket"
    assert resolved.describe_source() == f"file {toml}"


def test_flag_beats_the_config_file_and_the_env(tmp_path):
    write_toml(tmp_path, S3_TOML)
    resolved = resolve(tmp_path, "./here", env={"PERSTACK_STORAGE_PATH": "/elsewhere"})
    assert resolved.source == "flag" and resolved.describe_source() == "flag --storage"
    assert resolved.config == StorageConfig(path=str(tmp_path / "here"))


def test_flag_does_not_read_a_broken_config_file(tmp_path):
    write_toml(tmp_path, "[storage\n")
    assert resolve(tmp_path, "./here").config.path == str(tmp_path / "here")


def test_explicit_config_beats_the_found_one(tmp_path):
    write_toml(tmp_path, S3_TOML)
    other = write_toml(tmp_path / "other", '[storage.filesystem]\npath = "store"\n')
    resolved = resolve(tmp_path, config="other/perstack.toml")
    assert resolved.config_file == other
    assert resolved.config == StorageConfig(path=str(tmp_path / "other" / "store"))


def test_config_is_found_walking_up_from_the_working_directory(tmp_path):
    toml = write_toml(tmp_path, S3_TOML)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    resolved = resolve(deep)
    assert resolved.config_file == toml and resolved.config.bucket == "my-bucket"


def test_nearest_config_wins_when_walking_up(tmp_path):
    write_toml(tmp_path, S3_TOML)
    near = write_toml(tmp_path / "project", '[storage]\ntype = "filesystem"\n')
    resolved = resolve(tmp_path / "project")
    assert resolved.config_file == near and resolved.config.type == "filesystem"


def test_config_without_storage_section_falls_through_to_env(tmp_path):
    toml = write_toml(tmp_path, '[experts."my-expert"]\ninstruction = "hi"\n')
    resolved = resolve(tmp_path, env={"PERSTACK_STORAGE_PATH": "/data"})
    assert resolved.source == "env" and resolved.config.path == "/data"
    assert resolved.config_file == toml
    assert resolve(tmp_path).source == "default"


def test_other_perstack_sections_are_ignored(tmp_path):
    write_toml(
        tmp_path,
        'model = "claude"\n[provider]\nproviderName = 42\n'
        '[storage.filesystem]\npath = "runs"\n[experts.x]\nweird = [1, 2]\n',
    )
    assert resolve(tmp_path).config.path == str(tmp_path / "runs")


def test_filesystem_path_in_the_file_is_relative_to_the_file_folder(tmp_path):
    write_toml(
        tmp_path / "proj",
        '[storage]\ntype = "filesystem"\n[storage.filesystem]\npath = "../shared/perstack"\n',
    )
    deep = tmp_path / "proj" / "sub"
    deep.mkdir()
    resolved = resolve(deep)
    assert Path(resolved.config.path).resolve() == (tmp_path / "shared" / "perstack").resolve()


def test_filesystem_without_path_is_perstack_beside_the_file(tmp_path):
    write_toml(tmp_path, '[storage]\ntype = "filesystem"\n')
    (tmp_path / "sub").mkdir()
    assert resolve(tmp_path / "sub").config.path == str(tmp_path / "perstack")


def test_type_is_inferred_from_the_only_subtable(tmp_path):
    write_toml(tmp_path, '[storage.r2]\naccountId = "acct"\nbucket = "b"\nprefix = "p"\n')
    config = resolve(tmp_path).config
    assert (config.type, config.account_id, config.bucket, config.prefix) == (
        "r2",
        "acct",
        "b",
        "p",
    )


def test_s3_settings_are_read_from_the_file(tmp_path):
    write_toml(tmp_path, S3_TOML)
    assert resolve(tmp_path).config == StorageConfig(
        type="s3",
        bucket="my-bucket",
        region="eu-west-1",
        prefix="team/perstack",
        endpoint="http://127.0.0.1:9000",
        force_path_style=True,
    )


# --- credentials ----------------------------------------------------------------------


def test_secret_in_the_file_works_but_warns(tmp_path):
    toml = write_toml(
        tmp_path, S3_TOML + 'accessKeyId = "AKIA-FILE"\nsecretAccessKey = "s3cr3t-file"\n'
    )
    resolved = resolve(tmp_path)
    assert resolved.config.access_key_id == "AKIA-FILE"
    assert resolved.config.secret_access_key == "s3cr3t-file"
    assert len(resolved.warnings) == 2
    assert all(str(toml) in w and "environment" in w for w in resolved.warnings)
    assert "storage.s3.secretAccessKey" in resolved.warnings[1]
    assert not any("s3cr3t-file" in w for w in resolved.warnings)


def test_secret_warning_reaches_stderr_through_the_cli(tmp_path, monkeypatch, capsys):
    write_toml(
        tmp_path,
        '[storage]\ntype = "filesystem"\n[storage.filesystem]\npath = "p"\n'
        '[storage.s3]\nbucket = "b"\nsecretAccessKey = "s3cr3t"\n',
    )
    monkeypatch.chdir(tmp_path)
    assert main(["info"]) == 0
    err = capsys.readouterr().err
    assert "perstack-tui: warning: " in err and "storage.s3.secretAccessKey" in err
    assert "s3cr3t" not in err


def test_config_without_secrets_draws_no_warning(tmp_path):
    write_toml(tmp_path, S3_TOML)
    assert resolve(tmp_path).warnings == []


def test_r2_credentials_come_from_the_environment(tmp_path):
    env = {"R2_ACCESS_KEY_ID": "id-env", "R2_SECRET_ACCESS_KEY": "secret-env"}
    config = resolve(tmp_path, "r2://acct/bucket", env=env).config
    assert (config.access_key_id, config.secret_access_key) == ("id-env", "secret-env")


def test_s3_credentials_are_left_to_the_aws_default_chain(tmp_path):
    env = {"AWS_ACCESS_KEY_ID": "id", "R2_ACCESS_KEY_ID": "other"}
    config = resolve(tmp_path, "s3://bucket", env=env).config
    assert config.access_key_id is None and config.secret_access_key is None


def test_storage_config_repr_hides_credentials():
    config = StorageConfig(type="s3", bucket="b", secret_access_key="s3cr3t", access_key_id="id")
    assert "s3cr3t" not in repr(config) and "'id'" not in repr(config)


# --- --storage URIs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("./runs", "runs"),
        ("runs", "runs"),
        ("../up/runs", "../up/runs"),
        ("data:2024", "data:2024"),
    ],
)
def test_path_uris_are_relative_to_the_working_directory(tmp_path, uri, expected):
    expected_path = os.path.normpath(tmp_path / expected)
    assert parse_uri(uri, tmp_path) == StorageConfig(path=expected_path)


def test_absolute_path_and_file_uri(tmp_path):
    assert parse_uri("/abs/perstack", tmp_path).path == "/abs/perstack"
    assert parse_uri("file:///abs/my%20runs", tmp_path).path == "/abs/my runs"
    assert parse_uri("file://localhost/abs", tmp_path).path == "/abs"


def test_s3_uri_with_every_option(tmp_path):
    config = parse_uri(
        "s3://bucket/team/perstack?region=eu-west-1&endpoint=http://127.0.0.1:9000"
        "&forcePathStyle=true",
        tmp_path,
    )
    assert config == StorageConfig(
        type="s3",
        bucket="bucket",
        prefix="team/perstack",
        region="eu-west-1",
        endpoint="http://127.0.0.1:9000",
        force_path_style=True,
    )


def test_s3_uri_without_prefix_or_options(tmp_path):
    assert parse_uri("s3://bucket", tmp_path) == StorageConfig(type="s3", bucket="bucket")
    assert parse_uri("s3://bucket/", tmp_path).prefix == ""
    assert parse_uri("s3://b?forcePathStyle=FALSE", tmp_path).force_path_style is False


def test_r2_uri(tmp_path):
    assert parse_uri("r2://acct/bucket/some/prefix", tmp_path) == StorageConfig(
        type="r2", account_id="acct", bucket="bucket", prefix="some/prefix"
    )
    assert parse_uri("r2://acct/bucket", tmp_path).prefix == ""
    assert parse_uri("r2://a/b?endpoint=http://127.0.0.1:1", tmp_path).endpoint == (
        "http://127.0.0.1:1"
    )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://key:secret@bucket/p", "credentials are never read from a URI"),
        ("s3://bucket/p?secretAccessKey=abc", "credentials are never read from a URI"),
        ("r2://key@acct/bucket", "credentials are never read from a URI"),
        ("s3://bucket?colour=red", "unknown option 'colour'"),
        ("s3://bucket?forcePathStyle=maybe", "forcePathStyle: expected true or false, got 'maybe'"),
        ("s3:///prefix", "got no bucket"),
        ("r2://acct", "got no bucket"),
        ("r2:///bucket", "got no account id"),
        ("gs://bucket", "unknown scheme 'gs://'"),
        ("file://host/abs", "expected file:///absolute/path"),
        ("file:///abs?x=1", "unknown option 'x'"),
        ("", "expected a path"),
    ],
)
def test_bad_uris_are_refused_with_a_clear_message(tmp_path, uri, message):
    with pytest.raises(ConfigError, match="--storage") as raised:
        parse_uri(uri, tmp_path)
    assert message in str(raised.value)


def test_refused_credentials_are_not_echoed(tmp_path):
    for uri in ("s3://AKIAXX:topsecret@bucket/p", "s3://bucket/p?secretAccessKey=topsecret"):
        with pytest.raises(ConfigError) as raised:
            parse_uri(uri, tmp_path)
        assert "topsecret" not in str(raised.value)


# --- bad configuration through the real CLI -------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[storage]\ntype = "gcs"\n',
            'storage.type: expected "filesystem", "s3" or "r2", got "gcs"',
        ),
        ('[storage]\ntype = "s3"\n', "storage.s3: missing, expected a [storage.s3] table"),
        ('[storage]\ntype = "s3"\n[storage.s3]\nregion = "x"\n', "storage.s3.bucket: required"),
        ("[storage.s3]\nbucket = 42\n", "storage.s3.bucket: expected a string, got 42"),
        (
            '[storage.s3]\nbucket = "b"\nforcePathStyle = "yes"\n',
            'storage.s3.forcePathStyle: expected true or false, got "yes"',
        ),
        ('[storage.r2]\nbucket = "b"\n', "storage.r2.accountId: required, expected a string"),
        ("[storage.filesystem]\npath = [1]\n", "storage.filesystem.path: expected a string"),
        ('[storage.s3]\nbucekt = "b"\n', "storage.s3.bucekt: unknown key (expected one of: bucket"),
        ('[storage]\nkind = "s3"\n', "storage.kind: unknown key (expected one of: type"),
        ('storage = "s3"\n', 'storage: expected a table ([storage]), got "s3"'),
        ('[storage]\ns3 = "b"\n', 'storage.s3: expected a table, got "b"'),
        (
            '[storage.s3]\nbucket = "b"\n[storage.r2]\naccountId = "a"\nbucket = "b"\n',
            "storage.type: required when several",
        ),
        ("[storage\n", "malformed TOML"),
    ],
)
def test_bad_config_names_file_key_and_expectation_and_exits_2(
    tmp_path, monkeypatch, capsys, toml, expected
):
    path = write_toml(tmp_path, toml)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERSTACK_STORAGE_PATH", raising=False)
    assert main(["info"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and expected in err
    assert "Traceback" not in err and "pydantic" not in err and "validation error" not in err


def test_unreadable_config_file_exits_2(tmp_path, monkeypatch, capsys):
    path = write_toml(tmp_path, S3_TOML)
    path.write_bytes(b"\xff\xfe[storage]\n")
    monkeypatch.chdir(tmp_path)
    assert main(["info"]) == 2
    assert f"{path}: " in capsys.readouterr().err


def test_missing_explicit_config_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["info", "--config", "nope.toml"]) == 2
    assert "nope.toml: no such file" in capsys.readouterr().err


def test_bad_uri_exits_2_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["info", "--storage", "s3://k:v@bucket"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "credentials" in err and ":v@" not in err


# --- the factory ----------------------------------------------------------------------


def test_factory_builds_a_filesystem_storage(tmp_path):
    storage = create_storage(StorageConfig(path=str(tmp_path)))
    assert isinstance(storage, FileSystemStorage) and storage.base == tmp_path.resolve()


def test_factory_builds_s3_and_r2_storages_from_config():
    from perstack_tui.storage.s3 import R2Storage, S3Storage

    s3 = create_storage(
        StorageConfig(type="s3", bucket="b", prefix="p", region="r", endpoint="http://e:1")
    )
    assert isinstance(s3, S3Storage) and s3.storage_info().location.startswith("s3://b/p/")
    r2 = create_storage(StorageConfig(type="r2", account_id="acct", bucket="b", prefix="x"))
    assert isinstance(r2, R2Storage) and r2.storage_info().location == "r2://acct/b/x/"


def test_resolving_and_filesystem_storage_do_not_import_boto3(tmp_path):
    write_toml(tmp_path, S3_TOML)
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from perstack_tui.config import resolve_storage\n"
        "from perstack_tui.storage.factory import create_storage\n"
        f"r = resolve_storage(cwd=Path({str(tmp_path)!r}), environ={{}})\n"
        "assert r.config.type == 's3'\n"
        f"resolve_storage('r2://a/b', cwd=Path({str(tmp_path)!r}), environ={{}})\n"
        f"create_storage(resolve_storage('./x', cwd=Path({str(tmp_path)!r})).config)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'textual'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []


# --- perstack.toml.example ------------------------------------------------------------

EXAMPLE = Path(__file__).parent.parent / "perstack.toml.example"


@pytest.mark.parametrize("storage_type", ["filesystem", "s3", "r2"])
def test_example_config_is_valid_for_every_type(tmp_path, storage_type):
    text = EXAMPLE.read_text().replace('type = "filesystem"', f'type = "{storage_type}"')
    write_toml(tmp_path, text)
    resolved = resolve(tmp_path)
    assert resolved.config.type == storage_type and resolved.warnings == []


def test_example_config_shows_every_option():
    from perstack_tui.config import STORAGE_KEYS

    text = EXAMPLE.read_text()
    for table, names in STORAGE_KEYS.items():
        for name in names:
            assert f"{name} = " in text or f"[storage.{name}]" in text, (table, name)
