"""Hugging Face GPT-2 directories in and out.

A GPT-2 directory (as ``save_pretrained`` writes it, or as the hub's original files are)
holds ``config.json``, ``model.safetensors`` and ``vocab.json`` + ``merges.txt`` (or a
``tokenizer.json``). Our parameter names are GPT-2's, so loading is a key-for-key copy in
which the ``Conv1D`` weights (stored ``(in, out)``) are transposed to ``nn.Linear``'s ``(out, in)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from .checkpoint import (
    CheckpointError,
    _check_and_load_state,
    _load_tensors,
    atomic_write,
    model_tensors,
)
from .model import GPT, GPTConfig
from .tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer, tokenizer_from_json

__all__ = ["is_hf_gpt2_dir", "load_hf_gpt2", "save_hf_gpt2", "resolve_hub_name", "TRANSPOSED"]

#: GPT-2 stores these as Conv1D ``(in, out)``; nn.Linear wants ``(out, in)``.
TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_ACTIVATIONS = {
    "gelu_new": "gelu_new",
    "gelu_pytorch_tanh": "gelu_new",
    "gelu": "gelu",
    "relu": "relu",
}
OUR_TOKENIZER_FILE = "nexttoken_tokenizer.json"


def is_hf_gpt2_dir(path: str | Path) -> bool:
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and (
        config.get("model_type") == "gpt2" or "GPT2LMHeadModel" in config.get("architectures", [])
    )


def _config_from_hf(hf: dict[str, Any]) -> GPTConfig:
    unsupported = {
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "scale_attn_weights": True,
        "add_cross_attention": False,
    }
    for key, ours in unsupported.items():
        if hf.get(key, ours) != ours:
            raise CheckpointError(
                f"this GPT-2 config sets {key}={hf[key]!r}, which nexttoken does not support"
            )
    act = hf.get("activation_function", "gelu_new")
    if act not in _ACTIVATIONS:
        raise CheckpointError(
            f"activation_function={act!r} is not supported; nexttoken has {sorted(_ACTIVATIONS)}"
        )
    n_embd = hf.get("n_embd", hf.get("hidden_size", 768))
    return GPTConfig(
        vocab_size=int(hf.get("vocab_size", 50257)),
        context_length=int(hf.get("n_positions", hf.get("n_ctx", 1024))),
        n_layer=int(hf.get("n_layer", 12)),
        n_head=int(hf.get("n_head", 12)),
        n_embd=int(n_embd),
        dropout=0.0,
        bias=True,
        activation=_ACTIVATIONS[act],
        layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)),
        tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def _hf_tokenizer(path: Path) -> SignalTokenizer | CharTokenizer | BPETokenizer | None:
    """The directory's tokenizer, or None when it has no tokenizer files (saved apart)."""
    if (path / OUR_TOKENIZER_FILE).is_file():
        return tokenizer_from_json((path / OUR_TOKENIZER_FILE).read_text(encoding="utf-8"))
    if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
        return BPETokenizer.from_files(path / "vocab.json", path / "merges.txt")
    if (path / "tokenizer.json").is_file():
        return BPETokenizer.from_tokenizer_json(
            (path / "tokenizer.json").read_text(encoding="utf-8")
        )
    return None


def _hf_weights(path: Path, allow_pickle: bool) -> dict[str, torch.Tensor]:
    if (path / "model.safetensors").is_file():
        return _load_tensors(path / "model.safetensors", "weights")
    if (path / "pytorch_model.bin").is_file():
        if not allow_pickle:
            raise CheckpointError(
                f"{path} has only pytorch_model.bin, a pickle file that could run code when loaded. "
                "Convert it to model.safetensors, or opt in with allow_pickle=True (CLI: --allow-pickle) "
                "if you trust its source"
            )
        # weights_only=True: the restricted unpickler that only rebuilds tensors.
        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise CheckpointError(f"{path} has no model.safetensors (nor pytorch_model.bin)")


def load_hf_gpt2(
    path: str | Path, device: str | torch.device = "cpu", allow_pickle: bool = False
) -> tuple[GPT, SignalTokenizer | CharTokenizer | BPETokenizer | None]:
    """Load a Hugging Face GPT-2 directory as ``(GPT, tokenizer)``; the model is in eval mode.

    The tokenizer is None when the directory has no tokenizer files (a model saved by
    ``save_pretrained`` apart from its tokenizer): the model still works on token ids.
    """
    path = Path(path)
    try:
        hf = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}/config.json is unreadable ({e})") from None
    config = _config_from_hf(hf)
    model = GPT(config)
    state: dict[str, torch.Tensor] = {}
    for key, value in _hf_weights(path, allow_pickle).items():
        name = key if key.startswith(("transformer.", "lm_head.")) else f"transformer.{key}"
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # causal-mask buffers of older checkpoints, not weights
        if name.endswith(TRANSPOSED):
            value = value.t()
        state[name] = value.contiguous()
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the tied head is wte itself
    _check_and_load_state(model, state, path)
    tokenizer = _hf_tokenizer(path)
    if tokenizer is not None and tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError(
            f"the tokenizer of {path} has {tokenizer.vocab_size} tokens but the model only {config.vocab_size}"
        )
    return model.to(device).eval(), tokenizer


def save_hf_gpt2(
    model: GPT, tokenizer: SignalTokenizer | CharTokenizer | BPETokenizer, path: str | Path
) -> None:
    """Write ``model`` as a Hugging Face GPT-2 directory that ``GPT2LMHeadModel.from_pretrained`` loads.

    Needs GPT-2's architecture choices: causal, pre-LN LayerNorm with biases, learned positions.
    """
    c = model.config
    problems = [
        f"{name}={getattr(c, name)!r} (GPT-2 has {want!r})"
        for name, want in (
            ("objective", "gpt"),
            ("norm", "layernorm"),
            ("norm_position", "pre"),
            ("positions", "learned"),
            ("bias", True),
            ("parametrization", "standard"),
        )
        if getattr(c, name) != want
    ]
    if problems:
        raise ValueError("cannot export as GPT-2: " + ", ".join(problems))
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    hf_config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.context_length,
        "n_ctx": c.context_length,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_inner": None,
        "activation_function": c.activation,
        "layer_norm_epsilon": c.layer_norm_epsilon,
        "tie_word_embeddings": c.tie_word_embeddings,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "bos_token_id": c.vocab_size - 1,
        "eos_token_id": c.vocab_size - 1,
    }
    tensors = {
        name: value.t().contiguous() if name.endswith(TRANSPOSED) else value
        for name, value in model_tensors(model).items()
    }
    atomic_write(
        path / "model.safetensors", lambda p: save_file(tensors, str(p), metadata={"format": "pt"})
    )
    if isinstance(tokenizer, BPETokenizer):
        tmp = path / f".tok-{os.getpid()}"
        tmp.mkdir(exist_ok=True)
        tokenizer.tok.model.save(str(tmp))
        for name in ("vocab.json", "merges.txt"):
            os.replace(tmp / name, path / name)
        tmp.rmdir()
    else:
        atomic_write(
            path / OUR_TOKENIZER_FILE, lambda p: p.write_text(tokenizer.to_json(), encoding="utf-8")
        )
    atomic_write(
        path / "config.json", lambda p: p.write_text(json.dumps(hf_config, indent=2) + "\n")
    )


def resolve_hub_name(name: str) -> Path:
    """Download a GPT-2 model's files from the Hugging Face hub (needs ``nexttoken[hub]`` and network)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise CheckpointError(
            f"{name!r} is not a directory here; to fetch it from the Hugging Face hub install "
            "the hub extra (pip install 'nexttoken[hub]'), or pass the path of a downloaded directory"
        ) from None
    try:
        local = snapshot_download(
            name,
            allow_patterns=[
                "config.json",
                "model.safetensors",
                "vocab.json",
                "merges.txt",
                "tokenizer.json",
            ],
        )
    except Exception as e:  # the hub client raises many kinds of network and lookup errors
        raise CheckpointError(
            f"{name!r} is not a directory here, and fetching it from the Hugging Face hub failed ({type(e).__name__}: {e}). Without network "
            "access, download the directory elsewhere (config.json, model.safetensors, vocab.json, merges.txt) "
            "and pass its path"
        ) from None
    return Path(local)
