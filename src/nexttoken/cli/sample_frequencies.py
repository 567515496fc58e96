"""``nexttoken sample-frequencies``: draw the next token N times, counts against probabilities."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_allow_pickle, positive_int

NAME = "sample-frequencies"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "sample-frequencies",
        help="draw the next token N times and compare counts with probabilities",
        description="Sample the next token N times from the full distribution (temperature 1, "
        "no filtering) and show how often each top-K token was drawn next to its probability, and "
        "how often a token outside the top K was drawn.",
    )
    p.add_argument("model", help="checkpoint or GPT-2 directory")
    p.add_argument("prompt", help="text, or comma-separated numbers for a signal model")
    p.add_argument("--n", type=positive_int, default=1000, help="number of draws (default 1000)")
    p.add_argument("--top", type=positive_int, default=10, help="rows to show (default 10)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..analysis import next_token_probs, sample_frequencies
    from ..lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    ids = lm.encode(args.prompt)
    affine = lm.affine_of(args.prompt)
    probs = next_token_probs(lm.model, torch.tensor(ids))
    table = sample_frequencies(
        probs, args.n, lambda i: lm.token_str(i, *affine), args.top, args.seed
    )
    if args.json:
        print(json.dumps({"prompt_ids": ids, **table.to_json()}))
    else:
        print(f"next token after {args.prompt!r}: {args.n} draws")
        print(table.format())
    return 0
