"""muP vs the standard parametrization: coordinate check and learning-rate sweep across widths.

    python benchmarks/mup.py [--widths 64,128,256] [--steps 250] [--out docs]

1. Coordinate check: mean |activation| of the embedding, each block and the logits, at init
   and after a few Adam steps on one batch, at each width (``nexttoken.mup``).
2. Learning-rate sweep: the same small oscillator GPT trained at each width and learning rate
   under each parametrization; the final held-out loss for each. Under muP (base width = the
   narrowest width) the best learning rate should stay where it is as the width grows; under
   the standard parametrization it moves down.

Writes ``mup_coord_check.png``, ``mup_lr_sweep.png`` and ``mup_lr_sweep.json`` into --out and
prints the tables (markdown).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from nexttoken.data import oscillator_datasets
from nexttoken.model import GPT, GPTConfig
from nexttoken.mup import coordinate_check
from nexttoken.plots import require_matplotlib
from nexttoken.tokenizers import SignalTokenizer
from nexttoken.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,256")
    parser.add_argument("--log2-lrs", default="-11,-10,-9,-8,-7,-6,-5")
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    lrs = [2.0 ** int(e) for e in args.log2_lrs.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = SignalTokenizer(n_bins=128, low=-4.0, high=4.0)
    base = GPTConfig(
        vocab_size=tok.vocab_size,
        context_length=args.context,
        n_layer=args.n_layer,
        n_head=4,
        n_embd=widths[0],
        positions="rope",
        mup_base_width=widths[0],
    )
    t0 = time.perf_counter()

    # 1. Coordinate check.
    checks = {
        par: coordinate_check(replace(base, parametrization=par), widths, steps=4, lr=1e-2)
        for par in ("standard", "mup")
    }
    print("## Coordinate check (mean |activation|, widest / narrowest model)\n")
    print("| parametrization | probe | at init | after 4 steps |")
    print("|---|---|---|---|")
    for par, cc in checks.items():
        for probe in cc.probes:
            print(f"| {par} | {probe} | {cc.growth(probe, 0):.2f} | {cc.growth(probe, 4):.2f} |")
    _plot_coord(out / "mup_coord_check.png", checks)

    # 2. Learning-rate sweep.
    train_data, val_data = oscillator_datasets(tok, args.context, n_series=1024, length=256, seed=0)
    results: dict[str, dict[int, list[float]]] = {"standard": {}, "mup": {}}
    for par in results:
        for width in widths:
            losses = []
            for lr in lrs:
                config = replace(base, n_embd=width, parametrization=par)
                torch.manual_seed(0)
                model = GPT(config)
                tc = TrainConfig(
                    steps=args.steps,
                    batch_size=args.batch_size,
                    lr=lr,
                    weight_decay=0.0,
                    eval_every=args.steps,
                    eval_batches=16,
                    save_every=args.steps,
                    log_every=args.steps,
                    progress=False,
                )
                with tempfile.TemporaryDirectory() as d:
                    r = train(model, tok, train_data, val_data, tc, d)
                loss = r.eval_loss if math.isfinite(r.eval_loss) else float("nan")
                losses.append(loss)
                print(f"{par:8s} width {width:4d} lr 2^{math.log2(lr):+.0f}: eval loss {loss:.4f}")
            results[par][width] = losses
    print(
        f"\n## Learning-rate sweep: held-out loss after {args.steps} steps "
        f"(batch {args.batch_size} x {args.context} tokens)\n"
    )
    print(
        "| parametrization | width | "
        + " | ".join(f"2^{int(math.log2(lr))}" for lr in lrs)
        + " | best |"
    )
    print("|---|---|" + "---|" * (len(lrs) + 1))
    for par, by_width in results.items():
        for width, losses in by_width.items():
            best = min(
                range(len(lrs)), key=lambda i: losses[i] if math.isfinite(losses[i]) else 1e9
            )
            cells = [f"**{v:.3f}**" if i == best else f"{v:.3f}" for i, v in enumerate(losses)]
            print(
                f"| {par} | {width} | " + " | ".join(cells) + f" | 2^{int(math.log2(lrs[best]))} |"
            )
    (out / "mup_lr_sweep.json").write_text(
        json.dumps(
            {
                "lrs": lrs,
                "widths": widths,
                "steps": args.steps,
                "results": {p: {str(w): v for w, v in r.items()} for p, r in results.items()},
            },
            indent=1,
        )
    )
    _plot_sweep(out / "mup_lr_sweep.png", lrs, results)
    print(f"\n{time.perf_counter() - t0:.0f} s; figures in {out}/")


def _plot_coord(path: Path, checks: dict) -> None:  # type: ignore[type-arg]
    Figure = require_matplotlib()
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (par, cc) in zip(axes, checks.items()):
        for j, probe in enumerate(cc.probes):
            for step, style in ((0, "o--"), (len(cc.sizes[cc.widths[0]]) - 1, "o-")):
                ys = [cc.sizes[w][step][j] for w in cc.widths]
                label = f"{probe}, step {step}"
                ax.plot(cc.widths, ys, style, color=f"C{j}", label=label, ms=3, lw=1)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width (n_embd)")
        ax.set_title(
            f"{par}: mean |activation| at init (dashed) and after 4 Adam steps", fontsize=9
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean |coordinate|")
    axes[1].legend(fontsize=7, ncol=2)
    fig.savefig(path, dpi=110)


def _plot_sweep(path: Path, lrs: list[float], results: dict[str, dict[int, list[float]]]) -> None:
    Figure = require_matplotlib()
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (par, by_width) in zip(axes, results.items()):
        for k, (width, losses) in enumerate(by_width.items()):
            ax.plot(lrs, losses, "o-", color=f"C{k}", label=f"width {width}", ms=4)
            finite = [(v, lr) for v, lr in zip(losses, lrs) if math.isfinite(v)]
            if finite:
                v, lr = min(finite)
                ax.plot([lr], [v], "*", color=f"C{k}", ms=14)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("peak learning rate")
        ax.set_title(f"{par}: held-out loss (star: best learning rate)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("eval cross-entropy (nats per token)")
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
