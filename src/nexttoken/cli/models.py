"""``nexttoken models``: the pretrained models that ship inside the package."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

NAME = "models"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "models",
        help="list the pretrained models that ship with nexttoken",
        description="Models inside the package, usable by name wherever a MODEL is asked for "
        "(e.g. nexttoken forecast oscillators-small --input IN.csv --horizon 64).",
    )
    p.add_argument("--json", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    from ..lm import pretrained_models

    rows = []
    for name, path in pretrained_models().items():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        m = config["model"]
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), framework="pt") as fh:
            n = sum(int(np.prod(fh.get_slice(k).get_shape())) for k in fh.keys())
        d, L, V = m["n_embd"], m["n_layer"], m["vocab_size"]
        rows.append(
            {
                "name": name,
                "parameters": n,
                "context": m["context_length"],
                "layers": L,
                "width": d,
                "tokens": V,
                "trained_steps": config.get("step"),
                "description": config.get("description", ""),
                "path": str(path),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no pretrained models ship with this installation")
        return 0
    print(f"{'name':22s} {'params':>8s} {'context':>8s}  description")
    for r in rows:
        print(
            f"{r['name']:22s} {r['parameters'] / 1e6:7.2f}M {r['context']:8d}  {r['description']}"
        )
    return 0
