"""Tokenizers: numbers -> ids for signals, characters or byte-level BPE -> ids for text.

All three share one small interface (:class:`Tokenizer`): ``kind``, ``vocab_size``,
``encode``, ``decode``, ``token_str`` (how one id is shown in a table), ``to_json`` and
:func:`tokenizer_from_json` to rebuild one from the ``tokenizer.json`` file of a checkpoint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

__all__ = [
    "Tokenizer",
    "SignalTokenizer",
    "SCALINGS",
    "CharTokenizer",
    "BPETokenizer",
    "tokenizer_from_json",
    "parse_numbers",
]


class Tokenizer(Protocol):
    kind: str

    @property
    def vocab_size(self) -> int: ...

    def encode(self, prompt: Any) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> Any: ...

    def token_str(self, token_id: int) -> str: ...

    def to_json(self) -> str: ...


#: How a signal tokenizer puts a series on a common scale (see :class:`SignalTokenizer`).
SCALINGS: tuple[str, ...] = ("mean", "standard")
_TINY = 1e-14


def _per_row(t: torch.Tensor) -> torch.Tensor:
    """A per-row statistic ``(...)`` made to broadcast against values ``(..., T)``."""
    return t.unsqueeze(-1) if t.ndim else t


def parse_numbers(text: str) -> np.ndarray:
    """``"0.1, 0.5,,0.9"`` -> ``array([0.1, 0.5, nan, 0.9])`` (an empty item is missing)."""
    items = [s.strip() for s in text.split(",")]
    out = []
    for item in items:
        if item == "" or item.lower() in ("nan", "na"):
            out.append(math.nan)
            continue
        try:
            out.append(float(item))
        except ValueError:
            raise ValueError(
                f"{item!r} is not a number; a signal prompt is comma-separated numbers such as '0.1,0.5,0.9'"
            ) from None
    arr = np.asarray(out, dtype=np.float64)
    if np.isinf(arr).any():
        raise ValueError(
            "the prompt contains inf; give finite numbers (leave an item empty for a missing value)"
        )
    return arr


@dataclass(frozen=True)
class SignalTokenizer:
    """Scaling and uniform binning of real values, with special tokens.

    Each series is first put on a common scale from its own context (NaNs ignored), as
    ``(x - loc) / scale``; ``scaling`` chooses how:

    - ``"mean"``: ``loc = 0``, ``scale`` = mean absolute value (Chronos' mean scaling). A
      level stays in the values, so a series far from zero uses few bins.
    - ``"standard"``: ``loc`` = mean, ``scale`` = standard deviation (instance normalisation,
      as TimesFM, Moirai and PatchTST): a level or a unit change leaves the ids unchanged.

    A zero scale (a constant or all-zero context) falls back to a tiny positive one, so a
    constant maps to the bin nearest zero and decodes back to (almost exactly) itself.
    Then each value goes to the nearest of ``n_bins`` equally spaced bin centres from ``low``
    to ``high`` (boundaries at the midpoints; values beyond the limits clamp to the end bins).
    Ids ``0..n_special-1`` are PAD, EOS, MASK and bin ``b`` has id ``n_special + b``. NaN
    (missing) becomes PAD; special ids decode to NaN.
    """

    n_bins: int = 512
    low: float = -6.0
    high: float = 6.0
    scaling: str = "mean"

    kind = "signal"
    PAD = 0
    EOS = 1
    MASK = 2
    n_special = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_bins", int(self.n_bins))
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if self.n_bins < 2:
            raise ValueError(f"n_bins must be at least 2 (got {self.n_bins})")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"need finite low < high (got low={self.low}, high={self.high})")
        if self.scaling not in SCALINGS:
            raise ValueError(
                f"unknown scaling {self.scaling!r}; choose one of {', '.join(SCALINGS)}"
            )

    @property
    def vocab_size(self) -> int:
        return self.n_special + self.n_bins

    @property
    def special_ids(self) -> list[int]:
        return [self.PAD, self.EOS, self.MASK]

    def centers(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Bin centre values (in scaled units), shaped ``(n_bins,)``, float64."""
        return torch.linspace(self.low, self.high, self.n_bins, dtype=torch.float64, device=device)

    def boundaries(self, device: torch.device | str | None = None) -> torch.Tensor:
        c = self.centers(device)
        return (c[1:] + c[:-1]) / 2

    @staticmethod
    def scale_of(context: torch.Tensor) -> torch.Tensor:
        """Mean absolute value of each row of ``context`` ``(batch, T)``, NaNs ignored -> ``(batch,)``."""
        context = torch.as_tensor(context, dtype=torch.float64)
        observed = ~torch.isnan(context)
        total = torch.where(observed, context.abs(), torch.zeros_like(context)).sum(-1)
        scale = total / observed.sum(-1).clamp(min=1)
        return torch.where(scale > 0, scale, torch.ones_like(scale))

    def loc_scale(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale)``, each ``(batch,)``, of each row of ``context`` ``(batch, T)``.

        Values are tokenized as ``(x - loc) / scale``; see the class docstring.
        """
        context = torch.as_tensor(context, dtype=torch.float64)
        if self.scaling == "mean":
            return torch.zeros(context.shape[:-1], dtype=torch.float64), self.scale_of(context)
        observed = ~torch.isnan(context)
        count = observed.sum(-1).clamp(min=1)
        filled = torch.where(observed, context, torch.zeros_like(context))
        loc = filled.sum(-1) / count
        dev = torch.where(observed, context - loc.unsqueeze(-1), torch.zeros_like(context))
        std = (dev.square().sum(-1) / count).sqrt()
        # A spread below ~1e-14 of the level is rounding, not signal: treat it as constant.
        # Then a tiny scale (relative to the level) keeps the decoded values at the constant.
        tiny = _TINY * torch.clamp(loc.abs(), min=1.0)
        scale = torch.where(std > tiny, std, tiny)
        return loc, scale

    def values_to_ids(
        self, values: torch.Tensor, scale: torch.Tensor, loc: torch.Tensor | float = 0.0
    ) -> torch.Tensor:
        """``values`` ``(batch, T)``, ``scale`` and ``loc`` ``(batch,)`` -> ids ``(batch, T)`` (int64)."""
        values = torch.as_tensor(values, dtype=torch.float64)
        scale = torch.as_tensor(scale, dtype=torch.float64, device=values.device)
        loc_t = torch.as_tensor(loc, dtype=torch.float64, device=values.device)
        scaled = (values - _per_row(loc_t)) / _per_row(scale)
        ids = torch.bucketize(scaled, self.boundaries(values.device)) + self.n_special
        return torch.where(torch.isnan(values), torch.full_like(ids, self.PAD), ids)

    def ids_to_values(
        self,
        ids: torch.Tensor,
        scale: torch.Tensor | float = 1.0,
        loc: torch.Tensor | float = 0.0,
    ) -> torch.Tensor:
        """Ids ``(..., T)`` -> bin-centre values ``(..., T)`` times ``scale`` plus ``loc`` ``(...)``; specials -> NaN."""
        ids = torch.as_tensor(ids)
        centers = self.centers(ids.device)
        idx = (ids - self.n_special).clamp(0, self.n_bins - 1)
        vals = centers[idx]
        vals = torch.where(ids >= self.n_special, vals, torch.full_like(vals, math.nan))
        scale_t = torch.as_tensor(scale, dtype=torch.float64, device=ids.device)
        loc_t = torch.as_tensor(loc, dtype=torch.float64, device=ids.device)
        return vals * _per_row(scale_t) + _per_row(loc_t)

    def input_transform(
        self, context: torch.Tensor | np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Context values ``(batch, T)`` -> ``(ids (batch, T), loc (batch,), scale (batch,))``."""
        context = torch.as_tensor(np.asarray(context, dtype=np.float64))
        if context.ndim == 1:
            context = context[None]
        if torch.isinf(context).any():
            raise ValueError(
                "the series contains inf; give finite numbers (NaN marks a missing value)"
            )
        loc, scale = self.loc_scale(context)
        return self.values_to_ids(context, scale, loc), loc, scale

    def encode(self, prompt: Any) -> list[int]:
        """A 1-D series (or comma-separated text) -> ids, scaled by its own statistics."""
        values = (
            parse_numbers(prompt)
            if isinstance(prompt, str)
            else np.asarray(prompt, dtype=np.float64)
        )
        ids, _, _ = self.input_transform(values.reshape(1, -1))
        return ids[0].tolist()

    def decode(self, ids: Sequence[int], scale: float = 1.0, loc: float = 0.0) -> np.ndarray:
        """Ids -> values (bin centres times ``scale`` plus ``loc``); special ids give NaN."""
        return self.ids_to_values(torch.as_tensor(list(ids), dtype=torch.long), scale, loc).numpy()

    def token_str(self, token_id: int, scale: float = 1.0, loc: float = 0.0) -> str:
        if token_id < self.n_special:
            return ("PAD", "EOS", "MASK")[token_id]
        return f"{float(self.ids_to_values(torch.tensor([token_id]), scale, loc)[0]):.4g}"

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, **asdict(self)}, indent=2)


class CharTokenizer:
    """Character-level tokenizer: one id per distinct character of the training text."""

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        self.chars = sorted(set(chars))
        if not self.chars:
            raise ValueError(
                "a character tokenizer needs at least one character; the text is empty"
            )
        if any(len(c) != 1 for c in self.chars):
            raise ValueError(
                "every vocabulary entry of a character tokenizer must be one character"
            )
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, prompt: Any) -> list[int]:
        unknown = sorted({c for c in prompt if c not in self.stoi})
        if unknown:
            raise ValueError(
                f"characters {''.join(unknown)!r} are not in this model's vocabulary of "
                f"{self.vocab_size} characters; remove them from the prompt"
            )
        return [self.stoi[c] for c in prompt]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def token_str(self, token_id: int) -> str:
        return json.dumps(self.chars[token_id], ensure_ascii=False)

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "chars": self.chars}, ensure_ascii=False, indent=2)


class BPETokenizer:
    """Byte-level BPE (GPT-2's), backed by the ``tokenizers`` library."""

    kind = "bpe"

    def __init__(self, tok: Any):
        self.tok = tok

    @classmethod
    def from_files(cls, vocab: str | Path, merges: str | Path) -> BPETokenizer:
        """GPT-2's ``vocab.json`` + ``merges.txt``."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers

        tok = HFTokenizer(models.BPE.from_file(str(vocab), str(merges)))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        return cls(tok)

    @classmethod
    def from_tokenizer_json(cls, text: str) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(text))

    @classmethod
    def train(cls, files: Sequence[str | Path], vocab_size: int) -> BPETokenizer:
        """Learn a byte-level BPE of ``vocab_size`` tokens from text files."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["<|endoftext|>"],
            show_progress=False,
        )
        tok.train([str(f) for f in files], trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return int(self.tok.get_vocab_size())

    def encode(self, prompt: Any) -> list[int]:
        return list(self.tok.encode(prompt).ids)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tok.decode(list(ids), skip_special_tokens=False))

    def token_str(self, token_id: int) -> str:
        return json.dumps(self.decode([token_id]), ensure_ascii=False)

    def to_json(self) -> str:
        return str(self.tok.to_str())


def tokenizer_from_json(text: str) -> SignalTokenizer | CharTokenizer | BPETokenizer:
    """Rebuild a tokenizer from what its ``to_json`` wrote."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"tokenizer.json is not valid JSON ({e}); the file is truncated or foreign"
        ) from None
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "signal":
        # Files written before `scaling` existed used mean scaling.
        return SignalTokenizer(
            n_bins=int(data["n_bins"]),
            low=float(data["low"]),
            high=float(data["high"]),
            scaling=str(data.get("scaling", "mean")),
        )
    if kind == "char":
        return CharTokenizer(data["chars"])
    if isinstance(data, dict) and isinstance(data.get("model"), dict):  # a `tokenizers` file
        return BPETokenizer.from_tokenizer_json(text)
    raise ValueError("tokenizer.json is not a nexttoken or `tokenizers` tokenizer file")
