"""The models against real Perstack output: specific classes, tolerance, round-trips, masking."""

from __future__ import annotations

import json

import pytest

from perstack_tui import keys
from perstack_tui.models import (
    _EVENT_TYPES,
    MASK,
    CallTools,
    Checkpoint,
    GenericEvent,
    Job,
    ResolveToolResults,
    RunSetting,
    ToolResult,
    Unreadable,
    mask_secrets,
    parse_event,
    parse_model,
)

from .conftest import CLI_RUN, CORRUPT_EVENT, FIXTURES, PROGRAMMATIC

STDOUT = FIXTURES / "cli-local-run" / "stdout-perstack-run.ndjson"
RUNTIME_ONLY = {"initializeRuntime", "skillConnected", "skillDisconnected"}


def stdout_events() -> list[dict]:
    return [json.loads(line) for line in STDOUT.read_text().splitlines() if line.strip()]


def test_every_persisted_event_on_stdout_parses_into_its_own_class():
    persisted = [e for e in stdout_events() if e["type"] not in RUNTIME_ONLY]
    assert len(persisted) > 50
    for data in persisted:
        event = parse_event(json.dumps(data))
        assert not isinstance(event, (Unreadable, GenericEvent)), data["type"]
        assert isinstance(event, _EVENT_TYPES[data["type"]])
        assert event.type == data["type"] and event.stepNumber == data["stepNumber"]


def test_runtime_only_events_parse_as_generic_keeping_their_payload():
    runtime = [e for e in stdout_events() if e["type"] in RUNTIME_ONLY]
    assert {e["type"] for e in runtime} == RUNTIME_ONLY
    for data in runtime:
        event = parse_event(json.dumps(data))
        assert isinstance(event, GenericEvent)
        assert event.to_json_dict() == data  # nothing added, nothing lost
    connected = next(e for e in runtime if e["type"] == "skillConnected")
    assert parse_event(connected).model_extra["skillName"] == connected["skillName"]


def test_every_real_fixture_file_parses_except_the_corrupt_event():
    files = [*CLI_RUN.rglob("*.json"), *PROGRAMMATIC.rglob("*.json")]
    assert len(files) >= 13
    for path in files:
        key = "/".join(path.parts[path.parts.index("jobs") :])
        parsed_key = keys.parse_key(key)
        raw = path.read_bytes()
        if parsed_key.kind == "event":
            result = parse_event(raw, key)
            if key == CORRUPT_EVENT:
                assert isinstance(result, Unreadable)
                continue
            assert isinstance(result, _EVENT_TYPES[parsed_key.event.type]), path
        elif parsed_key.kind == "checkpoint":
            assert isinstance(parse_model(Checkpoint, raw), Checkpoint), path
        elif parsed_key.kind == "job":
            assert isinstance(parse_model(Job, raw), Job), path
        else:
            assert parsed_key.kind == "run-setting"
            assert isinstance(parse_model(RunSetting, raw), RunSetting), path


def test_corrupt_event_file_is_unreadable_with_its_key_and_reason():
    raw = (CLI_RUN / CORRUPT_EVENT).read_bytes()
    result = parse_event(raw, CORRUPT_EVENT)
    assert isinstance(result, Unreadable)
    assert result.key == CORRUPT_EVENT
    assert result.reason.startswith("not valid JSON")
    assert result.preview.startswith('{"type":"streamRunResult"')


def test_event_missing_its_job_id_is_unreadable_naming_the_field():
    data = next(e for e in stdout_events() if e["type"] == "callTools")
    del data["jobId"]
    result = parse_event(json.dumps(data), "jobs/x/runs/y/event-1-1-callTools.json")
    assert isinstance(result, Unreadable)
    assert "jobId" in result.reason and result.key.endswith("callTools.json")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"", b"\xff\xfe", b"null"])
def test_non_object_or_undecodable_files_are_unreadable(raw):
    result = parse_event(raw, "k")
    assert isinstance(result, Unreadable) and result.key == "k" and result.reason


def test_unknown_fields_and_types_survive_a_round_trip():
    data = next(e for e in stdout_events() if e["type"] == "callTools")
    data["futureField"] = {"nested": [1, 2]}
    data["toolCalls"][0]["sandbox"] = "strict"
    data["newMessage"]["contents"].append({"type": "audioPart", "id": "a1", "seconds": 3})
    event = parse_event(json.dumps(data))
    assert isinstance(event, CallTools)
    dumped = event.to_json_dict()
    assert dumped["futureField"] == {"nested": [1, 2]}
    assert dumped["toolCalls"][0]["sandbox"] == "strict"
    assert dumped["newMessage"]["contents"][-1] == {"type": "audioPart", "id": "a1", "seconds": 3}
    assert parse_event(dumped).to_json_dict() == dumped

    future = {**data, "type": "startSkillSandbox", "sandbox": {"image": "x"}}
    generic = parse_event(future)
    assert isinstance(generic, GenericEvent)
    assert generic.to_json_dict()["sandbox"] == {"image": "x"}


def test_missing_file_read_is_a_tool_error_and_health_check_is_not():
    data = next(e for e in stdout_events() if e["type"] == "resolveToolResults")
    event = parse_event(data)
    assert isinstance(event, ResolveToolResults)
    by_name = {r.toolName: r for r in event.toolResults}
    assert by_name["readTextFile"].is_error
    assert not by_name["healthCheck"].is_error


def test_tool_result_error_flag_and_nested_parts_count_as_errors():
    flagged = ToolResult.model_validate(
        {
            "id": "c",
            "toolName": "t",
            "result": [
                {
                    "type": "toolResultPart",
                    "toolCallId": "c",
                    "toolName": "t",
                    "contents": [{"type": "textPart", "text": "boom"}],
                    "isError": True,
                }
            ],
        }
    )
    assert flagged.is_error
    text_mentioning_error = ToolResult.model_validate(
        {"id": "c", "toolName": "t", "result": [{"type": "textPart", "text": '{"errors": 0}'}]}
    )
    assert not text_mentioning_error.is_error


def test_mask_secrets_hides_env_api_keys_and_secret_names():
    setting = {
        "providerConfig": {"providerName": "anthropic", "apiKey": "sk-ant-1"},
        "perstackApiKey": "psk-2",
        "env": {"HOME": "/home/dev", "PATH": "/bin"},
        "aws": {"clientSecret": "s3cr3t", "sessionToken": "tok", "dbPassword": "pw"},
        "expertKey": "code-reviewer",
        "experts": {"code-reviewer": {"key": "code-reviewer"}},
        "usage": {"inputTokens": 5, "totalTokens": 9, "cachedInputTokens": 1},
    }
    masked = mask_secrets(setting)
    assert masked["providerConfig"] == {"providerName": "anthropic", "apiKey": MASK}
    assert masked["perstackApiKey"] == MASK
    assert masked["env"] == {"HOME": MASK, "PATH": MASK}
    assert masked["aws"] == {"clientSecret": MASK, "sessionToken": MASK, "dbPassword": MASK}
    assert masked["expertKey"] == "code-reviewer"
    assert masked["experts"] == setting["experts"]
    assert masked["usage"] == setting["usage"]
    assert setting["env"]["HOME"] == "/home/dev"  # the original is untouched


def test_run_setting_masked_unless_revealed():
    raw = next(PROGRAMMATIC.rglob("run-setting.json")).read_bytes()
    setting = parse_model(RunSetting, raw)
    assert isinstance(setting, RunSetting)
    assert setting.masked()["env"] == {"EXAMPLE_SECRET": MASK}
    assert setting.masked(reveal=True)["env"] == {"EXAMPLE_SECRET": "redacted-example"}


_MODEL_OF_FILE = {"job.json": Job, "run-setting.json": RunSetting}


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for p in FIXTURES.rglob("*.json")
        if p.name in _MODEL_OF_FILE or p.parent.name == "checkpoints"
    ),
    ids=lambda p: str(p.relative_to(FIXTURES)),
)
def test_stored_bytes_parse_as_their_loaded_json_does(path):
    """parse_model validates stored bytes straight from JSON: the model equals the one
    validated from the loaded dict, field for field (extra fields too)."""
    model = _MODEL_OF_FILE.get(path.name, Checkpoint)
    raw = path.read_bytes()
    fast, slow = parse_model(model, raw, str(path)), parse_model(model, json.loads(raw))
    assert isinstance(fast, model)
    assert fast == slow
    assert fast.model_dump(mode="json") == slow.model_dump(mode="json")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": "x", "status": ', "JSON"),  # cut short
        (b"[1, 2]", "expected a JSON object, got list"),
        (b'{"id": 3}', ""),  # a shape the model refuses
    ],
)
def test_bytes_the_fast_path_refuses_say_why_as_before(raw, reason):
    parsed = parse_model(Job, raw, "jobs/x/job.json")
    assert isinstance(parsed, Unreadable)
    assert parsed.key == "jobs/x/job.json"
    assert reason.lower() in parsed.reason.lower()
    assert parsed.reason
