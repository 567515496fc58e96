"""In-context learning made visible: held-out loss at each position of the window.

A causal model that has learned to read its prompt predicts later tokens better than early
ones: by position 100 of a sinusoid it has seen the period several times and can copy it,
at position 3 it cannot. GPT-3 called this in-context learning (Brown et al., 2020, "Language
Models are Few-Shot Learners"); Olsson et al. (2022, "In-context Learning and Induction Heads")
measured it as the loss late in the context minus the loss early in it, and saw it appear
abruptly during training, together with the attention heads that copy what followed an
earlier occurrence of the current token. Garg et al. (2022, "What Can Transformers Learn
In-Context?") trained small transformers to read whole function classes from their prompts.

Here, for any causal checkpoint (signal or text):

- :func:`loss_by_position` gives the held-out loss ``(T,)`` at each position of the window;
- :func:`icl_score` reduces it to Olsson et al.'s score (late minus early; negative = the model
  uses its context);
- the training loop logs both at every evaluation (``metrics.jsonl``: ``icl_score`` and
  ``eval_loss_by_position``, the curve averaged over up to :data:`PROFILE_BUCKETS` equal spans
  of positions), and :func:`switch_step` finds the steps between which the score got halfway
  from the untrained model's to the final one: the "switch" at which the model began to copy;
- :func:`nexttoken.plots.in_context_chart` draws the curves and the score over training.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data import IGNORE, Batches
from .model import GPT

__all__ = [
    "PROFILE_BUCKETS",
    "MIN_SWITCH_DROP",
    "loss_by_position",
    "position_losses",
    "icl_score",
    "bucket_means",
    "Switch",
    "switch_step",
    "read_profiles",
    "InContextReport",
    "in_context",
    "held_out_windows",
    "training_curves",
]

#: The per-position curve logged at each evaluation is averaged over at most this many spans.
PROFILE_BUCKETS = 32
#: Logits computed at once (rows x positions x vocabulary) when scoring per position.
_CHUNK_ELEMENTS = 1 << 24


def position_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each target ``y`` ``(B, T)`` given ``x`` ``(B, T)``: ``(B, T)`` float32
    on the CPU, NaN where the target is ``IGNORE``. The logits are made a few rows at a time,
    so that a large vocabulary never needs every logit of the batch at once."""
    B, T = x.shape
    vocab = int(getattr(getattr(model, "config", None), "vocab_size", 0)) or 1
    rows = max(1, _CHUNK_ELEMENTS // max(1, T * vocab))
    if isinstance(model, GPT):
        h = model._hidden(x, None, 0)  # (B, T, C): the blocks run once for the whole batch
        logits_of = lambda s: model._logits(h[s : s + rows])  # noqa: E731
    else:
        logits_of = lambda s: model(x[s : s + rows])  # noqa: E731
    out = []
    for s in range(0, B, rows):
        logits = logits_of(s).float()  # (b, T, V)
        t = y[s : s + rows].to(logits.device)
        loss = F.cross_entropy(
            logits.flatten(0, 1), t.flatten(), ignore_index=IGNORE, reduction="none"
        ).view(t.shape)
        out.append(loss.masked_fill(t == IGNORE, math.nan).cpu())
    return torch.cat(out)


@torch.no_grad()
def loss_by_position(
    model: torch.nn.Module,
    data: Batches,
    *,
    batches: int = 8,
    batch_size: int = 16,
    seed: int = 1,
) -> np.ndarray:
    """Mean held-out loss (nats/token) at each position of the window, ``(T,)``.

    Position ``t`` is the loss of predicting token ``t + 1`` from tokens ``0..t``. The same
    ``seed`` draws the same windows, so curves of several checkpoints compare like for like.
    Positions with no target in any window (a short window's padding) are NaN.
    """
    config = getattr(model, "config", None)
    if config is not None and not getattr(config, "causal", True):
        raise ValueError(
            "loss by position needs a causal model (objective 'gpt'); a masked LM sees both sides "
            "of every token, so its loss does not depend on how much context came before"
        )
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    total: torch.Tensor | None = None
    count: torch.Tensor | None = None
    try:
        for _ in range(batches):
            x, y = data.batch(batch_size, gen)
            losses = position_losses(model, x.to(device), y)
            valid = ~torch.isnan(losses)
            s = torch.where(valid, losses, 0.0).double().sum(0)
            c = valid.sum(0)
            total = s if total is None else total + s
            count = c if count is None else count + c
    finally:
        model.train(was_training)
    assert total is not None and count is not None
    return np.where(count.numpy() > 0, (total / count.clamp_min(1)).numpy(), np.nan)


def icl_score(curve: np.ndarray) -> float:
    """Olsson et al.'s in-context learning score on a loss-by-position ``curve`` ``(T,)``: the
    mean loss over the last quarter of the window minus the mean over positions ``T/16 ..
    T/8`` (at ``T = 192``: positions 144-191 against 12-23; their paper takes the 500th token
    of a 512-token context against the 50th, averaged over many contexts). Negative when
    later tokens are predicted better, i.e. the model reads its context; about 0 when it does
    not."""
    curve = np.asarray(curve, dtype=np.float64)
    T = curve.shape[-1]
    if T < 16:
        early = curve[..., : max(1, T // 2)]
        late = curve[..., max(1, T // 2) :]
    else:
        early = curve[..., T // 16 : T // 8]
        late = curve[..., T - T // 4 :]
    if np.isnan(early).all() or np.isnan(late).all():  # e.g. only a tail of each window scored
        return math.nan
    return float(np.nanmean(late) - np.nanmean(early))


def bucket_means(curve: np.ndarray, buckets: int = PROFILE_BUCKETS) -> list[float | None]:
    """``curve`` ``(T,)`` averaged over ``min(buckets, T)`` equal spans of positions (None: no data)."""
    curve = np.asarray(curve, dtype=np.float64)
    parts = np.array_split(curve, min(buckets, curve.size))
    out: list[float | None] = []
    for p in parts:
        ok = p[~np.isnan(p)]
        out.append(round(float(ok.mean()), 5) if ok.size else None)
    return out


@dataclass
class Switch:
    """When the in-context score of a run fell: the evaluation at which it first got halfway
    from the untrained model's score to the run's final one."""

    step: int
    """The first evaluation step at or past the halfway mark (the "switch")."""
    previous_step: int
    """The evaluation before it: the switch happened between the two."""
    score_before: float
    score_after: float
    untrained_score: float
    final_score: float
    eval_loss_before: float | None
    eval_loss_after: float | None

    def describe(self) -> str:
        loss = ""
        if self.eval_loss_before is not None and self.eval_loss_after is not None:
            loss = f"; held-out loss {self.eval_loss_before:.3f} -> {self.eval_loss_after:.3f} nats/token"
        return (
            f"the in-context score got halfway from the untrained model's {self.untrained_score:+.3f} "
            f"to its final {self.final_score:+.3f} nats/token between steps {self.previous_step} "
            f"and {self.step} ({self.score_before:+.3f} -> {self.score_after:+.3f}, smoothed over "
            f"neighbouring evaluations){loss}"
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_profiles(metrics: str | Path) -> list[dict[str, Any]]:
    """The evaluation records of a ``metrics.jsonl`` that carry an in-context score, by step.

    A record logged twice for one step (a resumed run) keeps its last version."""
    path = Path(metrics)
    if path.is_dir():
        path = path / "metrics.jsonl"
    by_step: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
        if isinstance(r, dict) and r.get("icl_score") is not None and "step" in r:
            by_step[int(r["step"])] = r
    return [by_step[s] for s in sorted(by_step)]


#: A run "switches" only if its in-context score ends at least this far (nats/token) below the
#: untrained model's: smaller wiggles are noise, not a model that learned to read its prompt.
MIN_SWITCH_DROP = 0.05


def switch_step(records: list[dict[str, Any]]) -> Switch | None:
    """The switch of a run, from its evaluation records (``icl_score`` of each, as
    :func:`read_profiles` gives them): each score is averaged with its neighbours (the score of
    one evaluation wobbles), and the switch is the first evaluation whose smoothed score is
    halfway, or further, from the untrained model's to the last one's. None with fewer than
    two records, or when the last smoothed score is not at least :data:`MIN_SWITCH_DROP` below
    the first (no in-context learning appeared)."""
    if len(records) < 2:
        return None
    raw = np.array([float(r["icl_score"]) for r in records])
    smooth = np.array([raw[max(0, i - 1) : i + 2].mean() for i in range(raw.size)])
    smooth[0] = raw[0]  # the untrained model is its own reference
    first, last = smooth[0], smooth[-1]
    if last > first - MIN_SWITCH_DROP:
        return None
    i = int(np.flatnonzero(smooth <= (first + last) / 2)[0])
    a, b = records[max(0, i - 1)], records[i]
    return Switch(
        step=int(b["step"]),
        previous_step=int(a["step"]),
        score_before=float(smooth[max(0, i - 1)]),
        score_after=float(smooth[i]),
        untrained_score=float(first),
        final_score=float(last),
        eval_loss_before=a.get("eval_loss"),
        eval_loss_after=b.get("eval_loss"),
    )


@dataclass
class InContextReport:
    """What :func:`in_context` measured for one model."""

    curve: np.ndarray
    """Held-out loss at each position of the window, ``(T,)`` nats/token."""
    score: float
    """:func:`icl_score` of ``curve``."""
    data: str
    """Where the held-out windows came from."""
    windows: int
    training: list[dict[str, Any]]
    """The run's evaluation records with an in-context score (empty when there are none)."""
    switch: Switch | None

    def to_json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "windows": self.windows,
            "icl_score": self.score,
            "loss_by_position": [None if math.isnan(v) else float(v) for v in self.curve],
            "switch": None if self.switch is None else self.switch.to_json(),
            "training_scores": [[int(r["step"]), float(r["icl_score"])] for r in self.training],
        }


def held_out_windows(lm: Any, data: str | None, seed: int = 9_000_003) -> tuple[Batches, str]:
    """Windows of the model's context to score ``lm`` on: generated oscillators (signal models,
    ``data`` None or ``"oscillators"``; seeds far from any training seed), the columns of a CSV
    file, or the tokens of a text file."""
    from .data import SeriesWindows, TokenWindows
    from .tokenizers import SignalTokenizer

    window = lm.model.config.context_length
    tok = lm.tokenizer
    if isinstance(tok, SignalTokenizer):
        if data in (None, "oscillators"):
            from .signals import FAMILIES, mixture

            series = mixture(FAMILIES, 256, window + 1, seed)[0]
            return SeriesWindows(series, tok, window), f"256 generated oscillators (seed {seed})"
        path = Path(data)
        if path.suffix.lower() != ".csv":
            raise ValueError(
                f"a signal model reads series: give --data oscillators or a .csv file (got {data})"
            )
        from .signals import read_csv

        columns = read_csv(path)
        if not columns:
            raise ValueError(f"{path} has no series")
        return SeriesWindows(
            np.stack(list(columns.values())), tok, window
        ), f"{len(columns)} series of {path.name}"
    if data is None or data == "oscillators":
        raise ValueError("a text model needs held-out text: give --data FILE.txt")
    if tok is None:
        raise ValueError("this model has no tokenizer files, so text cannot be encoded for it")
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"no such text file: {path}")
    ids = torch.tensor(tok.encode(path.read_text(encoding="utf-8")), dtype=torch.long)
    if ids.numel() < 2 * window + 2:
        raise ValueError(
            f"{path.name} has {ids.numel()} tokens; in-context curves need at least two windows of "
            f"the model's {window} (give a longer text)"
        )
    return TokenWindows(ids, window), f"{ids.numel():,} tokens of {path.name}"


def in_context(
    lm: Any, data: str | None = None, *, windows: int = 128, batch_size: int = 16, seed: int = 1
) -> InContextReport:
    """Held-out loss by position for a loaded model (``nexttoken.load``), signal or text, and,
    when it is a checkpoint directory of ours, its in-context score over training and the
    switch, read from its ``metrics.jsonl``."""
    source, label = held_out_windows(lm, data)
    batches = max(1, math.ceil(windows / batch_size))
    curve = loss_by_position(lm.model, source, batches=batches, batch_size=batch_size, seed=seed)
    training: list[dict[str, Any]] = []
    if lm.source and Path(lm.source).is_dir():
        training = read_profiles(Path(lm.source))
    return InContextReport(
        curve=curve,
        score=icl_score(curve),
        data=label,
        windows=batches * batch_size,
        training=training,
        switch=switch_step(training),
    )


def training_curves(
    records: list[dict[str, Any]], window: int, picks: int = 4
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labelled (positions, loss) curves from a run's evaluation records (bucketed as logged):
    the untrained model, ``picks`` evaluations spread over training, the two around the switch,
    and the last one."""
    if not records:
        return {}
    chosen = {0, len(records) - 1}
    chosen |= {round(i * (len(records) - 1) / (picks + 1)) for i in range(1, picks + 1)}
    sw = switch_step(records)
    if sw is not None:
        chosen |= {
            i for i, r in enumerate(records) if int(r["step"]) in (sw.step, sw.previous_step)
        }
    out = {}
    for i in sorted(chosen):
        r = records[i]
        values = np.array(
            [np.nan if v is None else v for v in r["eval_loss_by_position"]], dtype=np.float64
        )
        edges = np.linspace(0, window, values.size + 1)
        centres = (edges[:-1] + edges[1:]) / 2 + 1
        step = int(r["step"])
        label = "untrained" if step == 0 else f"step {step}"
        if i == len(records) - 1 and step != 0:
            label += " (last)"
        out[label] = (centres, values)
    return out
