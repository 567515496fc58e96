"""One checkpoint directory format: JSON and safetensors only, every file written atomically.

A checkpoint directory holds

- ``config.json``: format name and version, the model config, the tokenizer kind, and the
  training and data settings that produced it;
- ``model.safetensors``: the weights (the step is in its metadata);
- ``tokenizer.json``: the tokenizer;
- ``training_state.safetensors`` (while training): weights, optimizer moments, step and RNG
  states, self-contained so that resuming never mixes files of two different saves;
- ``metrics.jsonl`` beside them (written by the trainer).

Each file is written to a temporary name in the same directory and renamed over the old
one, so a training run killed at any moment leaves each file either old or new, never torn.
No pickle anywhere: loading a checkpoint cannot run code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .model import GPT, GPTConfig
from .tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer, tokenizer_from_json

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "atomic_write",
    "save_checkpoint",
    "load_checkpoint",
    "read_config",
    "is_checkpoint",
    "save_training_state",
    "load_training_state",
]

FORMAT = "nexttoken-checkpoint"
FORMAT_VERSION = 1
AnyTokenizer = SignalTokenizer | CharTokenizer | BPETokenizer


class CheckpointError(ValueError):
    """A checkpoint directory that is missing, incomplete, truncated or foreign."""


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path next to ``path``, flush it to disk, rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def model_tensors(model: GPT) -> dict[str, torch.Tensor]:
    """The state dict to save: CPU, contiguous, without ``lm_head.weight`` when it is tied to ``wte``."""
    return {
        name: t.detach().cpu().contiguous()
        for name, t in model.state_dict().items()
        if not (model.config.tie_word_embeddings and name == "lm_head.weight")
    }


def is_checkpoint(directory: str | Path) -> bool:
    return (Path(directory) / "config.json").is_file() and (
        Path(directory) / "model.safetensors"
    ).is_file()


def save_checkpoint(
    directory: str | Path,
    model: GPT,
    tokenizer: AnyTokenizer,
    *,
    step: int = 0,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``config.json``, ``tokenizer.json`` and ``model.safetensors`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "tokenizer": {
            "kind": tokenizer.kind,
            "vocab_size": tokenizer.vocab_size,
            "file": "tokenizer.json",
        },
        **(extra or {}),
    }
    _write_text(directory / "tokenizer.json", tokenizer.to_json())
    atomic_write(
        directory / "model.safetensors",
        lambda p: save_file(
            model_tensors(model), str(p), metadata={"format": "pt", "step": str(step)}
        ),
    )
    _write_text(directory / "config.json", json.dumps(config, indent=2) + "\n")


def read_config(directory: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a nexttoken checkpoint, checked for format and version."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{directory} has no config.json; it is not a nexttoken checkpoint directory"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path} is not valid JSON ({e}); the file is truncated or foreign"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(
            f'{path} is not a nexttoken checkpoint config (no "format": "{FORMAT}")'
        )
    if int(config.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} was written by a newer nexttoken (format {config['format_version']}); upgrade nexttoken"
        )
    return config


def _load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete ({what})")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file ({e}); restore it or train again"
        ) from None


def _check_and_load_state(model: GPT, tensors: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    if model.config.tie_word_embeddings:
        tensors = dict(tensors)
        tensors.setdefault("lm_head.weight", tensors.get("transformer.wte.weight", torch.empty(0)))
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not match its config.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, t in tensors.items():
        if t.shape != expected[name].shape:
            raise CheckpointError(
                f"{source}: {name} has shape {tuple(t.shape)} but config.json implies {tuple(expected[name].shape)}"
            )
    model.load_state_dict(tensors)


def load_weights(model: GPT, path: str | Path) -> None:
    """Load a weights file written by :func:`model_tensors` (tied ``lm_head`` left out) into
    ``model``, with the same checks and errors as a checkpoint's ``model.safetensors``."""
    path = Path(path)
    _check_and_load_state(model, _load_tensors(path, "weights"), path)


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[GPT, AnyTokenizer, dict[str, Any]]:
    """Load ``(model, tokenizer, config)`` from a checkpoint directory; the model is in eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no such checkpoint directory: {directory}")
    config = read_config(directory)
    try:
        model_config = GPTConfig.from_dict(config["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(
            f"{directory}/config.json has an invalid model section: {e}"
        ) from None
    tok_path = directory / config.get("tokenizer", {}).get("file", "tokenizer.json")
    if not tok_path.is_file():
        raise CheckpointError(
            f"{tok_path} is missing; a checkpoint needs the tokenizer its model was trained with"
        )
    tokenizer = tokenizer_from_json(tok_path.read_text(encoding="utf-8"))
    if tokenizer.vocab_size != model_config.vocab_size:
        raise CheckpointError(
            f"the tokenizer in {tok_path} has {tokenizer.vocab_size} tokens but the model expects "
            f"{model_config.vocab_size}; the two files come from different models"
        )
    model = GPT(model_config)
    _check_and_load_state(
        model,
        _load_tensors(directory / "model.safetensors", "weights"),
        directory / "model.safetensors",
    )
    return model.to(device).eval(), tokenizer, config


# --- training state ---------------------------------------------------------------------------


def save_training_state(
    directory: str | Path,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    *,
    step: int,
    rng: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> None:
    """Write ``training_state.safetensors``: weights, optimizer state, RNG states and step."""
    tensors = {f"model.{name}": t for name, t in model_tensors(model).items()}
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    for key, value in rng.items():
        tensors[f"rng.{key}"] = value.cpu().contiguous()
    header = {"step": step, "param_groups": opt["param_groups"], **meta}
    atomic_write(
        Path(directory) / "training_state.safetensors",
        lambda p: save_file(tensors, str(p), metadata={"nexttoken": json.dumps(header)}),
    )


def saved_step(directory: str | Path) -> int | None:
    """The step ``training_state.safetensors`` in ``directory`` was saved at (None: no such file)."""
    path = Path(directory) / "training_state.safetensors"
    if not path.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            header = json.loads((fh.metadata() or {}).get("nexttoken", "{}"))
    except Exception as e:  # safetensors raises its own error types for a damaged file
        raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
    step = header.get("step")
    return int(step) if step is not None else None


def load_training_state(
    directory: str | Path, model: GPT, optimizer: torch.optim.Optimizer
) -> tuple[int, dict[str, torch.Tensor], dict[str, Any]]:
    """Restore weights and optimizer state in place; return ``(step, rng_states, header)``."""
    path = Path(directory) / "training_state.safetensors"
    tensors = _load_tensors(path, "training state; resume needs it")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = json.loads((fh.metadata() or {}).get("nexttoken", "{}"))
    if "step" not in header:
        raise CheckpointError(
            f"{path} has no nexttoken header; it is foreign or from an incompatible version"
        )
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    _check_and_load_state(model, weights, path)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    groups = header["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as e:
        raise CheckpointError(
            f"{path}: the optimizer state does not fit this model ({e})"
        ) from None
    rng = {k[len("rng.") :]: v for k, v in tensors.items() if k.startswith("rng.")}
    return int(header["step"]), rng, header
