"""``nexttoken export-hf``: write a model as a Hugging Face GPT-2 directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import CLIError, add_allow_pickle

NAME = "export-hf"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export-hf",
        help="write a model as a Hugging Face GPT-2 directory",
        description="Write MODEL as a directory that transformers' GPT2LMHeadModel.from_pretrained "
        "loads (needs GPT-2's architecture: pre-LN LayerNorm, learned positions, causal).",
    )
    p.add_argument("model", help="checkpoint directory")
    p.add_argument("out", help="directory to write")
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..hf import save_hf_gpt2
    from ..lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise CLIError(
            f"{out} exists and is not empty; choose a new directory (nothing was overwritten)"
        )
    if lm.tokenizer is None:
        raise CLIError(
            f"{args.model} has no tokenizer files; there is no tokenizer to export with it"
        )
    save_hf_gpt2(lm.model, lm.tokenizer, out)
    print(f"wrote a Hugging Face GPT-2 directory to {out}", file=sys.stderr)
    return 0
