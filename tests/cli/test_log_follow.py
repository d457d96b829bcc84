"""``log --follow``: new events printed once, in order, until the job ends or ctrl-c."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import signal
import sys
import time
from pathlib import Path

from perstack_tui.cli.log import add_arguments, log_command
from perstack_tui.filters import build_filter
from perstack_tui.storage.base import KeyValueStorage
from perstack_tui.storage.filesystem import FileSystemStorage
from perstack_tui.storage.s3 import S3Storage
from tests.conftest import ERROR_JOB
from tests.test_follow import JOB, Writer
from tests.test_follow_s3 import same_bucket

DEADLINE = 15.0


def follow_args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--job", JOB, "--follow", *flags])


async def follow_while_writing(
    storage: KeyValueStorage, writer: Writer, *flags: str, steps: int = 3, types: str | None = None
) -> tuple[int, str]:
    """Run ``log --follow`` while ``writer`` writes a whole job; it must end by itself."""
    await writer.add("run-coordinator", 1, "startRun")
    out = io.StringIO()
    command = asyncio.create_task(
        log_command(storage, follow_args(*flags), build_filter(types=types), out)
    )
    await asyncio.sleep(0)
    await writer.job(steps=steps, pause=0.01)
    code = await asyncio.wait_for(command, DEADLINE)  # returns once the job has ended
    return code, out.getvalue()


async def test_follow_jsonl_prints_every_event_once_in_order_and_exits_when_job_ends(
    tmp_path: Path,
) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    code, out = await follow_while_writing(storage, writer, "--jsonl", "--interval", "0.05")
    assert code == 0
    printed = [json.loads(line)["id"] for line in out.splitlines()]
    assert printed == writer.written


async def test_follow_text_prints_a_step_line_per_new_event(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    code, out = await follow_while_writing(storage, writer, "--interval", "0.05", steps=2)
    assert code == 0
    step_lines = [line for line in out.splitlines() if line.startswith("[Step ")]
    assert len(step_lines) == len(writer.written)
    assert step_lines[-1].startswith("[Step 4] completeRun")


async def test_follow_applies_the_filters_to_new_events(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    code, out = await follow_while_writing(
        storage, writer, "--jsonl", "--interval", "0.05", types="callTools,completeRun"
    )
    assert code == 0
    types = [json.loads(line)["type"] for line in out.splitlines()]
    assert types == ["callTools"] * 3 + ["completeRun", "completeRun"]


async def test_follow_on_a_job_that_already_ended_prints_it_and_exits(real_storage) -> None:
    out = io.StringIO()
    args = follow_args("--jsonl")
    args.job = ERROR_JOB
    code = await asyncio.wait_for(log_command(real_storage, args, build_filter(), out), DEADLINE)
    assert code == 0
    assert [json.loads(line)["type"] for line in out.getvalue().splitlines()] == ["stopRunByError"]


async def test_follow_on_s3_prints_every_event_once_and_exits(s3_storage: S3Storage) -> None:
    writer_storage = same_bucket(s3_storage)
    writer = Writer(writer_storage)
    try:
        code, out = await follow_while_writing(s3_storage, writer, "--jsonl", "--interval", "0.1")
    finally:
        await writer_storage.close()
    assert code == 0
    assert [json.loads(line)["id"] for line in out.splitlines()] == writer.written


async def test_ctrl_c_stops_follow_quietly_with_exit_130(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    await writer.add("run-coordinator", 1, "startRun")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "perstack_tui",
        "log",
        "--storage",
        str(tmp_path),
        "--job",
        JOB,
        "--follow",
        "--jsonl",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        first = await asyncio.wait_for(process.stdout.readline(), DEADLINE)
        assert json.loads(first)["id"] == "ev0"
        await writer.add("run-coordinator", 1, "callTools")
        second = await asyncio.wait_for(process.stdout.readline(), DEADLINE)
        assert json.loads(second)["id"] == "ev1"
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), DEADLINE)
        assert code == 130
        assert await process.stderr.read() == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_follow_on_s3_survives_a_server_restart(s3_server, s3_storage, capsys) -> None:
    writer_storage = same_bucket(s3_storage)
    writer = Writer(writer_storage)
    await writer.add("run-coordinator", 1, "startRun")
    out = io.StringIO()
    args = follow_args("--jsonl", "--interval", "0.1")
    command = asyncio.create_task(log_command(s3_storage, args, build_filter(), out))

    async def printed(count: int) -> None:
        while len(out.getvalue().splitlines()) < count:
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(printed(1), DEADLINE)
        await writer.add("run-coordinator", 1, "callTools")
        await asyncio.wait_for(printed(2), DEADLINE)
        await asyncio.to_thread(s3_server.stop)
        try:
            deadline = time.monotonic() + 30
            while "storage unreachable" not in capsys.readouterr().err:
                assert not command.done() and time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(s3_server.start)
        await writer.add("run-coordinator", 1, "resolveToolResults")
        await writer.add("run-coordinator", 2, "completeRun")
        code = await asyncio.wait_for(command, 30)
    finally:
        command.cancel()
        await writer_storage.close()
    assert code == 0
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == writer.written


async def test_follow_starts_from_the_newest_events_like_tail(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path)
    writer = Writer(storage)
    await writer.job(steps=4, pause=0)  # the job has ended: --follow prints and exits
    out = io.StringIO()
    code = await asyncio.wait_for(
        log_command(storage, follow_args("--jsonl", "--take", "3"), build_filter(), out), DEADLINE
    )
    assert code == 0
    printed = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert printed == writer.written[-3:]
