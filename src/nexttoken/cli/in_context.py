"""``nexttoken in-context``: held-out loss at each position of the window, for any checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from .common import CLIError, add_allow_pickle, positive_int

NAME = "in-context"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="in-context learning: held-out loss at each position of the window",
        description="Score a causal model on held-out windows and print its loss by position "
        "and in-context score (late minus early loss; below 0 = it reads its context). For a "
        "run of ours with losses by position in metrics.jsonl, also the score over training and "
        "the step at which it fell most sharply (the switch). --plot draws the curves.",
    )
    p.add_argument("model", help="checkpoint directory, shipped model name or GPT-2 directory")
    p.add_argument(
        "--data",
        default=None,
        help="held-out windows: 'oscillators' (default for signal models), a .csv of series, or "
        "a .txt file (needed for text models)",
    )
    p.add_argument(
        "--windows", type=positive_int, default=128, help="windows to average (default 128)"
    )
    p.add_argument("--plot", help="write the figure here (PNG)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..incontext import in_context, training_curves
    from ..lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    if not lm.model.config.causal:
        raise CLIError(
            f"{args.model} is a masked LM; in-context curves need a causal model (objective gpt)"
        )
    report = in_context(lm, args.data, windows=args.windows)
    T = report.curve.size
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        curve = report.curve
        print(
            f"{args.model}: held-out loss by position on {report.windows} windows of {report.data}"
        )
        for lo, hi in _spans(T):
            print(f"  positions {lo + 1:>5}-{hi:<5} {np.nanmean(curve[lo:hi]):.4f} nats/token")
        print(f"in-context score (late minus early): {report.score:+.4f} nats/token")
        if report.switch is not None:
            print(report.switch.describe())
        elif not report.training:
            print("(no losses by position in a metrics.jsonl here: no curve over training)")
        else:
            print(
                f"the in-context score did not fall clearly over {len(report.training)} "
                "evaluations (by 0.05 nats/token): no switch"
            )
    if args.plot:
        from ..plots import in_context_chart

        curves = training_curves(report.training, T)
        curves["now, full resolution"] = (np.arange(1, T + 1), report.curve)
        sw = report.switch
        in_context_chart(
            args.plot,
            curves,
            scores=[(int(r["step"]), float(r["icl_score"])) for r in report.training],
            switch=None if sw is None else (sw.previous_step, sw.step),
            title=f"held-out loss at each position ({report.data})",
        )
    return 0


def _spans(T: int) -> list[tuple[int, int]]:
    """About eight spans of positions, doubling in length: where the loss falls fastest is early."""
    edges = sorted({0, T} | {min(T, 2**k) for k in range(2, 16) if 2**k < T})
    return list(zip(edges[:-1], edges[1:]))
