"""``nexttoken.load``: a model with its tokenizer, and the few things one does with both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import NextTokenTable, next_token_probs, top_tokens
from .checkpoint import CheckpointError, load_checkpoint
from .generate import generate
from .model import GPT
from .tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer, parse_numbers

__all__ = ["LanguageModel", "load", "pretrained_models"]


class LanguageModel:
    """A model (``.model``, a ``torch.nn.Module``) and its tokenizer (``.tokenizer``)."""

    def __init__(
        self,
        model: GPT,
        tokenizer: SignalTokenizer | CharTokenizer | BPETokenizer | None,
        config: dict[str, Any] | None = None,
        source: str = "",
    ):
        if tokenizer is not None and tokenizer.vocab_size > model.config.vocab_size:
            raise CheckpointError(
                f"the tokenizer has {tokenizer.vocab_size} tokens but the model only {model.config.vocab_size}; "
                "they do not belong together"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or {}
        self.source = source

    def _text_tokenizer(self) -> CharTokenizer | BPETokenizer:
        if self.tokenizer is None:
            raise CheckpointError(
                f"{self.source or 'this model'} has no tokenizer files (vocab.json and merges.txt, or "
                "tokenizer.json); copy them into the directory to use text, or work on token ids "
                "(lm.model, nexttoken.generate)"
            )
        assert not isinstance(self.tokenizer, SignalTokenizer)
        return self.tokenizer

    @property
    def is_signal(self) -> bool:
        return isinstance(self.tokenizer, SignalTokenizer)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> LanguageModel:
        self.model.to(device)
        return self

    def __repr__(self) -> str:
        c = self.model.config
        return (
            f"LanguageModel({self.source or 'in memory'}: {c.objective}, {c.n_layer} layers, width {c.n_embd}, "
            f"context {c.context_length}, {self._describe_tokenizer()})"
        )

    def _describe_tokenizer(self) -> str:
        if self.tokenizer is None:
            return "no tokenizer"
        return f"{self.tokenizer.kind} tokenizer of {self.tokenizer.vocab_size} tokens"

    # --- tokens ----------------------------------------------------------------------------

    def prompt_values(self, prompt: Any) -> np.ndarray:
        """A signal prompt (comma-separated text or numbers) as a float array."""
        values = (
            parse_numbers(prompt)
            if isinstance(prompt, str)
            else np.asarray(prompt, dtype=np.float64).ravel()
        )
        if values.size == 0 or np.isnan(values).all():
            raise ValueError(
                "the prompt has no numbers; give comma-separated values such as '0.1,0.5,0.9'"
            )
        return values

    def affine_of(self, prompt: Any) -> tuple[float, float]:
        """``(scale, loc)`` of a signal prompt: its values were tokenized as ``(x - loc) / scale``.

        ``(1.0, 0.0)`` for text models. Pass them on: ``lm.decode(ids, *lm.affine_of(prompt))``.
        """
        if not isinstance(self.tokenizer, SignalTokenizer):
            return 1.0, 0.0
        values = torch.from_numpy(self.prompt_values(prompt))[None]
        loc, scale = self.tokenizer.loc_scale(values)
        return float(scale[0]), float(loc[0])

    def encode(self, prompt: Any) -> list[int]:
        """Text (or, for a signal model, numbers) -> token ids."""
        if isinstance(self.tokenizer, SignalTokenizer):
            return self.tokenizer.encode(self.prompt_values(prompt))
        tokenizer = self._text_tokenizer()
        if not isinstance(prompt, str):
            raise ValueError("a text model's prompt is a string")
        ids = tokenizer.encode(prompt)
        if not ids:
            raise ValueError("the prompt is empty; give at least one character")
        return ids

    def decode(self, ids: Any, scale: float = 1.0, loc: float = 0.0) -> Any:
        """Ids -> text, or values (bin centres times ``scale`` plus ``loc``) for a signal model."""
        ids = [int(i) for i in torch.as_tensor(ids).reshape(-1).tolist()]
        if isinstance(self.tokenizer, SignalTokenizer):
            return self.tokenizer.decode(ids, scale, loc)
        return self._text_tokenizer().decode(ids)

    def token_str(self, token_id: int, scale: float = 1.0, loc: float = 0.0) -> str:
        if isinstance(self.tokenizer, SignalTokenizer):
            return self.tokenizer.token_str(token_id, scale, loc)
        if self.tokenizer is None:
            return f"<{token_id}>"  # no tokenizer files: tables show ids
        return self.tokenizer.token_str(token_id)

    # --- prediction --------------------------------------------------------------------------

    def next_token_distribution(
        self,
        prompt: Any,
        top_k: int = 10,
        *,
        probs_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> NextTokenTable:
        """The ``top_k`` most probable next tokens after ``prompt``, with probabilities and their total.

        ``probs_fn`` maps the prompt's ids to the distribution (default:
        ``analysis.next_token_probs`` of this model; the explorer passes its batcher)."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (got {top_k})")
        if not self.model.config.causal:
            raise ValueError(
                "next-token distributions need a causal GPT; this model is a masked LM (use infill)"
            )
        ids = self.encode(prompt)
        affine = self.affine_of(prompt)
        ids_t = torch.tensor(ids)
        probs = probs_fn(ids_t) if probs_fn else next_token_probs(self.model, ids_t)
        table = top_tokens(probs, ids, lambda i: self.token_str(i, *affine), top_k)
        window = self.model.config.context_length
        if len(ids) > window:
            table.notes.append(f"the prompt has {len(ids)} tokens; the model saw its last {window}")
        return table

    def generate(self, prompt: Any, max_new_tokens: int, **kwargs: Any) -> dict[str, Any]:
        """Continue ``prompt``; returns ``{"prompt_ids", "ids" (new only), "text"}`` (+ ``"values"`` for signals).

        Keywords are :func:`nexttoken.generate`'s, and ``generate_fn``, a function with its
        arguments to run instead (the explorer passes its batcher)."""
        run = kwargs.pop("generate_fn", None) or generate
        ids = self.encode(prompt)
        if isinstance(self.tokenizer, SignalTokenizer):
            kwargs.setdefault("suppress_ids", self.tokenizer.special_ids)
        out = run(self.model, torch.tensor([ids], device=self.device), max_new_tokens, **kwargs)
        new = out[0, len(ids) :].tolist()
        result: dict[str, Any] = {"prompt_ids": ids, "ids": new}
        if isinstance(self.tokenizer, SignalTokenizer):
            values = [float(v) for v in self.decode(new, *self.affine_of(prompt))]
            result["values"] = values
            result["text"] = ",".join(f"{v:.6g}" for v in values)
        else:
            result["text"] = self.decode(new)
        return result


def load(
    path: str | Path, device: str | torch.device = "cpu", *, allow_pickle: bool = False
) -> LanguageModel:
    """Load a nexttoken checkpoint directory, a Hugging Face GPT-2 directory, or a hub name.

    Raises a ``CheckpointError`` (a ``ValueError``) that says what is wrong and what to do
    when the directory is missing, incomplete, truncated or foreign. ``allow_pickle`` lets a
    GPT-2 directory that has only ``pytorch_model.bin`` load (pickle files can run code).
    """
    from .hf import is_hf_gpt2_dir, load_hf_gpt2, resolve_hub_name

    p = Path(path)
    shipped = pretrained_models()
    if not p.exists() and str(path) in shipped:
        p = shipped[str(path)]
    elif not p.exists() and _looks_like_hub_name(str(path)):
        p = resolve_hub_name(str(path))
    if p.is_dir() and (p / "config.json").is_file():
        if is_hf_gpt2_dir(p):
            model, tokenizer = load_hf_gpt2(p, device=device, allow_pickle=allow_pickle)
            return LanguageModel(model, tokenizer, {}, str(path))
        model, tok, config = load_checkpoint(p, device)
        return LanguageModel(model, tok, config, str(path))
    if p.is_dir():
        raise CheckpointError(
            f"{p} has no config.json: it is neither a nexttoken checkpoint nor a Hugging Face GPT-2 directory"
        )
    raise CheckpointError(f"no such model directory: {p}")


PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def pretrained_models() -> dict[str, Path]:
    """Models that ship inside the package, by name -> checkpoint directory."""
    if not PRETRAINED_DIR.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(PRETRAINED_DIR.iterdir())
        if p.is_dir() and (p / "config.json").is_file()
    }


def _looks_like_hub_name(name: str) -> bool:
    parts = name.split("/")
    return not name.startswith((".", "/", "~")) and len(parts) <= 2 and all(parts)
