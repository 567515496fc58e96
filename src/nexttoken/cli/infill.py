"""``nexttoken infill``: fill the empty cells of a CSV with a masked-LM model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .common import CLIError, add_allow_pickle

NAME = "infill"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "infill",
        help="fill the empty cells of a CSV with a masked-LM model",
        description="Write IN.csv with every empty cell filled by a model trained with --objective mlm; "
        "the given values are kept as they were.",
    )
    p.add_argument("model", help="checkpoint directory of a masked-LM model")
    p.add_argument("--input", required=True, help="CSV with empty cells")
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument(
        "--sample", action="store_true", help="sample each value instead of taking the argmax"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="write a PNG of each series with its filled values")
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..infill import infill
    from ..lm import load
    from ..signals import read_csv, write_csv

    out = Path(args.output)
    if out.resolve() == Path(args.input).resolve():
        raise CLIError("--output must differ from --input (the input file is never overwritten)")
    lm = load(args.model, allow_pickle=args.allow_pickle)
    series = read_csv(args.input)
    filled = {name: infill(lm, v, sample=args.sample, seed=args.seed) for name, v in series.items()}
    write_csv(out, filled)
    n = sum(int(np.isnan(v).sum()) for v in series.values())
    print(f"filled {n} empty cells in {len(series)} series -> {out}", file=sys.stderr)
    if args.plot:
        from ..plots import infill_chart

        infill_chart(args.plot, series, filled)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
