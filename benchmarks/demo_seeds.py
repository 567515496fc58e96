"""The demo over several seeds: does every student's first run meet the targets?

    python benchmarks/demo_seeds.py [--seeds 0,1,2,3,4] [--set steps=2000 --set lr=0.002]

Runs ``nexttoken demo`` (the recipe in ``nexttoken.demo.DEMO_SETTINGS``, with ``--set KEY=VALUE``
overrides, values read as JSON) once per seed, one after the other in this process, and prints
a markdown table: single-sine median and mean NMSE, offset-sine median NMSE, the whole demo's
seconds, and whether the seed meets every target (single sines: median < 0.05 and mean < 0.08;
offset sines: median < 0.05). ``--json FILE`` also writes the rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from nexttoken.demo import DEMO_SETTINGS, run_demo

TARGETS = {"single_median": 0.05, "single_mean": 0.08, "offset_median": 0.05}


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or key not in DEMO_SETTINGS:
        raise SystemExit(
            f"--set takes KEY=VALUE with KEY one of {sorted(DEMO_SETTINGS)} (got {text!r})"
        )
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def row(seed: int, r: dict[str, Any]) -> dict[str, Any]:
    sine, offset = r["per_family"]["single_sine"], r["per_family"]["sine + offset"]
    out = {
        "seed": seed,
        "single_median": sine["nmse_median"],
        "single_mean": sine["nmse_mean"],
        "offset_median": offset["nmse_median"],
        "seconds": r["total_seconds"],
        "train_seconds": r["train_seconds"],
    }
    out["meets"] = all(out[k] < v for k, v in TARGETS.items())
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | single sines, median NMSE | single sines, mean NMSE | offset sines, median NMSE | whole demo (s) | meets all |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['single_median']:.4f} | {r['single_mean']:.4f} | "
            f"{r['offset_median']:.4f} | {r['seconds']:.0f} | {'yes' if r['meets'] else 'NO'} |"
        )
    met = sum(r["meets"] for r in rows)
    secs = [r["seconds"] for r in rows]
    lines.append(
        f"\n{met} of {len(rows)} seeds meet every target; whole demo {min(secs):.0f}-{max(secs):.0f} s "
        f"(median {statistics.median(secs):.0f} s)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", default=None, help="keep each seed's run in OUT/seed-N")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument(
        "--stop-on-miss", action="store_true", help="stop at the first seed that misses a target"
    )
    args = parser.parse_args()
    overrides = dict(parse_override(t) for t in args.set)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.out or tmp)
        for seed in seeds:
            r = run_demo(base / f"seed-{seed}", seed=seed, progress=False, settings=overrides)
            rows.append(row(seed, r))
            print(json.dumps(rows[-1]), flush=True)
            if args.stop_on_miss and not rows[-1]["meets"]:
                break
    if overrides:
        print(f"\nsettings changed from DEMO_SETTINGS: {overrides}")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"overrides": overrides, "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
