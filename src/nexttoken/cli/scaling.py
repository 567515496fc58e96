"""``nexttoken scaling``: a grid of model sizes on one data source, and the power law they follow."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from .common import CLIError, positive_int

NAME = "scaling"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..scaling import SCALING_DEFAULTS as D

    p = sub.add_parser(
        NAME,
        help="train a grid of model sizes and fit the scaling law L(N) = E + A / N^alpha",
        description="Train one GPT per --widths (muP: one learning rate for every width) on the "
        "same batches of --data, score each on the same held-out windows, fit L(N) = E + A / "
        "N^alpha to held-out loss against non-embedding parameters, and write scaling.json, "
        "report.md and two log-log figures (loss against parameters, against compute) in --out. "
        f"The defaults are a laptop-sized study: widths {','.join(map(str, D['widths']))}, depth "
        f"{D['n_layer']}, context {D['context']}, {D['steps']} steps of {D['batch_size']} "
        "(6 minutes on 2 CPU cores).",
    )
    p.add_argument(
        "--data",
        default="oscillators",
        help="oscillators (default: a clean law in 6 minutes on 2 CPU cores, docs/scaling.md), "
        "synthetic (the ten-source corpus: at the default budget its loss is flat in size) or a "
        ".csv of series",
    )
    p.add_argument("--out", required=True, help="directory for the runs, scaling.json, report.md")
    p.add_argument(
        "--widths",
        default=",".join(map(str, D["widths"])),
        help="comma-separated widths, at least 3, multiples of --head-dim (default %(default)s)",
    )
    p.add_argument(
        "--depth", type=positive_int, default=D["n_layer"], help="layers (default %(default)s)"
    )
    p.add_argument(
        "--head-dim",
        type=positive_int,
        default=D["head_dim"],
        help="width of a head (default %(default)s)",
    )
    p.add_argument(
        "--context", type=positive_int, default=D["context"], help="window (default %(default)s)"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=positive_int, default=None, help=f"steps per run (default {D['steps']})"
    )
    budget.add_argument(
        "--tokens",
        type=positive_int,
        default=None,
        help="tokens per run (steps = tokens / (batch x context))",
    )
    p.add_argument("--batch-size", type=positive_int, default=D["batch_size"])
    p.add_argument(
        "--lr",
        type=float,
        default=D["lr"],
        help="peak learning rate at every width, muP (default %(default)s)",
    )
    p.add_argument(
        "--n-series", type=positive_int, default=D["n_series"], help="series in the corpus"
    )
    p.add_argument("--series-length", type=positive_int, default=D["series_length"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--real-dev",
        action="store_true",
        help="also score each run on real-dev (relative WQL, MASE)",
    )
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..recipe import TRAIN_DEFAULTS
    from ..scaling import SCALING_DEFAULTS, run_scaling, write_report

    try:
        widths = [int(w) for w in str(args.widths).split(",") if w.strip()]
    except ValueError:
        raise CLIError(f"--widths {args.widths!r}: give comma-separated integers") from None
    out = Path(args.out)
    if (out / "scaling.json").exists():
        raise CLIError(
            f"{out} already holds a scaling study; choose a new --out (nothing was overwritten)"
        )
    steps = args.steps or SCALING_DEFAULTS["steps"]
    if args.tokens:
        steps = max(1, args.tokens // (args.batch_size * args.context))
    s = dict(TRAIN_DEFAULTS)
    s.update(
        steps=steps,
        batch_size=args.batch_size,
        context=args.context,
        n_layer=args.depth,
        lr=args.lr,
        eval_every=max(1, min(SCALING_DEFAULTS["eval_every"], steps // 6 or 1)),
        eval_batches=SCALING_DEFAULTS["eval_batches"],
        save_every=steps,
        n_series=args.n_series,
        series_length=max(args.series_length, args.context + 1),
        device=args.device,
        precision=args.precision,
        seed=args.seed,
    )
    print(
        f"scaling study: widths {sorted(set(widths))}, depth {args.depth}, {steps} steps of "
        f"{args.batch_size} x {args.context} tokens on {args.data} -> {out}",
        file=sys.stderr,
    )

    def said(r: Any) -> None:
        print(
            f"  width {r.width}: {r.params:,} parameters, held-out loss {r.eval_loss:.4f}, "
            f"{r.seconds:.0f} s",
            file=sys.stderr,
        )

    runs, fit = run_scaling(
        s,
        args.data,
        widths,
        out,
        head_dim=args.head_dim,
        real_dev=args.real_dev,
        progress=not args.no_progress,
        on_run=said,
    )
    assert fit is not None
    command = "nexttoken " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    report = write_report(runs, fit, out, command=command, plots=not args.no_plots)
    print(
        f"L(N) = {fit.E:.3f} + {fit.A:.3g} / N^{fit.alpha:.3f} (R^2 {fit.r2:.3f}); wrote {report} "
        f"and {out / 'scaling.json'}"
    )
    return 0
