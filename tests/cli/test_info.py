"""``perstack-tui info``: the storage in use, where the setting came from, the job count."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from perstack_tui.cli import main

from ..conftest import COORDINATOR_JOB, ERROR_JOB, PROGRAMMATIC_JOB


@pytest.fixture(autouse=True)
def no_storage_env(monkeypatch):
    monkeypatch.delenv("PERSTACK_STORAGE_PATH", raising=False)


def info_json(capsys, *argv: str) -> dict:
    assert main(["info", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_text_shows_location_source_and_job_count(real_dir, capsys):
    assert main(["info", "--storage", str(real_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        f"storage  filesystem:{real_dir.resolve()}",
        "type     filesystem",
        "from     flag --storage",
        "jobs     3",
    ]
    assert lines[4].startswith("index    ") and lines[4].endswith(" (0 jobs known)")


def test_info_shows_the_job_index_that_jobs_filled(real_dir, cache_dir, capsys):
    assert main(["jobs", "--storage", str(real_dir)]) == 0
    capsys.readouterr()
    index = info_json(capsys, "--storage", str(real_dir))["index"]
    assert index["jobs"] == 3 and index["path"].startswith(str(cache_dir))


def test_info_json_on_the_real_fixtures(real_dir, capsys):
    report = info_json(capsys, "--storage", str(real_dir))
    assert report == {
        "type": "filesystem",
        "location": f"filesystem:{real_dir.resolve()}",
        "source": "flag",
        "sourceDescription": "flag --storage",
        "configFile": None,
        "jobs": 3,
        "index": report["index"],
        "warnings": [],
        "notes": [],
    }
    assert report["index"]["jobs"] == 0  # nothing has looked at these jobs yet


def test_info_counts_jobs_without_job_json(real_dir, capsys):
    # the CLI-written jobs have no job.json: they are counted from the key listing alone
    shutil.rmtree(real_dir / "jobs" / PROGRAMMATIC_JOB)
    assert not any(
        (real_dir / "jobs" / j / "job.json").exists() for j in (COORDINATOR_JOB, ERROR_JOB)
    )
    assert info_json(capsys, "--storage", str(real_dir))["jobs"] == 2


def test_info_reports_the_config_file_it_used(real_dir, monkeypatch, capsys):
    project = real_dir.parent
    toml = project / "perstack.toml"
    toml.write_text(
        f'[storage]\ntype = "filesystem"\n[storage.filesystem]\npath = "{real_dir.name}"\n'
    )
    (project / "src").mkdir()
    monkeypatch.chdir(project / "src")
    report = info_json(capsys)
    assert report["source"] == "file" and report["configFile"] == str(toml)
    assert report["sourceDescription"] == f"file {toml}" and report["jobs"] == 3


def test_info_reports_env_and_default_sources(real_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # real_dir is tmp_path / "perstack": the default
    report = info_json(capsys)
    assert (report["source"], report["jobs"]) == ("default", 3)
    monkeypatch.setenv("PERSTACK_STORAGE_PATH", str(tmp_path / "elsewhere"))
    report = info_json(capsys)
    assert report["source"] == "env" and report["sourceDescription"] == (
        "env PERSTACK_STORAGE_PATH"
    )
    assert report["jobs"] == 0 and "does not exist yet" in report["notes"][0]


def test_info_mentions_a_config_file_without_storage_section(tmp_path, monkeypatch, capsys):
    (tmp_path / "perstack.toml").write_text('model = "x"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "from     default ./perstack" in out
    assert f"config   {tmp_path / 'perstack.toml'} (no [storage] section)" in out


def test_info_on_an_s3_bucket(s3_server, monkeypatch, capsys):
    import asyncio

    from perstack_tui.storage.s3 import S3Storage

    bucket = s3_server.make_bucket()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    writer = S3Storage(
        bucket, "team", region="us-east-1", endpoint=s3_server.endpoint, force_path_style=True
    )
    payload = Path(__file__).parent.parent / "fixtures" / "perstack-real"
    job_json = next(payload.rglob("job.json")).read_bytes()

    async def write() -> None:
        for job_id in ("job-a", "job-b"):
            await writer.write_bytes(f"jobs/{job_id}/job.json", job_json)
        await writer.close()

    asyncio.run(write())
    uri = f"s3://{bucket}/team?region=us-east-1&endpoint={s3_server.endpoint}&forcePathStyle=true"
    report = info_json(capsys, "--storage", uri)
    assert (report["type"], report["jobs"], report["source"]) == ("s3", 2, "flag")
    assert report["location"].startswith(f"s3://{bucket}/team/")


def test_info_on_a_missing_bucket_exits_3(s3_server, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    uri = f"s3://no-such-bucket-x1?region=us-east-1&endpoint={s3_server.endpoint}"
    assert main(["info", "--storage", uri + "&forcePathStyle=true"]) == 3
    err = capsys.readouterr().err
    assert "storage error" in err and "no-such-bucket-x1" in err and "Traceback" not in err


def test_info_on_r2_uses_r2_credentials_from_the_environment(s3_server, monkeypatch, capsys):
    bucket = s3_server.make_bucket()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("R2_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", s3_server.secret_key)
    report = info_json(capsys, "--storage", f"r2://acct/{bucket}/p?endpoint={s3_server.endpoint}")
    assert (report["type"], report["location"], report["jobs"]) == (
        "r2",
        f"r2://acct/{bucket}/p/",
        0,
    )


def test_info_on_a_directory_imports_neither_boto3_nor_textual(real_dir):
    code = (
        "import sys\n"
        "from perstack_tui.cli import main\n"
        f"assert main(['info', '--storage', {str(real_dir)!r}]) == 0\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'textual'))\n"
        "print(loaded, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "jobs     3" in result.stdout
    assert result.stderr.strip() == "[]"
