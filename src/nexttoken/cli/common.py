"""What the subcommands share: the usage error, argument types, the sampling flags."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = [
    "CLIError",
    "positive_int",
    "seasons_arg",
    "season_from_dates",
    "add_sampling",
    "add_allow_pickle",
    "csv_cell",
    "version",
]


class CLIError(Exception):
    """A usage problem: printed as one line, exit status 2."""


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {v})")
    return v


def seasons_arg(text: str) -> tuple[int, ...]:
    """``--season`` of forecast: one season or several, comma-separated (``24,168``)."""
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give a season in steps, e.g. 12, or several: 24,168")
    return tuple(positive_int(t) for t in parts)


def season_from_dates(times: list[Any]) -> int | None:
    """The season every series' dates agree on (12 for monthly ones), said on stderr; None
    when there are no dates or they disagree."""
    from ..frames import calendar_season

    found = {calendar_season(t) for t in times} if times else {None}
    if len(found) != 1 or None in found:
        return None
    season = found.pop()
    assert season is not None
    print(
        f"nexttoken: note: season {season} from the series' dates (give --season to override)",
        file=sys.stderr,
    )
    return season


def add_sampling(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling")
    g.add_argument(
        "--greedy", action="store_true", help="always take the most probable token (argmax)"
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="<1 sharpens, >1 flattens; 0 = greedy (default 1)",
    )
    g.add_argument(
        "--top-k", type=positive_int, default=None, help="sample among the K most probable tokens"
    )
    g.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample from the smallest set with total probability P",
    )
    g.add_argument(
        "--min-p",
        type=float,
        default=None,
        help="drop tokens below MIN_P times the top probability",
    )
    g.add_argument("--seed", type=int, default=None, help="seed for repeatable sampling")


def add_allow_pickle(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="let a GPT-2 directory with only pytorch_model.bin load (pickle can run code: trusted files only)",
    )


def csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def version() -> str:
    from .. import __version__

    return __version__
