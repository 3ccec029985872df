"""Write small random-weight models of real architectures, in Hugging Face format.

No model weights can be downloaded where the tests and the CPU benchmark run, yet the server
must be exercised through its real loading path (``config.json`` + safetensors weights +
tokenizer files with a chat template, read by ``transformers``). This module makes such a
directory: a transformers config of a real architecture (Llama, Qwen2) with random weights,
and a word-level tokenizer built with ``tokenizers`` whose vocabulary covers every id the
model can emit (``w0``, ``w1``, ...), so every generated token decodes to visible text.

Also a command: ``python -m modelfleet.serving.tiny OUT_DIR [--preset qwen2-0.5b]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

CHAT_TEMPLATE: Final = (
    "{% for message in messages %}<|{{ message['role'] }}|> {{ message['content'] }} </s> "
    "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
"""A minimal chat template: ``<|role|> content </s>`` per message, then ``<|assistant|>``."""

SPECIAL_TOKENS: Final = ("<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>")
BOS_ID: Final = 1
EOS_ID: Final = 2


@dataclass(frozen=True)
class TinyPreset:
    """Shape of a random-weight model."""

    architecture: str
    """``llama`` or ``qwen2`` (transformers model types)."""
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    max_positions: int


PRESETS: Final[dict[str, TinyPreset]] = {
    # The tests' and the CPU benchmark's model: 2 layers, hidden 64 (~70k parameters).
    "tiny-llama": TinyPreset("llama", 2, 64, 128, 4, 2, 512, 2048),
    # The same size in Qwen2's architecture (biased q/k/v, tied embeddings): the GPU
    # benchmark's architecture, small enough for the tests.
    "tiny-qwen2": TinyPreset("qwen2", 2, 64, 128, 4, 2, 512, 2048),
    # Qwen2.5-0.5B's shape (494M parameters with its 151,936-token vocabulary) for the GPU
    # benchmark.
    "qwen2-0.5b": TinyPreset("qwen2", 24, 896, 4864, 14, 2, 151936, 32768),
}


def _tokenizer(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = [f"w{i}" for i in range(vocab_size - len(SPECIAL_TOKENS))]
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # WordPiece's decoder joins tokens with spaces (no "##" in this vocabulary).
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    from tokenizers import AddedToken

    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
    return tokenizer


def write_tiny_model(
    out_dir: Path, *, preset: str = "tiny-llama", seed: int = 0, dtype: str = "float32"
) -> Path:
    """Write a random-weight model of ``preset`` (a key of ``PRESETS``) to ``out_dir``:
    ``config.json``, ``generation_config.json``, ``model.safetensors`` (sharded for big
    models), ``tokenizer.json``, ``tokenizer_config.json`` with the chat template. Same
    ``seed``, same weights. Returns ``out_dir``. Needs torch and transformers."""
    import torch
    import transformers

    hf: Any = transformers  # transformers' annotations are looser than mypy --strict wants

    shape = PRESETS[preset]
    out_dir.mkdir(parents=True, exist_ok=True)
    config = hf.AutoConfig.for_model(
        shape.architecture,
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.max_positions,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=0,
        tie_word_embeddings=shape.architecture == "qwen2",
    )
    torch.manual_seed(seed)
    model = hf.AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    if shape.hidden <= 256:
        # Random init at std 0.02 makes a tiny model's logits nearly flat, so greedy
        # decoding would hinge on float rounding. Wider weights give clear winners.
        with torch.no_grad():
            for param in model.parameters():
                if param.dim() > 1:
                    param.normal_(0.0, 0.3)
    model.save_pretrained(out_dir, safe_serialization=True)
    fast = hf.PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer(shape.vocab),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<unk>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)
    meta = {"preset": preset, "seed": seed, "dtype": dtype}
    (out_dir / "modelfleet-tiny.json").write_text(json.dumps(meta))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    """``python -m modelfleet.serving.tiny OUT_DIR [--preset P] [--seed N] [--dtype D]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny-llama")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    args = parser.parse_args(argv)
    path = write_tiny_model(args.out_dir, preset=args.preset, seed=args.seed, dtype=args.dtype)
    print(path)


if __name__ == "__main__":
    main()
