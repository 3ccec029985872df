"""Units of the built-in server that need no model: text assembly with stop strings,
sampling, error parameter names and the command line."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from modelfleet.cli import app
from modelfleet.serving.detokenize import TextStream
from modelfleet.serving.engine import SamplingParams, sample_token
from modelfleet.serving.errors import param_of
from modelfleet.serving.server import parse_args


class CharTokenizer:
    """Token i is chr(i); 0xFFFD stands for half of a multi-byte character."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


def feed(stream: TextStream, text: str) -> list[str]:
    return [stream.push(ord(c)) for c in text]


def test_text_is_released_as_it_comes_without_stops() -> None:
    stream = TextStream(CharTokenizer())
    assert feed(stream, "abc") == ["a", "b", "c"]
    assert stream.flush() == ""


def test_a_possible_stop_prefix_is_held_back_then_released() -> None:
    stream = TextStream(CharTokenizer(), stops=["END"])
    assert feed(stream, "aEN") == ["a", "", ""]
    assert feed(stream, "x") == ["ENx"]  # not a stop after all
    assert not stream.stopped


def test_a_stop_string_ends_the_text_before_it() -> None:
    stream = TextStream(CharTokenizer(), stops=["zz", "END"])
    assert "".join(feed(stream, "hi ENDmore")) == "hi "
    assert stream.stopped
    assert stream.push(ord("x")) == "" and stream.flush() == ""


def test_an_incomplete_character_is_held_until_complete() -> None:
    class Partial(CharTokenizer):
        def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
            text = super().decode(ids)
            return text[:-1] + "\ufffd" if text.endswith("\x01") else text.replace("\x01", "")

    stream = TextStream(Partial())
    assert stream.push(ord("a")) == "a"
    assert stream.push(1) == ""
    assert stream.push(ord("é")) == "é"


def test_nucleus_sampling_keeps_only_the_top_p_mass() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    generator = torch.Generator().manual_seed(0)
    draws = {sample_token(logits, SamplingParams(1.0, 0.7, 0), generator) for _ in range(300)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.7; 2 and 3 are cut
    draws = {sample_token(logits, SamplingParams(1.0, 1.0, 0), generator) for _ in range(300)}
    assert draws == {0, 1, 2, 3}
    low = {sample_token(logits, SamplingParams(0.05, 1.0, 0), generator) for _ in range(100)}
    assert low == {0}  # a low temperature is nearly greedy


@pytest.mark.parametrize(
    ("location", "param"),
    [
        (("body", "temperature"), "temperature"),
        (("body", "messages", 0, "role"), "messages[0].role"),
        (("body",), None),
    ],
)
def test_validation_locations_become_openai_params(
    location: tuple[object, ...], param: str | None
) -> None:
    assert param_of(location) == param


def test_command_line_flags_fill_the_settings() -> None:
    settings = parse_args(
        ["--model", "s3://b/m", "--served-model-name", "a", "b", "--max-running-sequences", "4",
         "--max-queue", "9", "--kv-cache-tokens", "1000", "--cpu-threads", "1"]
    )  # fmt: skip
    assert settings.names == ("a", "b")
    assert settings.engine.max_running_sequences == 4
    assert settings.engine.max_queue == 9
    assert settings.engine.kv_cache_tokens == 1000
    assert settings.cpu_threads == 1
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "--max-queue", "0"])


@pytest.mark.parametrize(
    "flags",
    [
        ["--port", "-1"],
        ["--port", "70000"],
        ["--cpu-threads", "0"],
        ["--default-max-tokens", "0"],
        ["--kv-cache-memory-fraction", "nan"],
    ],
)
def test_a_number_out_of_range_is_refused_by_the_command_line(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused as argparse refuses a bad flag (exit 2, the setting named), before the model
    is fetched or loaded: the port used to reach the socket (OverflowError)."""
    with pytest.raises(SystemExit) as caught:
        parse_args(["--model", "m", *flags])
    assert caught.value.code == 2
    setting = flags[0].removeprefix("--").replace("-", "_")
    assert f"error: {setting} must be" in capsys.readouterr().err


def test_modelfleet_serve_passes_its_flags_to_the_server() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--max-running-sequences" in result.output
    assert "--served-model-name" in result.output


def test_incremental_text_equals_decoding_everything_with_a_byte_level_tokenizer() -> None:
    """Byte-level BPE (GPT-2/Llama-3 style): characters span several tokens, spaces merge
    into tokens. Token by token, the released text must add up to the full decode."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    corpus = ["héllo wörld, 日本語のテキスト 🙂 and some plain english words"] * 20
    raw.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw)
    text = "wörld 日本 🙂🙂 héllo, plain"
    ids = tokenizer(text)["input_ids"]
    assert len(ids) > len(text.split())  # several tokens per word: a real test

    stream = TextStream(tokenizer)
    pieces = [stream.push(i) for i in ids]
    assert "".join(pieces) + stream.flush() == tokenizer.decode(ids) == text
    assert all("\ufffd" not in piece for piece in pieces)  # never half a character

    stopping = TextStream(tokenizer, stops=["🙂"])
    released = "".join(stopping.push(i) for i in ids)
    assert stopping.stopped and released == "wörld 日本 "


@pytest.mark.parametrize("temperature", [1e-45, 1e-30, 1e-8])
def test_a_tiny_positive_temperature_draws_the_most_likely_token(temperature: float) -> None:
    # logits / 1e-45 overflowed to inf, softmax gave NaN and multinomial raised: the
    # exception ended the engine thread, so one request made the server answer 503 forever.
    logits = torch.tensor([1.0, 3.0, 2.5, -1.0])
    generator = torch.Generator().manual_seed(0)
    for top_p in (1.0, 0.5):
        assert sample_token(logits, SamplingParams(temperature, top_p, 0), generator) == 1
