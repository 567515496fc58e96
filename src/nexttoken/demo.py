"""``nexttoken demo``: the hands-on "GPT for oscillators generation", end to end on a CPU.

Generates oscillators, trains a small GPT, then writes to the output directory: the
checkpoint, the training curve, forecast fan charts for held-out series of several
families, the next-token table of a sinusoid prompt, a heat map of the per-step
distributions along a forecast, and ``summary.md`` with the measured errors and times.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .analysis import next_token_probs, step_distributions
from .checkpoint import CheckpointError, read_config
from .data import oscillator_datasets
from .evaluate import offset_sines
from .forecast import forecast
from .incontext import read_profiles, switch_step, training_curves
from .lm import load
from .model import GPT, GPTConfig
from .signals import FAMILIES, generate
from .tokenizers import SignalTokenizer
from .train import TrainConfig, train

__all__ = ["run_demo", "DEMO_SETTINGS", "nmse"]

DEMO_SETTINGS: dict[str, Any] = {
    "families": FAMILIES,
    # series per family, relative (a family left out: 1): the demo's targets are sinusoids, and
    # with three times the single sines and twice the sums every seed learns to copy a period
    # (benchmarks/demo_seeds.py; in equal shares 3 seeds of 5 missed a target)
    "family_weights": {"single_sine": 3, "sine": 2},
    "n_series": 4096,
    "series_length": 512,
    "bins": 128,
    "low": -4.0,
    "high": 4.0,
    # Minus the context mean, over its std: a sinusoid with an offset looks like one without.
    "scaling": "standard",
    "context": 192,
    # Narrow, two heads and erf GELU: the step costs half of the 96-wide, 4-head, tanh-GELU
    # model's on a 2-core CPU (the CPU's attention kernel pays per head, its tanh GELU is slow),
    # so 2,600 steps fit the 3-minute budget; every seed of benchmarks/demo_seeds.py met the
    # targets (README)
    "n_layer": 3,
    "n_head": 2,
    "n_embd": 64,
    "activation": "gelu",
    "steps": 2600,
    "batch_size": 16,
    "lr": 3e-3,
    "warmup_steps": -1,
    # the cosine ends at 1% of the peak: a sharper next-value distribution at the end
    "min_lr_ratio": 0.01,
    # held-out loss (and loss by position: in_context.png) every this many steps
    "eval_every": 100,
    # held-out evaluation
    "eval_context": 128,
    "horizon": 64,
    "eval_series": 16,
    "sine_eval_series": 32,
    "samples": 20,
    "nmse_target": 0.05,
}
PLOT_FAMILIES = ("single_sine", "sine", "damped", "square", "van_der_pol", "duffing")
_RUN_FILES = (
    "model.safetensors",
    "training_state.safetensors",
    "metrics.jsonl",
    "config.json",
    "tokenizer.json",
)


def nmse(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean squared error over the last axis divided by the variance of the truth."""
    var = truth.var(axis=-1)
    return ((prediction - truth) ** 2).mean(axis=-1) / np.where(var > 0, var, 1.0)


def _prepare_out(out: Path) -> None:
    if (out / "config.json").exists():
        try:
            is_demo = bool(read_config(out).get("demo"))
        except CheckpointError:
            is_demo = False
        if not is_demo:
            raise CheckpointError(
                f"{out} holds a checkpoint that the demo did not write; choose another --out (nothing was touched)"
            )
        for name in _RUN_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _score(f: Any, truth: np.ndarray) -> dict[str, float]:
    """Median and mean NMSE of a forecast's median, and how often the truth is in its 10-90% band."""
    err = nmse(f.median, truth)
    inside = (truth >= f.quantiles[:, 0]) & (truth <= f.quantiles[:, -1])
    return {
        "nmse_median": float(np.median(err)),
        "nmse_mean": float(err.mean()),
        "coverage_80": float(inside.mean()),
    }


def _train_demo_model(
    tok: SignalTokenizer, s: dict[str, Any], out: Path, seed: int, progress: bool, say: Any
) -> tuple[GPT, Any, float]:
    """Steps 1 and 2: generate the oscillators and train the model into ``out``."""
    say(
        f"[1/4] generating {s['n_series']} oscillators of {len(s['families'])} families ({s['series_length']} steps each)"
    )
    t0 = time.perf_counter()
    train_data, val_data = oscillator_datasets(
        tok,
        s["context"],
        families=s["families"],
        n_series=s["n_series"],
        length=s["series_length"],
        seed=seed,
        weights=[s["family_weights"].get(f, 1.0) for f in s["families"]],
    )
    data_seconds = time.perf_counter() - t0
    torch.manual_seed(seed)
    model = GPT(
        GPTConfig(
            vocab_size=tok.vocab_size,
            context_length=s["context"],
            n_layer=s["n_layer"],
            n_head=s["n_head"],
            n_embd=s["n_embd"],
            activation=s["activation"],
        )
    )
    say(
        f"[2/4] training a {model.num_params() / 1e6:.2f}M-parameter GPT for {s['steps']} steps "
        f"on {torch.get_num_threads()} CPU threads"
    )
    config = TrainConfig(
        steps=s["steps"],
        batch_size=s["batch_size"],
        lr=s["lr"],
        warmup_steps=s["warmup_steps"],
        min_lr_ratio=s["min_lr_ratio"],
        eval_every=s["eval_every"],
        save_every=s["steps"],
        seed=seed,
        progress=progress,
    )
    extra = {
        "demo": True,
        "data": {"source": "oscillators", "settings": {**s, "families": list(s["families"])}},
    }
    result = train(model, tok, train_data, val_data, config, out, extra_config=extra)
    return model, result, data_seconds


def _forecast_held_out(
    lm: Any, s: dict[str, Any], seed: int
) -> tuple[dict[str, dict[str, float]], dict[str, tuple[np.ndarray, np.ndarray, Any]]]:
    """Step 3: scores per family (and for sines with an offset), and one forecast per family."""
    per_family: dict[str, dict[str, float]] = {}
    examples: dict[str, tuple[np.ndarray, np.ndarray, Any]] = {}
    ctx_len, horizon = s["eval_context"], s["horizon"]
    for family in FAMILIES:
        # Seeds far from the training seed: these series were never seen in training.
        n = s["sine_eval_series"] if family == "single_sine" else s["eval_series"]
        x = generate(family, n, ctx_len + horizon, seed=seed + 9_000_001)
        ctx, truth = x[:, :ctx_len], x[:, ctx_len:]
        # trend="none": the demo measures what the model learned, with no line taken out first
        f = forecast(lm, ctx, horizon, num_samples=s["samples"], seed=seed, trend="none")
        per_family[family] = _score(f, truth)
        examples[family] = (ctx, truth, f)
    # Sines with a random offset (levels the training data never had), contexts of 128-192.
    octx, otruth = offset_sines(s["sine_eval_series"], seed=seed + 9_000_002, horizon=horizon)
    f = forecast(lm, octx, horizon, num_samples=s["samples"], seed=seed, trend="none")
    per_family["sine + offset"] = _score(f, otruth)
    return per_family, examples


def run_demo(
    out: str | Path = "runs/demo",
    *,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the figures written to ``summary.md``.

    ``settings`` overrides keys of :data:`DEMO_SETTINGS` (for recipe studies such as
    ``benchmarks/demo_seeds.py``); ``steps`` is a shortcut for ``{"steps": N}``.
    """
    s = dict(DEMO_SETTINGS)
    unknown = set(settings or {}) - set(DEMO_SETTINGS)
    if unknown:
        raise ValueError(
            f"unknown demo settings {sorted(unknown)}; the keys are those of DEMO_SETTINGS: {sorted(DEMO_SETTINGS)}"
        )
    s.update(settings or {})
    if steps is not None:
        s["steps"] = steps
    out = Path(out)
    _prepare_out(out)
    t_all = time.perf_counter()
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    tok = SignalTokenizer(n_bins=s["bins"], low=s["low"], high=s["high"], scaling=s["scaling"])
    model, result, data_seconds = _train_demo_model(tok, s, out, seed, progress, say)

    say("[3/4] forecasting held-out oscillators")
    lm = load(out)
    t0 = time.perf_counter()
    per_family, examples = _forecast_held_out(lm, s, seed)
    forecast_seconds = time.perf_counter() - t0

    say("[4/4] writing figures, the next-token table and summary.md")
    figures = _figures(out, lm, examples, s)
    records = read_profiles(out)
    switch = switch_step(records)
    if records and "training_curve" in figures:  # matplotlib is there
        from .plots import in_context_chart

        curves = training_curves(records, s["context"])
        in_context_chart(
            out / "in_context.png",
            curves,
            scores=[(int(r["step"]), float(r["icl_score"])) for r in records],
            switch=None if switch is None else (switch.previous_step, switch.step),
            title="held-out oscillators: loss at each position, during training",
        )
        figures["in_context"] = "in_context.png"
    sine, offset = per_family["single_sine"], per_family["sine + offset"]
    summary = {
        "train_seconds": result.seconds,
        "data_seconds": data_seconds,
        "forecast_seconds": forecast_seconds,
        "total_seconds": time.perf_counter() - t_all,
        "tokens_per_second": result.tokens_per_second,
        "final_train_loss": result.train_loss,
        "final_eval_loss": result.eval_loss,
        "single_sine_nmse_median": sine["nmse_median"],
        "single_sine_nmse_mean": sine["nmse_mean"],
        "offset_sine_nmse_median": offset["nmse_median"],
        "target_met": max(sine["nmse_median"], offset["nmse_median"]) < s["nmse_target"],
        "per_family": per_family,
        "context": s["context"],
        "icl_score_untrained": float(records[0]["icl_score"]) if records else None,
        "icl_score_final": float(records[-1]["icl_score"]) if records else None,
        "switch": None if switch is None else switch.to_json(),
    }
    _write_summary(out, s, summary, figures, model)
    (out / "demo_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    verdict = "meets" if summary["target_met"] else "MISSES"
    say(
        f"done in {summary['total_seconds']:.0f} s: held-out single sinusoids, median NMSE "
        f"{sine['nmse_median']:.4f}, with a random offset {summary['offset_sine_nmse_median']:.4f} "
        f"({verdict} the target < {s['nmse_target']}); see {out / 'summary.md'}"
    )
    return summary


def _figures(out: Path, lm: Any, examples: dict[str, Any], s: dict[str, Any]) -> dict[str, str]:
    from .plots import (
        distribution_heatmap,
        fan_chart,
        next_token_bars,
        require_matplotlib,
        training_curves,
    )

    figures: dict[str, str] = {}
    tok: SignalTokenizer = lm.tokenizer
    # The lecture's table, for a sinusoid prompt.
    ctx, truth, f = examples["single_sine"]
    prompt = ",".join(f"{v:.4g}" for v in ctx[0])
    table = lm.next_token_distribution(prompt, top_k=10)
    scale, loc = lm.affine_of(prompt)
    text = (
        f"prompt: the first held-out sinusoid, {len(ctx[0])} values (last 5: "
        f"{', '.join(f'{v:.3f}' for v in ctx[0][-5:])})\ntrue next value: {truth[0][0]:.4f}\n\n{table.format()}\n"
    )
    (out / "next_token.txt").write_text(text)
    figures["next_token_table"] = "next_token.txt"
    try:
        require_matplotlib()
    except ImportError as e:
        print(f"nexttoken: note: {e}; skipping the figures", file=sys.stderr)
        return figures
    training_curves(out / "training_curve.png", out / "metrics.jsonl")
    figures["training_curve"] = "training_curve.png"
    for family in PLOT_FAMILIES:
        ctx, truth, f = examples[family]
        name = f"forecast_{family}.png"
        fan_chart(
            out / name,
            list(ctx[:6]),
            f.quantiles[:6],
            f.quantile_levels,
            f.median[:6],
            truths=list(truth[:6]),
            names=[f"{family} #{i}" for i in range(6)],
            title=f"held-out {family}: median and 10-90% band of {s['samples']} sample paths",
        )
        figures[f"forecast_{family}"] = name
    probs = next_token_probs(lm.model, torch.tensor(table.prompt_ids)).numpy()[tok.n_special :]
    labels = [tok.token_str(i, scale, loc) for i in range(tok.n_special, tok.vocab_size)]
    true_bin = (
        tok.values_to_ids(torch.tensor([[truth[0][0]]]), torch.tensor([scale]), loc)[0, 0]
        - tok.n_special
    )
    next_token_bars(
        out / "next_token.png",
        probs,
        labels,
        highlight=[int(true_bin)],
        xlabel="next value (bin centre)",
        title="p(next value | sinusoid prompt); orange: the true next value",
    )
    figures["next_token_plot"] = "next_token.png"
    # Per-step distributions along the first sampled path of the first sinusoid.
    ctx, truth, f = examples["single_sine"]
    prompt_ids = tok.values_to_ids(torch.tensor(ctx[:1]), torch.tensor([f.scale[0]]), f.loc[0])[0]
    path = torch.cat([prompt_ids, torch.as_tensor(f.ids[0, 0])])
    probs_steps = step_distributions(lm.model, path, len(prompt_ids)).numpy()[:, tok.n_special :]
    centers = tok.centers().numpy() * f.scale[0] + f.loc[0]
    distribution_heatmap(
        out / "heatmap.png",
        probs_steps,
        centers,
        path_values=f.samples[0, 0],
        truth=truth[0],
        title="next-token distribution at each step of one sampled forecast",
    )
    figures["heatmap"] = "heatmap.png"
    return figures


def _weights_text(s: dict[str, Any]) -> str:
    heavier = {f: w for f, w in s["family_weights"].items() if w != 1}
    if not heavier:
        return " in equal shares"
    shown = ", ".join(f"{f} x{w:g}" for f, w in heavier.items())
    return f" ({shown}; the others x1)"


def _in_context_text(r: dict[str, Any]) -> str:
    if r.get("icl_score_final") is None:
        return "No evaluation records with losses by position were found in metrics.jsonl."
    sw = r.get("switch")
    when = (
        f"It got halfway from the untrained model's score to the final one between steps "
        f"{sw['previous_step']} and {sw['step']} ({sw['score_before']:+.3f} -> "
        f"{sw['score_after']:+.3f}, each averaged with its neighbouring evaluations): the switch, "
        "taken from `metrics.jsonl`, at which the model began to read the period from its prompt."
        if sw
        else "It did not fall clearly over training (by at least 0.05 nats/token): this run "
        "did not learn to read its prompt."
    )
    return f"""`in_context.png` (left) shows the held-out loss at each position of the {r.get("context", "")}-token
window, for the untrained model, at several steps of training, and at the end: once the model
has learned to read the period from its prompt, a token late in the window is predicted far
better than one near the start, because by then the prompt has shown the period several
times. The right panel follows the in-context score (mean loss over the last quarter of the window minus
that over positions 1/16-1/8 of it; below 0 = the model uses its context) over training:
{r["icl_score_untrained"]:+.3f} nats/token untrained, {r["icl_score_final"]:+.3f} at the end. {when}

This is the in-context learning of GPT-3 (Brown et al., 2020, "Language Models are Few-Shot
Learners") in miniature; Olsson et al. (2022, "In-context Learning and Induction Heads") define
the score this way and saw it appear abruptly during training, and Garg et al. (2022, "What Can
Transformers Learn In-Context?") trained small transformers to read functions from their prompts.
`nexttoken in-context DIR` draws the same figure for any checkpoint, signal or text."""


def _write_summary(
    out: Path, s: dict[str, Any], r: dict[str, Any], figures: dict[str, str], model: GPT
) -> None:
    rows = "\n".join(
        f"| {fam} | {v['nmse_median']:.4f} | {v['nmse_mean']:.4f} | {v['coverage_80']:.0%} |"
        for fam, v in r["per_family"].items()
    )
    pics = "\n".join(f"![{k}]({v})" for k, v in figures.items() if v.endswith(".png"))
    text = f"""# nexttoken demo: a GPT for oscillators

Trained here on {platform.machine()} with {torch.get_num_threads()} CPU threads, torch {torch.__version__}.

| | |
|---|---|
| model | GPT, {s["n_layer"]} layers, width {s["n_embd"]}, {s["n_head"]} heads, {s["activation"]} MLP, context {s["context"]}, {model.num_params() / 1e6:.2f}M parameters |
| tokenizer | {s["scaling"]} scaling, {s["bins"]} uniform bins from {s["low"]} to {s["high"]} (+ PAD, EOS, MASK) |
| data | {s["n_series"]} generated series of {s["series_length"]} steps, {len(s["families"])} families{_weights_text(s)} |
| training | {s["steps"]} steps x {s["batch_size"]} windows, AdamW, peak lr {s["lr"]}, warmup + cosine to {s["min_lr_ratio"]:g} x the peak |
| training time | {r["train_seconds"]:.1f} s ({r["tokens_per_second"]:,.0f} tokens/s) |
| final loss | train {r["final_train_loss"]:.4f}, held-out {r["final_eval_loss"]:.4f} nats/token |
| forecasting time | {r["forecast_seconds"]:.1f} s for {2 * s["sine_eval_series"] + (len(r["per_family"]) - 2) * s["eval_series"]} series x {s["samples"]} paths x {s["horizon"]} steps |
| whole demo | {r["total_seconds"]:.1f} s |

## Held-out forecasts

The model alone (`trend="none"`: no trend line taken out first). Context {s["eval_context"]} steps, horizon {s["horizon"]} steps, {s["samples"]} sample paths per series,
{s["eval_series"]} unseen series per family ({s["sine_eval_series"]} single sinusoids, and {s["sine_eval_series"]}
sines with a random offset, amplitude 0.3-3, period 12-60, context 128-192). NMSE = mean squared error of the median forecast
divided by the variance of the truth (0 is perfect; 1 is as bad as predicting the mean).
Coverage: share of true values inside the 10-90% band (80% is calibrated); forecasts are bin
centres, so a flat truth that falls between two centres (a square wave's plateau) can sit just
outside a band that is one bin wide.

| family | median NMSE | mean NMSE | 80% band coverage |
|---|---|---|---|
{rows}

**Single sinusoids: median NMSE {r["single_sine_nmse_median"]:.4f}; with a random offset
{r["offset_sine_nmse_median"]:.4f}** (target < {s["nmse_target"]} for both:
{"met" if r["target_met"] else "NOT met"}).

The next-token table for the first held-out sinusoid is in `next_token.txt`.

## In-context learning

{_in_context_text(r)}

{pics}

Reproduce: `nexttoken demo --out {out}` (or `make demo`).
"""
    (out / "summary.md").write_text(text)
