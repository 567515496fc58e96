"""Fine-tuning a trained signal model on your own series.

``nexttoken train --data IN.csv --init MODEL`` (and :func:`finetune`) starts from MODEL's
weights, tokenizer and architecture (a shipped name such as ``signals-small``, or a checkpoint
directory) and trains on the user's series:

- **Holdout.** ``holdout`` drops the last steps of every series before anything else: training
  and early stopping never see them. Give the steps a backtest holds out (``(windows - 1) *
  step + horizon``) and the backtest of the fine-tuned model is an honest one.
- **Early stopping.** Of what is left, the last ``val_steps`` of each series are a held-out
  tail: the loss on them (with the steps before them as context, scaled by those steps as a
  forecast is) is evaluated every ``eval_every`` steps, and the run keeps the weights of the
  best evaluation and stops after ``patience`` evaluations without a better one.
- **Windows.** The rest is cut into training windows of the model's context (every start for
  short files, evenly spaced ones for long); a series shorter than the window is one window,
  padded after its end as the pre-training padded short windows.
- **Seasons.** With ``season`` (the seasons a forecast of these series is given), each window
  whose season is strong has its seasonal profile taken out, read from the window as a forecast
  reads it from its context (:func:`nexttoken.forecast`'s ``trend="auto"``): the model is then
  tuned on what it is handed when it forecasts, the rest after the season.
- **Mixing.** ``mix_synthetic`` is the share of each batch drawn from the synthetic corpus
  (:mod:`nexttoken.synthetic`), so that the model does not forget what it knew.
- **A longer window.** :func:`extend_context` grows the context a model attends over (the only
  architecture setting ``--init`` lets change, and only upwards); learned position rows past
  the old window start as copies of the old rows, as Longformer did (Beltagy et al., 2020).

The run is an ordinary checkpoint: ``nexttoken.load(out)`` loads it; its ``config.json``
records what it started from (``init``) and the fine-tuning settings (``finetune``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .data import IGNORE, SeriesWindows
from .tokenizers import SignalTokenizer

__all__ = [
    "FINETUNE_DEFAULTS",
    "FIXED_BY_INIT",
    "extend_context",
    "MIN_TRAIN_STEPS",
    "TailWindows",
    "MixedBatches",
    "FineTuneData",
    "finetune_data",
]

#: Training settings of a fine-tune where the user gives none (``--config`` and flags win):
#: a tenth of signals-small's peak learning rate, a short warmup, a few hundred steps, early
#: stopping after 4 evaluations without a better held-out loss.
FINETUNE_DEFAULTS: dict[str, Any] = {
    "steps": 300,
    "batch_size": 32,
    "lr": 2e-4,
    "warmup_steps": 20,
    "min_lr_ratio": 0.1,
    "eval_every": 20,
    "eval_batches": 4,
    "save_every": 100,
    "patience": 4,
}
#: Settings that MODEL fixes: its architecture and its tokenizer (``context`` may grow, see
#: :func:`extend_context`).
FIXED_BY_INIT = (
    "n_layer",
    "n_head",
    "n_embd",
    "norm",
    "norm_position",
    "positions",
    "objective",
    "parametrization",
    "mup_base_width",
    "bins",
    "low",
    "high",
    "scaling",
    "tokenizer",
    "vocab_size",
)
#: A series needs this many observed steps left for training after holdout and tail.
MIN_TRAIN_STEPS = 8
#: Training windows kept at most (evenly spaced starts beyond it).
MAX_WINDOWS = 50_000


def extend_context(model: Any, context: int) -> Any:
    """A copy of ``model`` (a :class:`nexttoken.model.GPT`) that attends over ``context`` tokens.

    Every weight is kept. With learned positions, rows ``old..context-1`` of the position table
    repeat rows ``0..old-1`` in turn (Longformer's copy initialisation, Beltagy et al., 2020:
    the local structure of the table carries over and training adapts the rest); sinusoidal
    and rotary tables are rebuilt for the new length. The same ``context`` returns ``model``.
    """
    from dataclasses import replace

    from .model import GPT

    old = int(model.config.context_length)
    context = int(context)
    if context == old:
        return model
    if context < old:
        raise ValueError(
            f"context {context} is shorter than the model's window of {old}: a model's context "
            "can grow when training goes on from it, not shrink (forecasts and prompts longer "
            "than the window are cropped to its last tokens anyway)"
        )
    if model.config.objective != "gpt":
        raise ValueError("only a causal (objective 'gpt') model's context can be extended")
    grown = GPT(replace(model.config, context_length=context))
    state = dict(model.state_dict())
    if model.transformer.wpe is not None:
        table = state["transformer.wpe.weight"]
        reps = -(-context // old)
        state["transformer.wpe.weight"] = table.repeat(reps, 1)[:context].clone()
    grown.load_state_dict(state)
    return grown.to(next(model.parameters()).device)


class TailWindows:
    """Held-out tails: for each series, the window of the model's context that ends at the
    series' end; loss only on its last ``tail`` steps, each window scaled by the steps before
    its tail (as a forecast is scaled by its context)."""

    def __init__(self, windows: np.ndarray, tail_start: np.ndarray, tokenizer: SignalTokenizer):
        self.values = torch.from_numpy(np.asarray(windows, dtype=np.float64))
        self.tail_start = torch.as_tensor(tail_start, dtype=torch.long)
        self.tokenizer = tokenizer
        if len(self.values) == 0:
            raise ValueError("no series has a held-out tail to stop early on")

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(len(self.values), (batch_size,), generator=generator)
        windows = self.values[rows]
        start = self.tail_start[rows][:, None]
        positions = torch.arange(windows.shape[1])[None, :]
        context = windows.masked_fill(positions >= start, float("nan"))
        loc, scale = self.tokenizer.loc_scale(context)
        ids = self.tokenizer.values_to_ids(windows, scale, loc)
        y = ids[:, 1:].clone()
        y[y == self.tokenizer.PAD] = IGNORE
        y[positions[:, 1:] < start] = IGNORE  # targets before the tail: trained on, not scored
        return ids[:, :-1], y


class MixedBatches:
    """Batches with ``round(share * batch_size)`` rows from ``other``, the rest from ``main``."""

    def __init__(self, main: Any, other: Any, share: float):
        if not 0 <= share < 1:
            raise ValueError(f"the synthetic share must be in [0, 1) (got {share})")
        self.main, self.other, self.share = main, other, float(share)

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(round(self.share * batch_size))
        x, y = self.main.batch(batch_size - k, generator)
        if k == 0:
            return x, y
        xo, yo = self.other.batch(k, generator)
        return torch.cat([x, xo]), torch.cat([y, yo])


@dataclass
class FineTuneData:
    train: Any
    val: Any
    info: dict[str, Any]
    """What was held out and cut: ``series``, ``holdout``, ``val_steps``, ``windows``,
    ``mix_synthetic``, ``notes`` (series left out of the tail evaluation, and why)."""


def _windows(x: np.ndarray, width: int, budget: int) -> np.ndarray:
    """Windows of ``width`` steps of ``x``: every start within ``budget`` windows, else evenly
    spaced starts (the last window always ends at the end); one NaN-padded window if short."""
    if len(x) <= width:
        out = np.full((1, width), np.nan)
        out[0, : len(x)] = x
        return out
    starts = np.arange(len(x) - width + 1)
    if len(starts) > budget:
        starts = np.unique(np.linspace(0, len(x) - width, max(1, budget)).round().astype(int))
    return np.stack([x[s : s + width] for s in starts])


def _deseasoned(rows: np.ndarray, seasons: tuple[int, ...], known: np.ndarray) -> int:
    """Take each row's seasonal profile out of it in place, read from its first ``known[i]``
    steps (as :func:`nexttoken.forecast` reads one from a context); the rows changed."""
    from .forecast import _continued, _profile

    changed = 0
    for row, k in zip(rows, known, strict=True):
        prof = _profile(row[:k], seasons)
        if prof is not None:
            row -= _continued(prof, 0, len(row))
            changed += 1
    return changed


def finetune_data(
    series: Sequence[np.ndarray],
    names: Sequence[str],
    tokenizer: SignalTokenizer,
    context_length: int,
    *,
    holdout: int = 0,
    season: int | Sequence[int] | None = None,
    val_steps: int | None = None,
    mix_synthetic: float = 0.0,
    seed: int = 0,
    short_fraction: float = 0.25,
    stats_prefix: float = 0.5,
) -> FineTuneData:
    """Training and held-out-tail batches from the user's ``series`` (see the module docstring).

    ``val_steps`` defaults to a tenth of the median series length after holdout (at least 4, at
    most a quarter of the context); a series keeps at most a quarter of its own length as its
    tail. ``season``: the series' known seasons (main first), whose strong profiles are taken out
    of every window as a forecast takes them out of its context. Raises ``ValueError`` naming
    every series that is all missing or too short for the holdout asked.
    """
    from .forecast import _seasons

    seasons = _seasons(season)
    if holdout < 0:
        raise ValueError(f"holdout must be >= 0 (got {holdout})")
    if not 0 <= mix_synthetic < 1:
        raise ValueError(f"mix_synthetic must be in [0, 1) (got {mix_synthetic})")
    trimmed = []
    problems = []
    for name, raw in zip(names, series, strict=True):
        x = np.asarray(raw, dtype=np.float64).ravel()
        observed = np.flatnonzero(~np.isnan(x))
        if observed.size == 0:
            problems.append(f"{name!r} has no values (all missing)")
            trimmed.append(x[:0])
            continue
        x = x[observed[0] : observed[-1] + 1]
        trimmed.append(x[: len(x) - holdout] if holdout else x)
    lengths = [len(x) for x in trimmed if len(x)]
    if val_steps is None:
        median = float(np.median(lengths)) if lengths else 0.0
        val_steps = int(min(max(4, round(0.1 * median)), max(4, context_length // 4)))
    if val_steps < 1:
        raise ValueError(f"val_steps must be >= 1 (got {val_steps})")
    tails = [min(val_steps, max(1, len(x) // 4)) for x in trimmed]  # short series: shorter tails
    for name, x, n_tail in zip(names, trimmed, tails):
        left = int((~np.isnan(x[: max(0, len(x) - n_tail)])).sum())
        if len(x) and left < MIN_TRAIN_STEPS:
            problems.append(
                f"{name!r} keeps {left} observed steps for training after --holdout {holdout} "
                f"and a held-out tail of {n_tail} (needs {MIN_TRAIN_STEPS})"
            )
    if problems:
        raise ValueError(
            "series unfit for fine-tuning: "
            + "; ".join(problems)
            + ". Leave them out of the file, or ask for a smaller --holdout"
        )
    width = context_length + 1
    budget = max(1, MAX_WINDOWS // max(1, len(trimmed)))
    train_rows, val_rows, starts, notes = [], [], [], []
    for name, x, held in zip(names, trimmed, tails):
        fit, tail = x[: len(x) - held], x[len(x) - held :]
        train_rows.append(_windows(fit, width, budget))
        if np.isnan(tail).all():
            notes.append(f"{name!r}: its held-out tail is all missing; not used for early stopping")
            continue
        end = len(x)
        lo = max(0, end - width)
        window = np.full(width, np.nan)
        window[: end - lo] = x[lo:end]
        val_rows.append(window)
        starts.append(end - lo - held)
    windows = np.concatenate(train_rows)
    val_windows = np.stack(val_rows) if val_rows else np.empty((0, width))
    deseasoned = 0
    if seasons:
        deseasoned = _deseasoned(windows, seasons, np.full(len(windows), width))
        _deseasoned(val_windows, seasons, np.array(starts, dtype=np.int64))
    train = SeriesWindows(
        windows,
        tokenizer,
        context_length,
        short_fraction=short_fraction,
        stats_prefix=stats_prefix,
    )
    val = TailWindows(val_windows, np.array(starts), tokenizer)
    batches: Any = train
    if mix_synthetic > 0:
        from .data import synthetic_datasets

        synthetic, _ = synthetic_datasets(
            tokenizer,
            context_length,
            n_series=1024,
            length=max(2 * context_length, 256),
            seed=seed + 17,
            short_fraction=short_fraction,
            stats_prefix=stats_prefix,
        )
        batches = MixedBatches(train, synthetic, mix_synthetic)
    info = {
        "series": len(trimmed),
        "holdout": holdout,
        "val_steps": val_steps,
        "windows": int(len(train.values)),
        "mix_synthetic": mix_synthetic,
        "season": list(seasons),
        "deseasoned_windows": deseasoned,
        "notes": notes,
    }
    return FineTuneData(batches, val, info)
