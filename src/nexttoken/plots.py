"""Figures: forecast fan charts, next-token bars, distribution heat maps, training curves.

Matplotlib is an optional dependency (``pip install 'nexttoken[plot]'``). Figures are built
with ``matplotlib.figure.Figure`` directly, so nothing here touches pyplot's global state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "require_matplotlib",
    "fan_chart",
    "next_token_bars",
    "distribution_heatmap",
    "training_curves",
    "in_context_chart",
    "infill_chart",
    "calibration_chart",
]


def require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'nexttoken[plot]'") from None
    return Figure


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def fan_chart(
    path: str | Path,
    contexts: Sequence[np.ndarray],
    quantiles: np.ndarray,
    quantile_levels: Sequence[float],
    median: np.ndarray,
    *,
    truths: Sequence[np.ndarray | None] | None = None,
    names: Sequence[str] | None = None,
    title: str | None = None,
    max_series: int = 12,
) -> Path:
    """One panel per series: the context, the median forecast, the 10-90% band (the outermost
    quantiles given) and the truth when given.

    ``quantiles`` is ``(series, Q, horizon)``, ``median`` ``(series, horizon)``.
    """
    Figure = require_matplotlib()
    n = min(len(contexts), max_series)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(5.2 * cols, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    levels = list(quantile_levels)
    lo, hi = int(np.argmin(levels)), int(np.argmax(levels))
    for i in range(rows * cols):
        ax = axes[i // cols][i % cols]
        if i >= n:
            ax.axis("off")
            continue
        ctx = np.asarray(contexts[i])
        t0 = len(ctx)
        h = np.arange(t0, t0 + median.shape[-1])
        ax.plot(np.arange(t0), ctx, color="0.25", lw=1.1, label="context")
        ax.fill_between(
            h,
            quantiles[i, lo],
            quantiles[i, hi],
            color="tab:blue",
            alpha=0.25,
            label=f"{levels[lo]:.0%}-{levels[hi]:.0%} band",
        )
        ax.plot(h, median[i], color="tab:blue", lw=1.4, label="median forecast")
        if truths is not None and truths[i] is not None:
            truth = np.asarray(truths[i])[: len(h)]
            ax.plot(
                h[: len(truth)],
                truth,
                color="tab:orange",
                lw=1.1,
                ls="--",
                label="truth",
            )
        ax.axvline(t0 - 0.5, color="0.6", lw=0.8)
        ax.set_title(names[i] if names else f"series {i}", fontsize=10)
        ax.set_xlabel("time step", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def next_token_bars(
    path: str | Path,
    probs: np.ndarray,
    labels: Sequence[str],
    *,
    highlight: Sequence[int] = (),
    title: str = "next-token distribution",
    xlabel: str = "token",
    zoom: bool = True,
) -> Path:
    """Bar chart of a next-token distribution; ``labels[j]`` names bar ``j``, ``highlight`` marks bars.

    With ``zoom``, a long vocabulary is cut to the range of bars with visible probability.
    """
    Figure = require_matplotlib()
    probs = np.asarray(probs)
    labels = list(labels)
    if zoom and len(probs) > 60:
        # Show only the bars that carry visible mass (and the highlighted ones), with a margin.
        keep = np.flatnonzero(probs >= 1e-3 * probs.max()).tolist() + [
            h for h in highlight if 0 <= h < len(probs)
        ]
        lo, hi = max(0, min(keep) - 5), min(len(probs), max(keep) + 6)
        probs, labels = probs[lo:hi], labels[lo:hi]
        highlight = [h - lo for h in highlight]
    fig = Figure(figsize=(max(6.0, 0.05 * len(probs) + 5), 3.4), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:orange" if j in set(highlight) else "tab:blue" for j in range(len(probs))]
    ax.bar(np.arange(len(probs)), probs, color=colors, width=0.9)
    step = max(1, len(labels) // 12)
    ax.set_xticks(np.arange(0, len(labels), step))
    ax.set_xticklabels(
        [labels[j] for j in range(0, len(labels), step)], rotation=45, ha="right", fontsize=7
    )
    ax.set_ylabel("probability")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def distribution_heatmap(
    path: str | Path,
    step_probs: np.ndarray,
    bin_values: np.ndarray,
    *,
    path_values: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    title: str = "next-token distribution at each forecast step",
) -> Path:
    """Heat map of per-step distributions ``(steps, n_bins)`` over bin values (y) and steps (x)."""
    Figure = require_matplotlib()
    from matplotlib.colors import PowerNorm

    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    steps = step_probs.shape[0]
    order = np.argsort(bin_values)
    vals = bin_values[order]
    im = ax.imshow(
        step_probs[:, order].T,
        aspect="auto",
        origin="lower",
        extent=(0.5, steps + 0.5, vals[0], vals[-1]),
        cmap="magma",
        norm=PowerNorm(0.4, vmin=0.0, vmax=max(float(step_probs.max()), 1e-9)),
    )
    if path_values is not None:
        ax.plot(np.arange(1, steps + 1), path_values, color="cyan", lw=1, label="sampled path")
    if truth is not None:
        ax.plot(np.arange(1, steps + 1), truth[:steps], color="white", lw=1, ls="--", label="truth")
    if path_values is not None or truth is not None:
        ax.legend(fontsize=7, loc="upper right")
    lo = np.nanmin([np.nanmin(v) for v in (path_values, truth) if v is not None] + [vals[-1]])
    hi = np.nanmax([np.nanmax(v) for v in (path_values, truth) if v is not None] + [vals[0]])
    if lo < hi:
        pad = 0.25 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    fig.colorbar(im, ax=ax, label="probability")
    ax.set_xlabel("forecast step")
    ax.set_ylabel("value (bin centre)")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def training_curves(path: str | Path, metrics: str | Path | Sequence[dict[str, Any]]) -> Path:
    """Train and eval loss against step, from ``metrics.jsonl`` (or its parsed records)."""
    Figure = require_matplotlib()
    if isinstance(metrics, (str, Path)):
        records = [
            json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()
        ]
    else:
        records = list(metrics)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.subplots()
    if train:
        ax.plot(*zip(*train), label="train loss", lw=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="eval loss (held out)", lw=1.2, ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("training curves", fontsize=10)
    return _save(fig, path)


def in_context_chart(
    path: str | Path,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    scores: Sequence[tuple[int, float]] = (),
    switch: tuple[int, int] | None = None,
    title: str = "held-out loss at each position of the window",
) -> Path:
    """Left: loss against position, one line per labelled ``(positions, loss)`` curve
    (``"untrained"``, ``"step 300"``, ...), light to dark in the given order. Right, when ``scores`` (step, in-context
    score) are given: the score over training, with the ``switch`` (two steps) shaded."""
    Figure = require_matplotlib()
    fig = Figure(figsize=(11 if scores else 7, 4.2), layout="constrained")
    axes = fig.subplots(1, 2 if scores else 1, squeeze=False)[0]
    ax = axes[0]
    n = len(curves)
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    for i, (label, (x, y)) in enumerate(curves.items()):
        color = cmap(0.9 - 0.85 * (i / (n - 1) if n > 1 else 1.0))  # the last one darkest
        ax.plot(np.asarray(x), np.asarray(y, dtype=np.float64), color=color, lw=1.5, label=label)
    ax.set_xlabel("position in the window (tokens of context seen)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if scores:
        ax2 = axes[1]
        steps, values = zip(*scores)
        ax2.plot(steps, values, "o-", ms=3, lw=1.2)
        if switch is not None:
            ax2.axvspan(
                switch[0], switch[1], color="tab:orange", alpha=0.25, label="the switch (halfway)"
            )
            ax2.legend(fontsize=8)
        ax2.axhline(0, color="0.5", lw=0.8)
        ax2.set_xlabel("training step")
        ax2.set_ylabel("late minus early loss (nats/token)")
        ax2.set_title("in-context score (below 0: the model reads its prompt)", fontsize=10)
        ax2.grid(alpha=0.3)
    return _save(fig, path)


def infill_chart(
    path: str | Path,
    given: dict[str, np.ndarray],
    filled: dict[str, np.ndarray],
    truth: dict[str, np.ndarray] | None = None,
    max_series: int = 8,
) -> Path:
    """One panel per series: the given values, the filled ones (marked) and the truth when known."""
    Figure = require_matplotlib()
    names = list(given)[:max_series]
    fig = Figure(figsize=(9, 2.4 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        g, f = np.asarray(given[name]), np.asarray(filled[name])
        t = np.arange(len(g))
        gap = np.isnan(g)
        if truth is not None and name in truth:
            ax.plot(t, truth[name], color="tab:orange", lw=1, ls="--", label="truth")
        ax.plot(t, np.where(gap, np.nan, g), color="0.25", lw=1.1, label="given")
        ax.plot(
            t, np.where(gap, f, np.nan), color="tab:blue", lw=1.6, marker=".", ms=3, label="filled"
        )
        ax.set_title(f"{name}: {int(gap.sum())} values filled", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="upper right")
    return _save(fig, path)


def calibration_chart(
    path: str | Path,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str = "calibration",
) -> Path:
    """Observed share of truths at or below each forecast quantile against its nominal level.

    ``curves`` maps a model name to ``(levels, observed)``; a calibrated model lies on the diagonal.
    """
    Figure = require_matplotlib()
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for k, (name, (levels, observed)) in enumerate(curves.items()):
        ax.plot(levels, observed, "o-", color=f"C{k % 10}", ms=3, lw=1.2, label=name)
    ax.set_xlabel("quantile level of the forecast")
    ax.set_ylabel("share of truths at or below it")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _plain_log_ticks(ax: Any) -> None:
    """Loss ticks as plain numbers on a log axis (not 1.2 x 10^0)."""
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))


def scaling_charts(out: str | Path, runs: Sequence[Any], fit: Any) -> list[str]:
    """``loss_vs_params.png`` (final held-out loss against non-embedding parameters, with the
    fitted ``E + A / N^alpha``) and ``loss_vs_compute.png`` (each run's held-out loss against
    FLOPs, 6 N D), both log-log. Returns the file names."""
    import numpy as np

    Figure = require_matplotlib()
    out = Path(out)
    n = np.array([r.params for r in runs], dtype=float)
    loss = np.array([r.eval_loss for r in runs], dtype=float)
    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.loglog(n, loss, "o", ms=6, label="runs (final held-out loss)")
    grid = np.geomspace(n.min() / 1.5, n.max() * 1.5, 100)
    ax.loglog(
        grid,
        fit.predict(grid),
        "-",
        lw=1.2,
        label=f"L = {fit.E:.3f} + {fit.A:.3g} / N^{fit.alpha:.3f} (R² {fit.r2:.3f})",
    )
    ax.axhline(fit.E, color="0.6", ls=":", lw=1, label=f"E = {fit.E:.3f}")
    for r in runs:
        ax.annotate(
            f"w{r.width}",
            (r.params, r.eval_loss),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    _plain_log_ticks(ax)
    ax.set_xlabel("parameters N (non-embedding)")
    ax.set_ylabel("held-out loss (nats per token)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("loss against size", fontsize=10)
    _save(fig, out / "loss_vs_params.png")

    fig = Figure(figsize=(5.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for r in runs:
        pts = [(6.0 * r.params * t, v) for t, v in r.curve if t > 0]
        if pts:
            ax.loglog(
                *zip(*pts), "-o", ms=2.5, lw=1.1, label=f"width {r.width} ({r.params:,} params)"
            )
    _plain_log_ticks(ax)
    ax.set_xlabel("compute (FLOPs, 6 N D)")
    ax.set_ylabel("held-out loss (nats per token)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("loss against compute: the lower envelope is the compute frontier", fontsize=10)
    _save(fig, out / "loss_vs_compute.png")
    return ["loss_vs_params.png", "loss_vs_compute.png"]
