"""Gap filling on held-out oscillators: masked-LM infilling vs GPT forward filling vs linear interpolation.

    python benchmarks/infill.py --gpt runs/demo --mlm runs/mlm [--gap 16] [--series 32]

Each held-out series (never seen in training) has one gap of ``--gap`` steps in the middle
of 192 steps. The masked LM sees both sides of the gap; the GPT sees only the values before
it (median of 20 sample paths); linear interpolation joins the two values around the gap.
The error is the NMSE over the gap: mean squared error / variance of the whole true series.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nexttoken as nt
from nexttoken.infill import infill
from nexttoken.signals import generate

FAMILIES = (
    "single_sine",
    "sine",
    "damped",
    "square",
    "sawtooth",
    "van_der_pol",
    "duffing",
    "coupled",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpt", required=True, help="a GPT signal checkpoint (e.g. runs/demo)")
    parser.add_argument(
        "--mlm", required=True, help="a masked-LM signal checkpoint (train --objective mlm)"
    )
    parser.add_argument("--gap", type=int, default=16)
    parser.add_argument("--series", type=int, default=32)
    parser.add_argument("--length", type=int, default=192)
    parser.add_argument("--seed", type=int, default=7_000_003)
    args = parser.parse_args()
    gpt, mlm = nt.load(args.gpt), nt.load(args.mlm)
    start = args.length // 2 - args.gap // 2
    gap = slice(start, start + args.gap)
    print(
        f"gap of {args.gap} steps at {start}..{start + args.gap - 1} in {args.length}-step series, "
        f"{args.series} held-out series per family; NMSE over the gap (lower is better)\n"
    )
    print("| family | MLM infill | GPT forward fill | linear interpolation |")
    print("|---|---|---|---|")
    totals: dict[str, list[float]] = {"mlm": [], "gpt": [], "linear": []}
    t0 = time.perf_counter()
    for family in FAMILIES:
        x = generate(family, args.series, args.length, seed=args.seed)
        given = x.copy()
        given[:, gap] = np.nan
        var = x.var(axis=1)
        mlm_fill = np.stack([infill(mlm, g)[gap] for g in given])
        gpt_fill = nt.forecast(gpt, given[:, :start], args.gap, num_samples=20, seed=0).median
        t = np.arange(args.length)
        linear = np.stack([np.interp(t[gap], t[~np.isnan(g)], g[~np.isnan(g)]) for g in given])
        errs = {}
        for name, fill in (("mlm", mlm_fill), ("gpt", gpt_fill), ("linear", linear)):
            e = ((fill - x[:, gap]) ** 2).mean(axis=1) / var
            errs[name] = float(np.median(e))
            totals[name].append(errs[name])
        best = min(errs, key=lambda k: errs[k])
        cells = [
            f"**{errs[k]:.4f}**" if k == best else f"{errs[k]:.4f}"
            for k in ("mlm", "gpt", "linear")
        ]
        print(f"| {family} | " + " | ".join(cells) + " |")
    geo = {k: float(np.exp(np.mean(np.log(np.maximum(v, 1e-12))))) for k, v in totals.items()}
    print(f"| geometric mean | {geo['mlm']:.4f} | {geo['gpt']:.4f} | {geo['linear']:.4f} |")
    print(f"\nmedian over series of the per-series NMSE; {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
