"""Pydantic models of the Perstack storage format.

Tolerant by design: unknown fields are kept (``extra="allow"``), an unknown event type
parses into :class:`GenericEvent`, and a file that cannot be parsed becomes an
:class:`Unreadable` record carrying its key and the reason. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError


class Model(BaseModel):
    """Base: keeps unknown fields, accepts field names as written by Perstack (camelCase)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The model as Perstack writes it (camelCase, unset optionals left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --- usage, jobs ------------------------------------------------------------------------

JOB_STATUSES = (
    "running",
    "completed",
    "stoppedByMaxSteps",
    "stoppedByInteractiveTool",
    "stoppedByError",
)


class Usage(Model):
    """Token counts. Frozen, so that one empty instance can be shared (by 10,000s of job
    summaries before their usage is read)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    inputTokens: int = 0
    outputTokens: int = 0
    reasoningTokens: int = 0
    totalTokens: int = 0
    cachedInputTokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            inputTokens=self.inputTokens + other.inputTokens,
            outputTokens=self.outputTokens + other.outputTokens,
            reasoningTokens=self.reasoningTokens + other.reasoningTokens,
            totalTokens=self.totalTokens + other.totalTokens,
            cachedInputTokens=self.cachedInputTokens + other.cachedInputTokens,
        )

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            inputTokens=self.inputTokens - other.inputTokens,
            outputTokens=self.outputTokens - other.outputTokens,
            reasoningTokens=self.reasoningTokens - other.reasoningTokens,
            totalTokens=self.totalTokens - other.totalTokens,
            cachedInputTokens=self.cachedInputTokens - other.cachedInputTokens,
        )


#: no tokens (shared: a :class:`Usage` is frozen)
NO_USAGE = Usage()


class Job(Model):
    # Field order is Perstack's, so a stored Job is byte-identical to the job.json it writes.
    id: str
    coordinatorExpertKey: str
    status: str
    totalSteps: int = 0
    startedAt: int
    maxSteps: int | None = None
    usage: Usage = Field(default_factory=Usage)
    finishedAt: int | None = None


# --- messages and parts -----------------------------------------------------------------


class Part(Model):
    type: str
    id: str | None = None


class TextPart(Part):
    type: Literal["textPart"] = "textPart"
    text: str = ""


class ThinkingPart(Part):
    type: Literal["thinkingPart"] = "thinkingPart"
    thinking: str = ""
    signature: str | None = None


class UrlPart(Part):
    type: Literal["imageUrlPart", "fileUrlPart"]
    url: str = ""
    mimeType: str | None = None


class InlinePart(Part):
    type: Literal["imageInlinePart", "fileInlinePart"]
    encodedData: str = ""
    mimeType: str | None = None


class BinaryPart(Part):
    type: Literal["imageBinaryPart", "fileBinaryPart"]
    data: Any = None
    mimeType: str | None = None


class ToolCallPart(Part):
    type: Literal["toolCallPart"] = "toolCallPart"
    toolCallId: str
    toolName: str
    args: Any = None


class ToolResultPart(Part):
    type: Literal["toolResultPart"] = "toolResultPart"
    toolCallId: str
    toolName: str
    contents: list[AnyPart] = Field(default_factory=list)
    isError: bool | None = None


class GenericPart(Part):
    """A part of a type this version does not know; its fields are kept."""


_PART_TYPES: dict[str, type[Part]] = {
    "textPart": TextPart,
    "thinkingPart": ThinkingPart,
    "imageUrlPart": UrlPart,
    "fileUrlPart": UrlPart,
    "imageInlinePart": InlinePart,
    "fileInlinePart": InlinePart,
    "imageBinaryPart": BinaryPart,
    "fileBinaryPart": BinaryPart,
    "toolCallPart": ToolCallPart,
    "toolResultPart": ToolResultPart,
}


def _part_discriminator(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _PART_TYPES else "generic"


AnyPart = Annotated[
    Annotated[TextPart, Tag("textPart")]
    | Annotated[ThinkingPart, Tag("thinkingPart")]
    | Annotated[UrlPart, Tag("imageUrlPart")]
    | Annotated[UrlPart, Tag("fileUrlPart")]
    | Annotated[InlinePart, Tag("imageInlinePart")]
    | Annotated[InlinePart, Tag("fileInlinePart")]
    | Annotated[BinaryPart, Tag("imageBinaryPart")]
    | Annotated[BinaryPart, Tag("fileBinaryPart")]
    | Annotated[ToolCallPart, Tag("toolCallPart")]
    | Annotated[ToolResultPart, Tag("toolResultPart")]
    | Annotated[GenericPart, Tag("generic")],
    Discriminator(_part_discriminator),
]
ToolResultPart.model_rebuild()


MESSAGE_TYPES = ("instructionMessage", "userMessage", "expertMessage", "toolMessage")


class Message(Model):
    type: str
    id: str | None = None
    contents: list[AnyPart] = Field(default_factory=list)
    cache: bool | None = None


# --- tools, steps, checkpoints ----------------------------------------------------------


class ToolCall(Model):
    id: str
    skillName: str = ""
    toolName: str
    args: Any = None


class ToolResult(Model):
    id: str
    skillName: str = ""
    toolName: str
    result: list[AnyPart] = Field(default_factory=list)

    @property
    def is_error(self) -> bool:
        """A result is an error when a part says so or its text is an ``{"error": ...}`` object."""
        return any(part_is_error(p) for p in self.result)


def part_is_error(part: Part) -> bool:
    if isinstance(part, ToolResultPart):
        return bool(part.isError) or any(part_is_error(p) for p in part.contents)
    if getattr(part, "isError", False):
        return True
    if isinstance(part, TextPart):
        text = part.text.lstrip()
        if text.startswith("{") and '"error"' in text[:200]:
            try:
                value = json.loads(text)
            except ValueError:
                return False
            return isinstance(value, dict) and "error" in value
    return False


class ExpertRef(Model):
    key: str
    name: str = ""
    version: str = ""


class DelegateTo(Model):
    expert: ExpertRef
    toolCallId: str
    toolName: str
    query: str = ""


class DelegatedBy(Model):
    expert: ExpertRef
    toolCallId: str
    toolName: str
    checkpointId: str
    runId: str


class ErrorInfo(Model):
    name: str = "Error"
    message: str = ""
    statusCode: int | None = None
    isRetryable: bool | None = None


CHECKPOINT_STATUSES = (
    "init",
    "proceeding",
    "completed",
    "stoppedByInteractiveTool",
    "stoppedByDelegate",
    "stoppedByExceededMaxSteps",
    "stoppedByError",
)


class Checkpoint(Model):
    id: str
    jobId: str
    runId: str
    status: str
    stepNumber: int
    messages: list[Message] = Field(default_factory=list)
    expert: ExpertRef | None = None
    delegateTo: list[DelegateTo] | None = None
    delegatedBy: DelegatedBy | None = None
    usage: Usage = Field(default_factory=Usage)
    contextWindow: int | None = None
    contextWindowUsage: float | None = None
    pendingToolCalls: list[ToolCall] | None = None
    partialToolResults: list[ToolResult] | None = None
    metadata: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    retryCount: int | None = None


class Step(Model):
    stepNumber: int
    inputMessages: list[Message] | None = None
    newMessages: list[Message] = Field(default_factory=list)
    toolCalls: list[ToolCall] | None = None
    toolResults: list[ToolResult] | None = None
    pendingToolCalls: list[ToolCall] | None = None
    partialToolResults: list[ToolResult] | None = None
    usage: Usage = Field(default_factory=Usage)
    startedAt: int | None = None
    finishedAt: int | None = None


# --- run settings -----------------------------------------------------------------------


class ProviderConfig(Model):
    providerName: str
    apiKey: str | None = None


class RunInput(Model):
    text: str | None = None
    interactiveToolCallResult: Any = None


class RunSetting(Model):
    model: str
    providerConfig: ProviderConfig
    jobId: str
    runId: str
    expertKey: str
    input: RunInput = Field(default_factory=RunInput)
    experts: dict[str, Any] = Field(default_factory=dict)
    reasoningBudget: Any = None
    maxSteps: int | None = None
    maxRetries: int | None = None
    timeout: int | None = None
    startedAt: int
    updatedAt: int
    perstackApiBaseUrl: str | None = None
    perstackApiKey: str | None = None
    perstackBaseSkillCommand: Any = None
    env: dict[str, str] = Field(default_factory=dict)
    proxyUrl: str | None = None
    verbose: bool | None = None

    # pydantic reserves "model_" names; "model" is Perstack's own field name.
    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def masked(self, reveal: bool = False) -> dict[str, Any]:
        """The run setting as JSON, secrets masked unless ``reveal``."""
        data = self.to_json_dict()
        return data if reveal else mask_secrets(data)


# --- events -----------------------------------------------------------------------------


class EventMeta(NamedTuple):
    """What a listing tells about an event without reading it (from its file name).

    A named tuple, not a pydantic model: a listing of 10,000s of events makes one per key,
    and a tuple is built in less than half the time (nothing to validate: the name was
    parsed by :func:`perstack_tui.keys.parse_event_name`). Immutable, so a listing can be
    shared between a cache and screens.
    """

    timestamp: int
    stepNumber: int
    type: str
    key: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        return self._asdict()


class RunEvent(Model):
    type: str
    id: str = ""
    expertKey: str = ""
    timestamp: int
    jobId: str
    runId: str
    stepNumber: int


class StartRun(RunEvent):
    type: Literal["startRun"] = "startRun"
    initialCheckpoint: Checkpoint | None = None
    inputMessages: list[Message] = Field(default_factory=list)


class StartGeneration(RunEvent):
    type: Literal["startGeneration"] = "startGeneration"
    messages: list[Message] = Field(default_factory=list)


class Retry(RunEvent):
    type: Literal["retry"] = "retry"
    reason: str = ""
    newMessages: list[Message] = Field(default_factory=list)
    toolCalls: list[ToolCall] | None = None
    toolResults: list[ToolResult] | None = None
    usage: Usage = Field(default_factory=Usage)


class CallTools(RunEvent):
    type: Literal["callTools"] = "callTools"
    newMessage: Message | None = None
    toolCalls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


class CallInteractiveTool(RunEvent):
    type: Literal["callInteractiveTool"] = "callInteractiveTool"
    newMessage: Message | None = None
    toolCall: ToolCall | None = None
    usage: Usage = Field(default_factory=Usage)


class CallDelegate(RunEvent):
    type: Literal["callDelegate"] = "callDelegate"
    newMessage: Message | None = None
    toolCalls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)


class ResolveToolResults(RunEvent):
    type: Literal["resolveToolResults"] = "resolveToolResults"
    toolResults: list[ToolResult] = Field(default_factory=list)


class AttemptCompletion(RunEvent):
    type: Literal["attemptCompletion"] = "attemptCompletion"
    toolResult: ToolResult | None = None


class FinishToolCall(RunEvent):
    type: Literal["finishToolCall"] = "finishToolCall"
    newMessages: list[Message] = Field(default_factory=list)


class ResumeToolCalls(RunEvent):
    type: Literal["resumeToolCalls"] = "resumeToolCalls"
    pendingToolCalls: list[ToolCall] = Field(default_factory=list)
    partialToolResults: list[ToolResult] = Field(default_factory=list)


class FinishAllToolCalls(RunEvent):
    type: Literal["finishAllToolCalls"] = "finishAllToolCalls"
    newMessages: list[Message] = Field(default_factory=list)


class ContinueToNextStep(RunEvent):
    type: Literal["continueToNextStep"] = "continueToNextStep"
    checkpoint: Checkpoint
    step: Step | None = None
    nextCheckpoint: Checkpoint | None = None


class StopEvent(RunEvent):
    """The stop* events: a checkpoint and the step that ended."""

    type: Literal["stopRunByInteractiveTool", "stopRunByDelegate", "stopRunByExceededMaxSteps"]
    checkpoint: Checkpoint
    step: Step | None = None


class StopRunByError(RunEvent):
    type: Literal["stopRunByError"] = "stopRunByError"
    checkpoint: Checkpoint
    step: Step | None = None
    error: ErrorInfo = Field(default_factory=ErrorInfo)


class CompleteRun(RunEvent):
    type: Literal["completeRun"] = "completeRun"
    checkpoint: Checkpoint
    step: Step | None = None
    text: str = ""
    usage: Usage = Field(default_factory=Usage)


class StreamDelta(RunEvent):
    type: Literal["streamReasoning", "streamRunResult"]
    delta: str = ""


class StreamBoundary(RunEvent):
    """start/complete of a streamed text; ``text`` is set on the complete* events."""

    type: Literal[
        "startStreamingReasoning",
        "completeStreamingReasoning",
        "startStreamingRunResult",
        "completeStreamingRunResult",
    ]
    text: str | None = None


class GenericEvent(RunEvent):
    """An event of a type this version does not know (or an older one); payload kept.

    Runtime-only events (initializeRuntime, skillConnected... on the CLI's stdout) carry
    no step: they get step 0, which no persisted event has (steps start at 1).
    """

    stepNumber: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        """The event as it was written (no step 0 added where it had none)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


_EVENT_TYPES: dict[str, type[RunEvent]] = {
    "startRun": StartRun,
    "startGeneration": StartGeneration,
    "retry": Retry,
    "callTools": CallTools,
    "callInteractiveTool": CallInteractiveTool,
    "callDelegate": CallDelegate,
    "resolveToolResults": ResolveToolResults,
    "attemptCompletion": AttemptCompletion,
    "finishToolCall": FinishToolCall,
    "resumeToolCalls": ResumeToolCalls,
    "finishAllToolCalls": FinishAllToolCalls,
    "continueToNextStep": ContinueToNextStep,
    "stopRunByInteractiveTool": StopEvent,
    "stopRunByDelegate": StopEvent,
    "stopRunByExceededMaxSteps": StopEvent,
    "stopRunByError": StopRunByError,
    "completeRun": CompleteRun,
    "streamReasoning": StreamDelta,
    "streamRunResult": StreamDelta,
    "startStreamingReasoning": StreamBoundary,
    "completeStreamingReasoning": StreamBoundary,
    "startStreamingRunResult": StreamBoundary,
    "completeStreamingRunResult": StreamBoundary,
}
KNOWN_EVENT_TYPES = frozenset(_EVENT_TYPES)
STREAMING_EVENT_TYPES = frozenset(
    t for t, cls in _EVENT_TYPES.items() if cls in (StreamDelta, StreamBoundary)
)
CHECKPOINT_EVENT_TYPES = frozenset(
    t for t, cls in _EVENT_TYPES.items() if "checkpoint" in cls.model_fields
)


# --- unreadable records and parsing -----------------------------------------------------


class Unreadable(BaseModel):
    """A stored file that could not be parsed: shown to the user, never dropped."""

    key: str
    reason: str
    preview: str = ""

    @property
    def type(self) -> str:
        return "unreadable"


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
        return f"invalid: {where}: {first['msg']}{more}"
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
    return f"{type(error).__name__}: {error}"


def _load(key: str, raw: bytes | str | dict[str, Any]) -> dict[str, Any] | Unreadable:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        return Unreadable(key=key, reason=_reason(error), preview=text[:500])
    if not isinstance(value, dict):
        return Unreadable(key=key, reason=f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_event(raw: bytes | str | dict[str, Any], key: str = "") -> RunEvent | Unreadable:
    """Parse an event file; unknown types become :class:`GenericEvent`."""
    data = _load(key, raw)
    if isinstance(data, Unreadable):
        return data
    cls = _EVENT_TYPES.get(data.get("type", ""), GenericEvent)
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        return Unreadable(key=key, reason=_reason(error), preview=json.dumps(data)[:500])


M = TypeVar("M", bound=BaseModel)


def parse_model(model: type[M], raw: bytes | str | dict[str, Any], key: str = "") -> M | Unreadable:
    """Parse a job, checkpoint or run setting file into ``model`` or an :class:`Unreadable`.

    Stored bytes are validated straight from JSON (one pass, no dicts in between: a 20 MB
    checkpoint in about half the time, so half as long a hold of the interpreter lock from
    a worker thread); any input that fails takes the two-step path below, whose message
    says what is wrong and whose result the fast path's equals for any input both accept.
    """
    if not isinstance(raw, dict):
        try:
            return model.model_validate_json(raw)
        except ValueError:  # ValidationError (bad JSON or shape) and what may wrap it
            pass
    data = _load(key, raw)
    if isinstance(data, Unreadable):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as error:
        return Unreadable(key=key, reason=_reason(error), preview=json.dumps(data)[:500])


# --- secrets ----------------------------------------------------------------------------

MASK = "********"
_SECRET_NAME = re.compile(r"key|secret|token|password|passwd|credential|auth", re.IGNORECASE)
# Names that match the pattern above but hold no secret.
_NOT_SECRET = frozenset({"expertKey", "coordinatorExpertKey", "key", "toolCallId", "cacheKey"})


def is_secret_name(name: str) -> bool:
    """Whether a field or variable name looks like it holds a secret."""
    return name not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


def mask_secrets(value: Any) -> Any:
    """A copy of a JSON value with secrets masked.

    Every value under an ``env`` object is masked (it is the whole process environment),
    and so is every string under a name that looks like a secret (``apiKey``,
    ``perstackApiKey``, ``*secret*``, ``*token*``, ``*password*``...).
    """
    if isinstance(value, dict):
        masked: dict[str, Any] = {}
        for name, item in value.items():
            if name == "env" and isinstance(item, dict):
                masked[name] = {variable: MASK for variable in item}
            elif is_secret_name(name) and isinstance(item, str) and item:
                masked[name] = MASK
            else:
                masked[name] = mask_secrets(item)
        return masked
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    return value


AnyEvent = RunEvent | Unreadable
