"""``nexttoken demo``: the hands-on oscillator GPT, end to end."""

from __future__ import annotations

import argparse
from typing import Any

from .common import positive_int

NAME = "demo"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="train a small oscillator GPT here and write forecasts and figures",
        description="Generate oscillators, train a small GPT on the CPU (about 3 minutes), "
        "and write the checkpoint, figures, next-token table and summary.md to --out.",
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="training steps (default: the demo's budget)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.out, steps=args.steps, seed=args.seed, progress=not args.no_progress)
    return 0
