"""The ``nexttoken`` command: thin subcommands over the library, one module each.

Every error a user can cause ends as one line ``nexttoken: error: ...`` that says what is
wrong and what to do, and exit status 2; never a traceback. Each command module has
``NAME``, ``add_parser(subparsers)`` and ``run(args) -> exit status``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from . import (
    backtest,
    demo,
    evaluate,
    export_hf,
    forecast,
    generate,
    in_context,
    infill,
    models,
    sample_frequencies,
    scaling,
    serve,
    train,
)
from . import next as next_
from .common import CLIError, version

__all__ = ["main", "build_parser", "CLIError"]

#: In the order ``nexttoken --help`` lists them.
_MODULES = (
    demo,
    train,
    forecast,
    next_,
    generate,
    sample_frequencies,
    export_hf,
    infill,
    evaluate,
    backtest,
    in_context,
    scaling,
    serve,
    models,
)
COMMANDS = {m.NAME: m.run for m in _MODULES}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexttoken",
        description="Next-token prediction with small transformers: train GPTs on signals or text, "
        "look at next-token distributions, generate and forecast.",
    )
    parser.add_argument("--version", action="version", version=f"nexttoken {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for m in _MODULES:
        m.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from ..checkpoint import CheckpointError

    warnings.simplefilter("default")
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *a, **k: f"nexttoken: note: {message}\n"
    try:
        return COMMANDS[args.command](args)
    except (
        CLIError,
        CheckpointError,
        ValueError,
        FileNotFoundError,
        ImportError,
        UnicodeDecodeError,
    ) as e:
        print(f"nexttoken: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "nexttoken: interrupted (the last complete checkpoint, if any, is intact)",
            file=sys.stderr,
        )
        return 130
    finally:
        warnings.formatwarning = previous
