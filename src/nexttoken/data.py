"""Batches of token windows: inputs ``x`` and targets ``y``, both ``(batch, T)``.

For the causal LM the target of position t is the token at t+1. Targets that should not
count (a missing value's PAD) are ``IGNORE`` (-100, what ``F.cross_entropy`` skips).
Every draw takes a ``torch.Generator`` so a run is repeatable and resumable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .signals import FAMILIES, mixture, read_csv
from .tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer

__all__ = [
    "IGNORE",
    "Batches",
    "SeriesWindows",
    "TokenWindows",
    "MaskedWindows",
    "oscillator_datasets",
    "synthetic_datasets",
    "csv_datasets",
    "text_datasets",
]

IGNORE = -100


class Batches(Protocol):
    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class SeriesWindows:
    """Random windows of ``context_length + 1`` steps from real-valued series, tokenized per window.

    Each window is scaled by its own statistics (the tokenizer's ``scaling``), as a forecast
    context is. With ``short_fraction > 0`` that share of the windows is cut to a random length
    (at least ``min_length``) and filled up with PAD (targets ignored): the model then also
    learns from contexts shorter than its window, scaled by their own few values, as a short
    series is at forecast time. With ``stats_prefix < 1`` each window's ``(loc, scale)`` come from
    its first ``k`` steps only, ``k`` drawn between ``stats_prefix`` and all of the window: the
    steps after ``k`` are then scaled as a forecast horizon is, by statistics of what came
    before, so the model learns to carry a trend past the range it was scaled on.
    """

    def __init__(
        self,
        series: np.ndarray,
        tokenizer: SignalTokenizer,
        context_length: int,
        short_fraction: float = 0.0,
        min_length: int = 16,
        stats_prefix: float = 1.0,
    ):
        if not 0 < stats_prefix <= 1:
            raise ValueError(f"stats_prefix must be in (0, 1] (got {stats_prefix})")
        if not 0 <= short_fraction <= 1:
            raise ValueError(f"short_fraction must be in [0, 1] (got {short_fraction})")
        series = np.asarray(series, dtype=np.float64)
        if series.ndim != 2 or series.shape[0] == 0:
            raise ValueError(
                f"series must be a non-empty 2-D array (series, time); got shape {series.shape}"
            )
        if np.isinf(series).any():
            raise ValueError("the series contain inf; replace it with numbers or NaN (missing)")
        observed = (~np.isnan(series)).sum(axis=1)
        if (observed < 2).all():
            raise ValueError(
                "every series has fewer than 2 observed values; there is nothing to learn from"
            )
        series = series[observed >= 2]
        self.window = min(context_length + 1, series.shape[1])
        self.values = torch.from_numpy(series)
        self.tokenizer = tokenizer
        self.short_fraction = float(short_fraction)
        self.min_length = max(2, min(int(min_length), self.window))
        self.stats_prefix = float(stats_prefix)

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, length = self.values.shape
        rows = torch.randint(n, (batch_size,), generator=generator)
        offsets = torch.randint(length - self.window + 1, (batch_size,), generator=generator)
        cols = offsets[:, None] + torch.arange(self.window)
        windows = self.values[rows[:, None], cols]  # (B, T + 1)
        if self.short_fraction > 0:
            short = torch.rand(batch_size, generator=generator) < self.short_fraction
            keep = torch.randint(
                self.min_length, self.window + 1, (batch_size,), generator=generator
            )
            cut = short[:, None] & (torch.arange(self.window)[None, :] >= keep[:, None])
            windows = windows.masked_fill(cut, float("nan"))
        stats_of = windows
        if self.stats_prefix < 1:
            lo = max(2, int(self.stats_prefix * self.window))
            k = torch.randint(lo, self.window + 1, (batch_size,), generator=generator)
            later = torch.arange(self.window)[None, :] >= k[:, None]
            stats_of = windows.masked_fill(later, float("nan"))
            # a window whose prefix is all missing falls back to its own statistics
            empty = torch.isnan(stats_of).all(-1)
            stats_of[empty] = windows[empty]
        loc, scale = self.tokenizer.loc_scale(stats_of)
        ids = self.tokenizer.values_to_ids(windows, scale, loc)
        y = ids[:, 1:].clone()
        y[y == self.tokenizer.PAD] = IGNORE
        return ids[:, :-1], y


class TokenWindows:
    """Random windows of ``context_length + 1`` tokens from one long stream of ids (text)."""

    def __init__(self, ids: torch.Tensor, context_length: int):
        if ids.ndim != 1 or ids.numel() < 2:
            raise ValueError("the token stream needs at least 2 tokens; the text is too short")
        self.ids = ids.long()
        self.window = min(context_length + 1, ids.numel())

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = torch.randint(
            self.ids.numel() - self.window + 1, (batch_size,), generator=generator
        )
        chunk = self.ids[offsets[:, None] + torch.arange(self.window)]  # (B, T + 1)
        return chunk[:, :-1], chunk[:, 1:]


class MaskedWindows:
    """Windows for the masked-LM objective: some tokens hidden, targets only where hidden.

    Wraps a :class:`SeriesWindows` source. Each observed token is chosen with probability
    ``rate`` (at least one per window), or, with ``max_span > 1``, spans of 1..max_span tokens
    cover about that share (span masking, closer to filling real gaps); ``labels`` hold the chosen tokens and ``IGNORE``
    elsewhere, so the pseudo-likelihood loss counts masked positions only. Chosen inputs become
    MASK, or with ``bert=True`` BERT's mix: 80% MASK, 10% a random value token, 10% unchanged.
    """

    def __init__(
        self, source: SeriesWindows, rate: float = 0.15, bert: bool = True, max_span: int = 1
    ):
        if not 0 < rate <= 1:
            raise ValueError(f"mask rate must be in (0, 1] (got {rate})")
        if max_span < 1:
            raise ValueError(f"max_span must be >= 1 (got {max_span})")
        self.source = source
        self.rate = rate
        self.bert = bert
        self.max_span = max_span

    def mask(
        self, ids: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids ``(B, T)`` -> ``(inputs, labels)``, both ``(B, T)``."""
        tok = self.source.tokenizer
        observed = ids >= tok.n_special
        if self.max_span == 1:
            chosen = torch.rand(ids.shape, generator=generator) < self.rate
        else:
            # Spans of 1..max_span tokens (uniform), started often enough to hide about `rate`.
            mean_span = (self.max_span + 1) / 2
            starts = torch.rand(ids.shape, generator=generator) < self.rate / mean_span
            lengths = torch.randint(1, self.max_span + 1, ids.shape, generator=generator)
            chosen = torch.zeros_like(starts)
            for k in range(self.max_span):
                chosen[:, k:] |= (starts & (lengths > k))[:, : ids.shape[1] - k]
        chosen &= observed
        # At least one target per window that has an observed token.
        pick = torch.where(observed, torch.rand(ids.shape, generator=generator), -1.0).argmax(-1)
        none = ~chosen.any(-1) & observed.any(-1)
        chosen[none, pick[none]] = True
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
        inputs = ids.clone()
        how = torch.rand(ids.shape, generator=generator)
        replace = chosen & (how < 0.8) if self.bert else chosen
        inputs[replace] = tok.MASK
        if self.bert:
            randomize = chosen & (how >= 0.8) & (how < 0.9)
            random_ids = torch.randint(
                tok.n_special, tok.vocab_size, ids.shape, generator=generator
            )
            inputs[randomize] = random_ids[randomize]
        return inputs, labels

    def batch(
        self, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = self.source.batch(batch_size, generator)
        return self.mask(x, generator)


def _by_noise_level(
    n: int,
    seed: int,
    noise: float | Sequence[float],
    make: Callable[[int, int, float], np.ndarray],
) -> np.ndarray:
    """``n`` series split evenly among the noise levels; ``make(count, seed, level)`` draws each part."""
    levels = [float(noise)] if isinstance(noise, (int, float)) else [float(v) for v in noise]
    if not levels:
        raise ValueError("noise lists no levels; give one number or several")
    counts = [n // len(levels) + (i < n % len(levels)) for i in range(len(levels))]
    parts = [make(c, seed + 7919 * k, lv) for k, (c, lv) in enumerate(zip(counts, levels)) if c > 0]
    return np.concatenate(parts, axis=0)


def oscillator_datasets(
    tokenizer: SignalTokenizer,
    context_length: int,
    *,
    families: tuple[str, ...] = FAMILIES,
    n_series: int = 2048,
    length: int = 512,
    seed: int = 0,
    noise: float | Sequence[float] = 0.0,
    weights: Sequence[float] | None = None,
) -> tuple[SeriesWindows, SeriesWindows]:
    """Train and validation windows from freshly generated oscillators (disjoint seeds).

    ``noise`` may list several levels: the series are then split evenly among them.
    ``weights`` (one per family) share the series out unevenly (default: evenly).
    """
    length = max(length, context_length + 1)

    def draw(n: int, base_seed: int) -> np.ndarray:
        return _by_noise_level(
            n,
            base_seed,
            noise,
            lambda c, sd, lv: mixture(families, c, length, sd, lv, weights)[0],
        )

    train = draw(n_series, seed)
    val = draw(max(64, n_series // 16), seed + 1_000_003)
    return SeriesWindows(train, tokenizer, context_length), SeriesWindows(
        val, tokenizer, context_length
    )


def synthetic_datasets(
    tokenizer: SignalTokenizer,
    context_length: int,
    *,
    n_series: int = 4096,
    length: int = 512,
    seed: int = 0,
    noise: float | Sequence[float] = 0.0,
    shares: dict[str, float] | None = None,
    short_fraction: float = 0.25,
    stats_prefix: float = 0.5,
) -> tuple[SeriesWindows, SeriesWindows]:
    """Train and validation windows from the synthetic corpus (:func:`nexttoken.synthetic.corpus`).

    Series with levels, trends and calendar seasons (KernelSynth, structured oscillators,
    TSMixup); validation series come from a disjoint seed. ``noise`` levels split the series.
    ``short_fraction`` of the windows are cut short, and ``stats_prefix`` scales windows by a
    prefix (see :class:`SeriesWindows`): real series are often shorter than the window, and a
    forecast runs past the range of its context.
    """
    from .synthetic import corpus

    length = max(length, context_length + 1)

    def draw(n: int, base_seed: int) -> np.ndarray:
        return _by_noise_level(
            n, base_seed, noise, lambda c, sd, lv: corpus(c, length, sd, shares, lv)
        )

    train = draw(n_series, seed)
    val = draw(max(64, n_series // 16), seed + 1_000_003)
    return (
        SeriesWindows(train, tokenizer, context_length, short_fraction, stats_prefix=stats_prefix),
        SeriesWindows(val, tokenizer, context_length, short_fraction, stats_prefix=stats_prefix),
    )


def csv_datasets(
    path: str | Path, tokenizer: SignalTokenizer, context_length: int, val_fraction: float = 0.1
) -> tuple[SeriesWindows, SeriesWindows]:
    """Series from a CSV file; the last ``val_fraction`` of every column is held out for eval."""
    columns = read_csv(path)
    if not columns:
        raise ValueError(f"{path} has no series")
    data = np.stack(list(columns.values()))  # read_csv gives every column all rows
    cut = int(data.shape[1] * (1 - val_fraction))
    w = context_length
    if data.shape[1] - cut < 2 or cut < 2:
        # Too short to hold anything out: evaluate on the training data.
        return SeriesWindows(data, tokenizer, w), SeriesWindows(data, tokenizer, w)
    return SeriesWindows(data[:, :cut], tokenizer, w), SeriesWindows(data[:, cut:], tokenizer, w)


def text_datasets(
    text: str,
    tokenizer: CharTokenizer | BPETokenizer,
    context_length: int,
    val_fraction: float = 0.1,
) -> tuple[TokenWindows, TokenWindows]:
    """Token windows of a text; the last ``val_fraction`` of its tokens is held out for eval."""
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if ids.numel() < 4:
        raise ValueError("the text is too short to train on (fewer than 4 tokens)")
    cut = int(ids.numel() * (1 - val_fraction))
    return TokenWindows(ids[:cut], context_length), TokenWindows(ids[cut:], context_length)
