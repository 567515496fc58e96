"""``nexttoken generate``: continue a prompt token by token."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import add_allow_pickle, add_sampling, positive_int

NAME = "generate"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate",
        help="continue a prompt token by token",
        description="Continue PROMPT by N tokens, printing them as they come.",
    )
    p.add_argument("model", help="checkpoint or GPT-2 directory")
    p.add_argument("prompt", help="text, or comma-separated numbers for a signal model")
    p.add_argument("--max-new-tokens", required=True, type=positive_int, help="tokens to add")
    add_sampling(p)
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=None,
        help="CTRL penalty for repeated tokens (>1)",
    )
    p.add_argument(
        "--last-token-only",
        action="store_true",
        help="predict each token from the previous token alone, p(t_i | t_{i-1})",
    )
    p.add_argument(
        "--json", action="store_true", help="print JSON: prompt_ids, ids (new only), text"
    )
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..generate import stream
    from ..lm import load
    from ..tokenizers import SignalTokenizer

    lm = load(args.model, allow_pickle=args.allow_pickle)
    ids = lm.encode(args.prompt)
    kwargs: dict[str, Any] = dict(
        greedy=args.greedy,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        last_token_only=args.last_token_only,
    )
    if isinstance(lm.tokenizer, SignalTokenizer):
        kwargs["suppress_ids"] = lm.tokenizer.special_ids
    affine = lm.affine_of(args.prompt)
    new: list[int] = []
    shown = ""
    live = not args.json
    if live and not lm.is_signal:
        sys.stdout.write(args.prompt)
    for tok in stream(lm.model, torch.tensor([ids]), args.max_new_tokens, **kwargs):
        new.append(int(tok[0]))
        if live:
            if lm.is_signal:
                sys.stdout.write(("" if len(new) == 1 else ",") + lm.token_str(new[-1], *affine))
            else:
                text = lm.decode(new)
                sys.stdout.write(text[len(shown) :])  # BPE pieces can complete a character later
                shown = text
            sys.stdout.flush()
    if live:
        sys.stdout.write("\n")
        return 0
    out: dict[str, Any] = {"prompt_ids": ids, "ids": new}
    if lm.is_signal:
        values = [float(v) for v in lm.decode(new, *affine)]
        out["values"] = values
        out["text"] = ",".join(f"{v:.6g}" for v in values)
    else:
        out["text"] = lm.decode(new)
    print(json.dumps(out))
    return 0
