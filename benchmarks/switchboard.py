"""The lecture's architecture switches under one training budget: norms, their place, positions, muP.

    python benchmarks/switchboard.py [--steps 400] [--out docs]

Every variant is the same small oscillator GPT, data, seed and number of steps; only the named
switch differs from the baseline (pre-LN, LayerNorm, learned positions, standard
parametrization, 5% warmup). The deep rows (8 layers) test Xiong et al. (2020): post-LN without
learning-rate warmup is reported to train badly or diverge, pre-LN to be fine without it.

Reports the final held-out loss and the forecast error (NMSE of the median of 10 sample paths,
32 steps after 96 given, on held-out series of four families) as ``switchboard.md``,
``switchboard.json`` and ``switchboard_curves.png`` in --out.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nexttoken.data import oscillator_datasets
from nexttoken.forecast import forecast
from nexttoken.lm import LanguageModel
from nexttoken.model import GPT, GPTConfig
from nexttoken.plots import require_matplotlib
from nexttoken.signals import generate
from nexttoken.tokenizers import SignalTokenizer
from nexttoken.train import TrainConfig, train

EVAL_FAMILIES = ("single_sine", "sine", "damped", "van_der_pol")

# name -> (model overrides, train overrides)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "baseline (pre-LN, LayerNorm, learned)": ({}, {}),
    "post-LN": ({"norm_position": "post"}, {}),
    "RMSNorm": ({"norm": "rmsnorm"}, {}),
    "sinusoidal positions": ({"positions": "sinusoidal"}, {}),
    "RoPE": ({"positions": "rope"}, {}),
    "no positions": ({"positions": "none"}, {}),
    "muP (base width 32)": ({"parametrization": "mup", "mup_base_width": 32}, {}),
    "8 layers, pre-LN, warmup": ({"n_layer": 8}, {}),
    "8 layers, pre-LN, no warmup": ({"n_layer": 8}, {"warmup_steps": 0}),
    "8 layers, post-LN, warmup": ({"n_layer": 8, "norm_position": "post"}, {}),
    "8 layers, post-LN, no warmup": (
        {"n_layer": 8, "norm_position": "post"},
        {"warmup_steps": 0},
    ),
    # The harsher setting: no warmup, no gradient clipping, a 3x higher learning rate.
    "8 layers, pre-LN, no warmup, no clipping, lr 1e-2": (
        {"n_layer": 8},
        {"warmup_steps": 0, "grad_clip": 0.0, "lr": 1e-2},
    ),
    "8 layers, post-LN, no warmup, no clipping, lr 1e-2": (
        {"n_layer": 8, "norm_position": "post"},
        {"warmup_steps": 0, "grad_clip": 0.0, "lr": 1e-2},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", default="docs")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated variant numbers (1-based) to rerun; the other rows stay as saved",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = SignalTokenizer(n_bins=128, low=-4.0, high=4.0)
    context = 128
    base = GPTConfig(
        vocab_size=tok.vocab_size, context_length=context, n_layer=4, n_head=4, n_embd=64
    )
    train_data, val_data = oscillator_datasets(tok, context, n_series=2048, length=256, seed=0)
    held_out = {f: generate(f, 16, 128, seed=9_000_001) for f in EVAL_FAMILIES}
    variants = list(VARIANTS.items())
    if args.only:
        variants = [variants[int(i) - 1] for i in args.only.split(",")]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for name, (model_over, train_over) in variants:
        config = replace(base, **model_over)
        torch.manual_seed(0)
        model = GPT(config)
        tc = TrainConfig(
            **{
                "steps": args.steps,
                "batch_size": 16,
                "lr": args.lr,
                "eval_every": max(1, args.steps // 10),
                "eval_batches": 16,
                "save_every": args.steps,
                "log_every": 10,
                "progress": False,
                **train_over,
            }
        )
        log: list[dict[str, Any]] = []
        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            result = train(model, tok, train_data, val_data, tc, d, on_log=log.append)
        seconds = time.perf_counter() - t
        lm = LanguageModel(model.eval(), tok)
        nmse = {}
        for family, x in held_out.items():
            fc = forecast(lm, x[:, :96], 32, num_samples=10, seed=0)
            err = ((fc.median - x[:, 96:]) ** 2).mean(axis=1) / x.var(axis=1)
            nmse[family] = float(np.median(err))
        geo = float(np.exp(np.mean(np.log(np.maximum(list(nmse.values()), 1e-12)))))
        losses = [r["loss"] for r in log if "loss" in r]
        row = {
            "variant": name,
            "eval_loss": result.eval_loss,
            "max_train_loss_after_warmup": max(losses[len(losses) // 10 :], default=float("nan")),
            "nmse": nmse,
            "nmse_geo": geo,
            "seconds": seconds,
            "log": log,
        }
        rows.append(row)
        print(
            f"{name:34s} eval loss {result.eval_loss:.4f}  NMSE {geo:.4f}  ({seconds:.0f} s)",
            flush=True,
        )
    saved = out / "switchboard.json"
    if args.only and saved.is_file():  # rerun of some variants: keep the others' rows
        fresh = {r["variant"]: r for r in rows}
        old = {r["variant"]: r for r in json.loads(saved.read_text())}
        rows = [fresh.get(name) or old[name] for name in VARIANTS if name in fresh or name in old]
    saved.write_text(json.dumps(rows, indent=1))
    _plot(out / "switchboard_curves.png", rows)
    table = _table(rows)
    print("\n" + table)
    print(f"\n{time.perf_counter() - t0:.0f} s")


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | eval loss | forecast NMSE (geo. mean) | "
        + " | ".join(EVAL_FAMILIES)
        + " | train s |",
        "|---|---|---|" + "---|" * len(EVAL_FAMILIES) + "---|",
    ]
    for r in rows:
        fam = " | ".join(f"{r['nmse'][f]:.4f}" for f in EVAL_FAMILIES)
        loss = r["eval_loss"]
        loss_s = f"{loss:.4f}" if math.isfinite(loss) else "diverged"
        lines.append(
            f"| {r['variant']} | {loss_s} | {r['nmse_geo']:.4f} | {fam} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def _plot(path: Path, rows: list[dict[str, Any]]) -> None:
    Figure = require_matplotlib()
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_train, ax_eval = fig.subplots(1, 2, sharey=True)
    for k, r in enumerate(rows):
        style = "--" if r["variant"].startswith("8 layers") else "-"
        tr = [(x["step"], x["loss"]) for x in r["log"] if "loss" in x]
        ev = [(x["step"], x["eval_loss"]) for x in r["log"] if "eval_loss" in x]
        color = f"C{k % 10}"
        if tr:
            ax_train.plot(*zip(*tr), style, color=color, lw=1, label=r["variant"])
        if ev:
            ax_eval.plot(*zip(*ev), style + "o", color=color, lw=1, ms=3, label=r["variant"])
    for ax, title in ((ax_train, "train loss"), (ax_eval, "held-out loss")):
        ax.set_xlabel("step")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_ylim(top=4.6)
    ax_train.set_ylabel("cross-entropy (nats per token)")
    ax_eval.legend(fontsize=7)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
