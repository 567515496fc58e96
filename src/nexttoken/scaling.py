"""Scaling laws you can run: a grid of model sizes on one data source, and the law they follow.

:func:`run_scaling` trains one model per width (muP, so that one learning rate serves every
width: tune it at the smallest, :mod:`nexttoken.mup`) on the same training batches and scores
each on the same held-out windows, then fits

    L(N) = E + A / N^alpha

to the final held-out loss ``L`` against ``N``, the parameters outside the embedding tables
(token and position embeddings are lookups, not compute; Kaplan et al. 2020 count the same way).
``E`` is the loss no size removes (the entropy of the data under this tokenizer, plus what this
budget of steps cannot learn), ``alpha`` how fast size buys the rest. Compute is counted as
``6 N D`` (``D`` tokens seen: a forward and a backward pass of about ``2N`` and ``4N`` FLOPs a
token).

The fit: for each ``E`` on a fine grid below the smallest loss, ``log(L - E)`` against
``log N`` is a straight line of slope ``-alpha`` fitted by least squares; the ``E`` whose
curve has the least squared error in ``L`` wins. ``r2`` is the share of the variance of ``L``
the curve explains.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ScalingRun", "Fit", "fit_power_law", "run_scaling", "write_report", "SCALING_DEFAULTS"]

#: A laptop-sized study (6 minutes on 2 CPU cores, on oscillators): 4 widths, depth 2, 600 steps.
SCALING_DEFAULTS: dict[str, Any] = {
    "widths": (32, 64, 128, 256),
    "n_layer": 2,
    "head_dim": 16,
    "context": 128,
    "steps": 600,
    "batch_size": 32,
    "lr": 8e-3,  # muP's best at the base width in docs/mup.md (2^-7)
    "eval_every": 100,
    "eval_batches": 8,
    "n_series": 2048,
    "series_length": 256,
}


@dataclass
class ScalingRun:
    width: int
    n_layer: int
    n_head: int
    params: int
    """Parameters outside the embedding tables (see the module docstring)."""
    tokens: int
    flops: float
    eval_loss: float
    seconds: float
    curve: list[tuple[int, float]] = field(default_factory=list)
    """``(tokens seen, held-out loss)`` at every evaluation."""
    real_dev: dict[str, float] | None = None


@dataclass
class Fit:
    E: float
    A: float
    alpha: float
    r2: float

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.asarray(n, dtype=np.float64) ** -self.alpha


def fit_power_law(params: Sequence[float], losses: Sequence[float], grid: int = 2000) -> Fit:
    """``L = E + A / N^alpha`` through the points (needs at least 3 sizes)."""
    n = np.asarray(params, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    if n.size < 3 or n.size != y.size:
        raise ValueError(f"need at least 3 (params, loss) pairs of equal length (got {n.size})")
    if not (np.isfinite(y).all() and (n > 0).all()):
        raise ValueError("losses must be finite and parameter counts positive")
    x = np.log(n)
    best: tuple[float, float, float, float] | None = None
    for E in np.linspace(0.0, y.min(), grid, endpoint=False):
        slope, intercept = np.polyfit(x, np.log(y - E), 1)
        pred = E + np.exp(intercept + slope * x)
        sse = float(((pred - y) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, float(E), float(np.exp(intercept)), float(-slope))
    assert best is not None
    sse, E, A, alpha = best
    total = float(((y - y.mean()) ** 2).sum())
    return Fit(E=E, A=A, alpha=alpha, r2=1.0 - sse / total if total > 0 else 1.0)


def _real_dev_scores(lm: Any) -> dict[str, float]:
    from .baselines import ModelForecaster, SeasonalNaive
    from .evaluate import real_tasks, run

    tasks = real_tasks("dev")
    result = run([ModelForecaster(lm, name="model"), SeasonalNaive()], tasks, num_samples=20)
    return {
        "relative_wql": result.relative("real-dev", "model", "wql", "seasonal naive"),
        "relative_mase": result.relative("real-dev", "model", "mase", "seasonal naive"),
    }


def run_scaling(
    settings: dict[str, Any],
    data: str,
    widths: Sequence[int],
    out: str | Path,
    *,
    head_dim: int = 16,
    real_dev: bool = False,
    progress: bool = True,
    on_run: Callable[[ScalingRun], None] | None = None,
) -> tuple[list[ScalingRun], Fit | None]:
    """Train one model per width on ``data`` (``settings`` as ``nexttoken train`` merges them,
    see :mod:`nexttoken.recipe`), fit the law, and write ``out/scaling.json`` and each run's
    checkpoint in ``out/width-W``. Every run sees the same batches and held-out windows."""
    import torch

    from .lm import LanguageModel
    from .model import GPT
    from .recipe import configs, data_kind, datasets, signal_tokenizer
    from .train import train

    out = Path(out)
    widths = sorted({int(w) for w in widths})
    if len(widths) < 3 or widths[0] < head_dim:
        raise ValueError(
            f"give at least 3 widths, each at least the head size {head_dim} (got {widths})"
        )
    bad = [w for w in widths if w % head_dim]
    if bad:
        raise ValueError(f"widths must be multiples of the head size {head_dim} (got {bad})")
    kind = data_kind(data)
    if kind == "txt":
        raise ValueError("scaling runs on signals: --data synthetic, oscillators or a .csv")
    s = dict(settings)
    s.update(parametrization="mup", mup_base_width=widths[0], objective="gpt")
    tokenizer = signal_tokenizer(s)
    s["n_embd"], s["n_head"] = widths[0], widths[0] // head_dim
    model_config, _ = configs(s, tokenizer, progress=progress)
    train_data, val_data = datasets(s, kind, data, "", tokenizer, model_config)
    runs: list[ScalingRun] = []
    for width in widths:
        s["n_embd"], s["n_head"] = width, width // head_dim
        model_config, config = configs(s, tokenizer, progress=progress)
        torch.manual_seed(config.seed)
        model = GPT(model_config)
        n = model.num_params(non_embedding=True) - model.transformer.wte.weight.numel()
        tokens_per_step = config.batch_size * model_config.context_length
        run_dir = out / f"width-{width}"
        t0 = time.perf_counter()
        result = train(
            model,
            tokenizer,
            train_data,
            val_data,
            config,
            run_dir,
            extra_config={"data": {"source": data, "settings": s}, "scaling": {"width": width}},
        )
        seconds = time.perf_counter() - t0
        records = [
            json.loads(line)
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()
            if line.strip()
        ]
        curve = [
            (int(r["step"]) * tokens_per_step, float(r["eval_loss"]))
            for r in records
            if r.get("eval_loss") is not None
        ]
        tokens = config.steps * tokens_per_step
        run = ScalingRun(
            width=width,
            n_layer=model_config.n_layer,
            n_head=model_config.n_head,
            params=int(n),
            tokens=int(tokens),
            flops=6.0 * n * tokens,
            eval_loss=float(result.eval_loss),
            seconds=round(seconds, 1),
            curve=curve,
        )
        if real_dev:
            lm = LanguageModel(model.eval(), tokenizer, source=str(run_dir))
            run.real_dev = _real_dev_scores(lm)
        runs.append(run)
        if on_run:
            on_run(run)
    fit = fit_power_law([r.params for r in runs], [r.eval_loss for r in runs])
    payload = {
        "data": data,
        "settings": {k: v for k, v in s.items() if k not in ("n_embd", "n_head")},
        "head_dim": head_dim,
        "runs": [asdict(r) for r in runs],
        "fit": asdict(fit),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    return runs, fit


def write_report(
    runs: Sequence[ScalingRun], fit: Fit, out: str | Path, *, command: str = "", plots: bool = True
) -> Path:
    """``report.md`` (and, with matplotlib, ``loss_vs_params.png`` and ``loss_vs_compute.png``)."""
    out = Path(out)
    figures: list[str] = []
    if plots:
        try:
            from .plots import scaling_charts

            figures = scaling_charts(out, runs, fit)
        except ImportError:
            figures = []
    halving = 2 ** (1 / fit.alpha) if fit.alpha > 0 else math.inf
    lines = ["# Scaling study", ""]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    lines += [
        "| width | layers | heads | parameters (non-embedding) | tokens | FLOPs (6ND) | held-out "
        "loss | seconds |" + (" real-dev rel. WQL |" if runs and runs[0].real_dev else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if runs and runs[0].real_dev else ""),
    ]
    for r in runs:
        extra = f" {r.real_dev['relative_wql']:.3f} |" if r.real_dev else ""
        lines.append(
            f"| {r.width} | {r.n_layer} | {r.n_head} | {r.params:,} | {r.tokens:,} | "
            f"{r.flops:.3g} | {r.eval_loss:.4f} | {r.seconds:.0f} |{extra}"
        )
    lines += [
        "",
        f"**Fit: L(N) = {fit.E:.3f} + {fit.A:.3g} / N^{fit.alpha:.3f}** (R^2 = {fit.r2:.3f}, "
        f"{len(runs)} sizes).",
        "",
    ]
    if fit.alpha <= 0:
        lines += [
            "**The held-out loss did not fall with size in these runs**, so there is no exponent "
            "to read: train longer (--steps, --tokens) or on more data, or check the learning "
            "rate at the smallest width (docs/mup.md).",
            "",
        ]
    elif fit.r2 < 0.95:
        lines += [
            f"R^2 = {fit.r2:.3f} is below 0.95: the sizes do not follow one power law closely; "
            "read the exponent with care (more sizes, or more steps per run).",
            "",
        ]
    if fit.alpha > 0:
        lines += [
            "What the exponent says: the part of the held-out loss that size can remove, L - E, falls "
            f"by a factor 2^{fit.alpha:.3f} = {2**fit.alpha:.3f} each time the parameters double; "
            f"halving it takes {halving:.3g} times the parameters. E = {fit.E:.3f} nats a token is "
            "what no size removes at this budget of steps: the noise of the data under this "
            "tokenizer, and what so few tokens cannot teach (with more steps it falls, and the "
            "law's exponent changes with it: a law is a statement about one budget).",
            "",
        ]
    lines += [
        "For comparison: Kaplan et al. (2020) fit L(N) = (N_c / N)^0.076 to language models "
        "trained to convergence (no E term); Hoffmann et al. (2022) fit L(N, D) = E + A / "
        "N^0.34 + B / D^0.28 with E = 1.69 on text. Exponents of a few tenths with an "
        "irreducible term are what a small model on a fixed budget shows; they are not "
        "comparable number for number across data, tokenizers and budgets.",
        "",
    ]
    lines += [f"![{name}]({name})" for name in figures]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
