"""``nexttoken serve``: the explorer, a local web page over the models, and its JSON API."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from .common import CLIError, add_allow_pickle

NAME = "serve"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="a local web page to watch and steer next-token prediction (and its JSON API)",
        description="Start the explorer on http://HOST:PORT: next-token tables and bar charts, "
        "decoding controls, greedy and sampled steps, sampling frequencies, and signal forecasts "
        "you can step through, for the models given (shipped names, checkpoint or GPT-2 "
        "directories). Without MODEL: the shipped models and runs/demo when it exists. The page "
        "needs no network. JSON API: GET /api/models, POST /api/next, /api/generate, "
        "/api/forecast, ...; its schema at /openapi.json and a page for it at /docs. Needs the "
        "serve extra: pip install 'nexttoken[serve]'.",
    )
    p.add_argument("models", nargs="*", metavar="MODEL", help="models to offer in the page")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it "
        "to the network)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--device", default="cpu", help="torch device for the models (default cpu)")
    p.add_argument(
        "--batch-window-ms",
        type=float,
        default=0.0,
        help="requests to one model that arrive while it works on others are decoded as one "
        "batch, each with its own seed; this adds a fixed wait of W ms after a request (default "
        "0, which measured best, see docs/performance.md)",
    )
    p.add_argument(
        "--batch-max-wait-ms",
        type=float,
        default=50.0,
        help="when more requests were outstanding during a model's last batch than have "
        "queued, wait for the rest (clients whose answers just went out) up to a tenth of that "
        "batch's time and at most this many ms (default 50; 0 never waits; a lone request "
        "never waits)",
    )
    p.add_argument(
        "--no-batching",
        action="store_true",
        help="answer one request at a time per model (the behaviour before batching)",
    )
    add_allow_pickle(p)
    return p


def default_models() -> list[str]:
    """The shipped models, and the demo's model when ``make demo`` has made it here."""
    from ..lm import pretrained_models

    names = list(pretrained_models())
    if (Path("runs/demo") / "config.json").is_file():
        names.insert(0, "runs/demo")
    return names


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise CLIError(
            "nexttoken serve needs the serve extra: pip install 'nexttoken[serve]' "
            "(fastapi and uvicorn)"
        ) from None
    from ..allocator import reuse_freed_memory
    from ..server import ModelPool, create_app

    specs = args.models or default_models()
    if not specs:
        raise CLIError("no models to serve: name one (a checkpoint directory) or run make demo")
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be between 0 and 65535 (got {args.port})")
    if not 0 <= args.batch_window_ms <= 1000:
        raise CLIError(f"--batch-window-ms must be between 0 and 1000 (got {args.batch_window_ms})")
    if not 0 <= args.batch_max_wait_ms <= 1000:
        raise CLIError(
            f"--batch-max-wait-ms must be between 0 and 1000 (got {args.batch_max_wait_ms})"
        )
    if not _local(args.host):
        print(
            f"nexttoken: warning: listening on {args.host or 'every address'}: anyone who can reach "
            "this machine can use the models (the API has no login). Browsers on other sites "
            "cannot read its answers (no CORS), but keep it to a network you trust.",
            file=sys.stderr,
        )
    print(f"loading {len(specs)} model(s): {', '.join(specs)}", file=sys.stderr)
    reuse_freed_memory()  # each batch's activations reuse the last one's pages
    pool = ModelPool(
        specs,
        device=args.device,
        allow_pickle=args.allow_pickle,
        batch_window=args.batch_window_ms / 1000,
        batch_max_wait=args.batch_max_wait_ms / 1000,
        batching=not args.no_batching,
    )
    sock = _bind(args.host, args.port)
    config = uvicorn.Config(create_app(pool), log_level="warning")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    if ":" in shown:
        shown = f"[{shown}]"
    print(
        f"nexttoken explorer: http://{shown}:{sock.getsockname()[1]}/  (Ctrl+C stops it)",
        flush=True,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _local(host: str) -> bool:
    """Whether ``host`` is a loopback address (only this machine can connect)."""
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket (bound before the URL is printed, so a port of 0 is known)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise CLIError(
            f"cannot listen on {host}:{port} ({e.strerror}); pick another --port (0 picks a free one)"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
