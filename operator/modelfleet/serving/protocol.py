"""The OpenAI API's request and response shapes the server speaks (pydantic models).

Requests accept the fields the OpenAI clients send; unknown fields are ignored, as
OpenAI-compatible servers do. Fields the server cannot honour (``n`` > 1, ``logprobs``,
tools, non-zero penalties, ...) are rejected with 400 naming the field rather than
silently ignored. ``ignore_eos`` (as in vLLM) is an extension for benchmarks.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UnsupportedField(ValueError):
    """A request sets a field the server does not implement; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class SamplingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    # torch.Generator.manual_seed takes 64 bits; OpenAI documents seed as an int64.
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = 1
    frequency_penalty: float | None = 0.0
    presence_penalty: float | None = 0.0
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    ignore_eos: bool = False

    @property
    def token_limit(self) -> int | None:
        """The most tokens to generate, as the request sets it (None: unset)."""
        return self.max_tokens

    @property
    def token_limit_param(self) -> str:
        """The field ``token_limit`` comes from (for error messages)."""
        return "max_tokens"

    @property
    def stop_strings(self) -> list[str]:
        """``stop`` as a list of non-empty strings."""
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in stops if s]

    def check_supported(self) -> None:
        """Raise ``UnsupportedField`` for a field this server cannot honour."""
        if self.n not in (None, 1):
            raise UnsupportedField("n", "only n=1 is supported")
        for name in ("frequency_penalty", "presence_penalty"):
            if getattr(self, name) not in (None, 0.0):
                raise UnsupportedField(name, f"{name} is not supported (only 0)")
        if self.logit_bias:
            raise UnsupportedField("logit_bias", "logit_bias is not supported")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise UnsupportedField("stop", "at most 4 stop sequences")
        if self.stream_options is not None and not self.stream:
            raise UnsupportedField("stream_options", "stream_options needs stream=true")


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self, index: int) -> str:
        """The message's text; raises ``UnsupportedField`` for non-text parts."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        pieces = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise UnsupportedField(
                    f"messages[{index}].content",
                    f"content part type {part.type!r} is not supported",
                )
            pieces.append(part.text)
        return "".join(pieces)


class ChatCompletionRequest(SamplingRequest):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = False
    top_logprobs: int | None = None
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None

    def check_supported(self) -> None:
        super().check_supported()
        if self.logprobs:
            raise UnsupportedField("logprobs", "logprobs are not supported")
        if self.tools:
            raise UnsupportedField("tools", "tools are not supported")
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            raise UnsupportedField("response_format", "only response_format type 'text'")

    @property
    def token_limit(self) -> int | None:
        """``max_completion_tokens`` (the newer name) or ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def token_limit_param(self) -> str:
        return "max_completion_tokens" if self.max_completion_tokens else "max_tokens"


class CompletionRequest(SamplingRequest):
    """``POST /v1/completions``."""

    prompt: str | list[str] | list[int]
    logprobs: int | None = None
    echo: bool | None = False
    suffix: str | None = None
    best_of: int | None = None

    @model_validator(mode="after")
    def _one_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be empty")
        return self

    def check_supported(self) -> None:
        super().check_supported()
        if (
            isinstance(self.prompt, list)
            and isinstance(self.prompt[0], str)
            and len(self.prompt) > 1
        ):
            raise UnsupportedField("prompt", "only one prompt per request is supported")
        for name in ("logprobs", "suffix"):
            if getattr(self, name) is not None:
                raise UnsupportedField(name, f"{name} is not supported")
        if self.echo:
            raise UnsupportedField("echo", "echo is not supported")
        if self.best_of not in (None, 1):
            raise UnsupportedField("best_of", "best_of is not supported")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorBody
