"""``nexttoken next``: the lecture's table of the most probable next tokens."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from .common import add_allow_pickle, positive_int

NAME = "next"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "next",
        help="the top-K next tokens after a prompt, with probabilities",
        description="Print p(next token | prompt) as a table: rank, token, id, probability, "
        "and the total probability of the rows shown.",
    )
    p.add_argument("model", help="checkpoint or GPT-2 directory")
    p.add_argument("prompt", help="text, or comma-separated numbers for a signal model")
    p.add_argument("--top", type=positive_int, default=10, help="rows to show (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", help="write a bar chart of the whole distribution here (PNG)")
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..analysis import next_token_probs
    from ..lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    table = lm.next_token_distribution(args.prompt, top_k=args.top)
    if args.json:
        print(json.dumps(table.to_json()))
    else:
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"p(next token | {args.prompt!r}), {len(table.prompt_ids)} prompt tokens")
        print(table.format())
    if args.plot:
        from ..plots import next_token_bars

        probs = next_token_probs(lm.model, torch.tensor(table.prompt_ids)).numpy()
        affine = lm.affine_of(args.prompt)
        if lm.is_signal:
            tok = lm.tokenizer
            first = tok.n_special  # type: ignore[union-attr]
            labels = [lm.token_str(i, *affine) for i in range(first, len(probs))]
            next_token_bars(
                args.plot,
                probs[first:],
                labels,
                xlabel="next value (bin centre)",
                title=f"p(next value | prompt), {len(table.prompt_ids)} prompt values",
            )
        else:
            top = np.argsort(-probs)[:40]
            next_token_bars(
                args.plot,
                probs[top],
                [lm.token_str(int(i)) for i in top],
                title=f"p(next token | {args.prompt!r}), 40 most probable",
            )
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
