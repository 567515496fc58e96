"""Load on the explorer: concurrent clients, with the server's batching on and off.

    python benchmarks/serve.py [--scenarios small,forecast,124m] [--clients 1,20,50] [--requests 10] [--device cuda]

For each scenario one model is served by ``nexttoken serve`` in child processes on free ports,
twice, both up at once: with ``--no-batching`` (one request at a time per model: the reference,
as the server was before batching) and with batching (requests that queue while the model
works, and those of the callers it expects back, decoded as one batch). For each number of
clients, that many threads each send ``--requests`` requests one after another, to each server
in turn; with ``--rounds R`` that is repeated R times, the order reversed every other round,
and the median requests/s is reported with its range (a 2-core machine's speed drifts by 5-10%
over minutes). Reported: requests per second, the median and 95th-percentile latency (seconds
from send to the parsed answer), and throughput over the same server's at one client; after
the table, the batching server's batches for each number of clients (``GET /api/status``).

``--reference-src DIR`` adds a third server in the same run: ``nexttoken serve`` from another
checkout's ``src`` (for example a git worktree of the code an issue measured:
``git worktree add /tmp/old REV``, then ``--reference-src /tmp/old/src``), with its default
flags; the summary then also compares batching with it.

Scenarios (nothing is downloaded; random weights where a model is not shipped):

- ``small``: ``POST /api/next`` (top 10) on a small text GPT (4 layers, width 128), each client
  with its own 32-character prompt;
- ``forecast``: ``POST /api/forecast`` on the shipped ``signals-small``, a 200-step context,
  48 steps, 20 paths, each client its own series and seed;
- ``124m``: ``POST /api/next`` on GPT-2's 124M shape (12 layers, width 768, 50,257 tokens);
- ``forecast-same`` (not in the default list): every client sends the very same forecast
  request (one series, seed 0), as a class pressing "forecast" on the page's defaults does;
  identical calls in a batch are computed once.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch

from nexttoken.checkpoint import save_checkpoint
from nexttoken.model import GPT, GPTConfig
from nexttoken.tokenizers import CharTokenizer

SHAPES = {
    "small": dict(context_length=256, n_layer=4, n_head=4, n_embd=128),
    "124m": dict(context_length=1024, n_layer=12, n_head=12, n_embd=768, vocab_size=50257),
}
PROMPT = "see you soon, said the student. "  # 32 characters: 32 tokens


def write_model(name: str, where: Path) -> str:
    if name in ("forecast", "forecast-same"):
        return "signals-small"
    shape = SHAPES[name]
    vocab = int(shape.get("vocab_size", 96))
    tok = CharTokenizer(chr(i) for i in range(32, 32 + vocab))  # printable ASCII first
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**shape, "vocab_size": tok.vocab_size}))
    out = where / name
    save_checkpoint(out, model, tok, step=0)
    return str(out)


def body_for(scenario: str, model: str, client: int, i: int) -> tuple[str, dict[str, Any]]:
    if scenario == "forecast-same":  # a class forecasting the same series with the same seed
        return body_for("forecast", model, 0, 0)
    if scenario == "forecast":
        t = range(200)
        period = 12 + (client % 7) * 3
        series = [
            10 + 3 * math.sin(2 * math.pi * (s + client) / period) + 0.1 * math.cos(s * 0.37)
            for s in t
        ]
        # every client its own seed too: two clients' series can coincide (client 3 and 24's
        # period is 21 steps), and identical calls would be computed once
        seed = 1000 * client + i
        body = {"model": model, "series": series, "horizon": 48, "samples": 20, "seed": seed}
        return "api/forecast", body
    shift = client % len(PROMPT)
    text = PROMPT[shift:] + PROMPT[:shift]
    tag = str(client)  # every client its own prompt (identical calls would be computed once)
    return "api/next", {"model": model, "prompt": tag + text[len(tag) :], "top": 10}


def start_server(
    model: str,
    batching: bool,
    threads: int,
    window_ms: float | None = None,
    src: str | None = None,
    device: str = "cpu",
) -> tuple[subprocess.Popen[str], str]:
    """``nexttoken serve MODEL`` on a free port; with ``src``, that checkout's code and its
    default flags."""
    env_threads = ["env", f"OMP_NUM_THREADS={threads}"] if threads else []
    if src is not None:
        env_threads = [*(env_threads or ["env"]), f"PYTHONPATH={Path(src).resolve()}"]
    flags = ["--device", device]
    flags += [] if batching or src is not None else ["--no-batching"]
    if window_ms is not None and src is None:
        flags += ["--batch-window-ms", str(window_ms)]
    proc = subprocess.Popen(
        [*env_threads, sys.executable, "-m", "nexttoken", "serve", model, "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "http://" in line:
            return proc, line.split()[2]
    proc.kill()
    raise SystemExit("nexttoken serve did not start")


def ask(url: str, path: str, body: dict[str, Any]) -> float:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    t = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as res:
        answer = json.loads(res.read())
    elapsed = time.perf_counter() - t
    assert "top" in answer or "rows" in answer, answer
    return elapsed


def load(
    url: str, scenario: str, model: str, clients: int, requests: int
) -> tuple[list[float], float]:
    """Latencies of every request and the wall time, ``clients`` threads at once."""
    latencies: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(c: int) -> None:
        start.wait()
        for i in range(requests):
            t = ask(url, *body_for(scenario, model, c, i))
            with lock:
                latencies.append(t)

    workers = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies, time.perf_counter() - t0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="small,forecast,124m")
    parser.add_argument("--clients", default="1,20,50", help="numbers of concurrent clients")
    parser.add_argument(
        "--requests",
        type=int,
        default=10,
        help="requests per client (default 10: a run's first batch, formed before the server "
        "has seen how many clients there are, and its last are a small part of it)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds per number of clients, the servers taking turns within each; requests/s "
        "is the median over rounds (default 1)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--device",
        default="cpu",
        help="the servers' --device (default cpu; cuda on a GPU, every server on the same one)",
    )
    parser.add_argument(
        "--window-ms",
        type=float,
        default=None,
        help="the server's --batch-window-ms (default its own)",
    )
    parser.add_argument(
        "--reference-src",
        default=None,
        metavar="DIR",
        help="also serve with the code of another checkout's src directory (see above)",
    )
    args = parser.parse_args()
    if args.reference_src and not (Path(args.reference_src) / "nexttoken").is_dir():
        raise SystemExit(f"--reference-src {args.reference_src}: no nexttoken package there")
    counts = [int(c) for c in args.clients.split(",")]
    if args.rounds < 1 or args.requests < 1:
        raise SystemExit("--rounds and --requests must be at least 1")
    print(
        f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads; each "
        f"client sends {args.requests} requests one after another; {args.rounds} round(s)\n"
    )
    print(
        "| scenario | server | clients | requests/s | median latency | p95 latency | "
        "throughput vs 1 client |"
    )
    print("|---|---|---|---|---|---|---|")
    summary: list[str] = []
    batches: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios.split(","):
            model = write_model(scenario, Path(tmp))
            servers = [("one at a time", False, None), ("batching", True, None)]
            if args.reference_src:
                servers.insert(0, ("reference src", False, args.reference_src))
            rates, latencies, runs, waited, largest = measure(
                scenario, model, servers, counts, args
            )
            for label, batching, _ in servers:
                base = statistics.median(rates[label, counts[0]])
                for n in counts:
                    rate, lat = statistics.median(rates[label, n]), latencies[label, n]
                    spread = (
                        f" ({min(rates[label, n]):.1f}-{max(rates[label, n]):.1f})"
                        if args.rounds > 1
                        else ""
                    )
                    print(
                        f"| {scenario} | {label} | {n} | {rate:.1f}{spread} | "
                        f"{statistics.median(lat) * 1e3:.0f} ms | {p95(lat) * 1e3:.0f} ms | "
                        f"**{rate / base:.2f}x** |",
                        flush=True,
                    )
                    if batching:
                        batches.append(
                            f"{scenario}, {n} clients: {len(lat)} requests in {runs[n]} batches "
                            f"(largest of the scenario {largest}), {waited[n]:.0f} ms waited"
                        )
            for n in sorted({max(counts), 20} & set(counts)):
                ours = statistics.median(rates["batching", n])
                for label in [lab for lab, _, _ in servers if lab != "batching"]:
                    theirs = statistics.median(rates[label, n])
                    summary.append(
                        f"{scenario}: at {n} clients batching serves **{ours / theirs:.2f}x** "
                        f"the requests/s of {label} ({ours:.1f} vs {theirs:.1f})"
                    )
    print()
    print("\n".join(batches))
    print()
    print("\n".join(summary))


def measure(
    scenario: str,
    model: str,
    servers: list[tuple[str, bool, str | None]],
    counts: list[int],
    args: argparse.Namespace,
) -> tuple[dict[Any, list[float]], dict[Any, list[float]], dict[int, int], dict[int, float], int]:
    """Every server up at once; for each number of clients, ``args.rounds`` rounds in which
    each server takes the load in turn (the order reversed every other round), so that a
    machine's drift over minutes falls on every server alike. Returns each (server, clients)'s
    requests/s per round and latencies, and the batching server's batches and waits."""
    rates: dict[Any, list[float]] = {}
    latencies: dict[Any, list[float]] = {}
    runs: dict[int, int] = {}
    waited: dict[int, float] = {}
    procs: dict[str, tuple[subprocess.Popen[str], str]] = {}
    try:
        for label, batching, src in servers:
            procs[label] = start_server(
                model, batching, args.threads, args.window_ms, src, args.device
            )
            ask(procs[label][1], *body_for(scenario, model, 0, 0))  # warm-up
        batching_url = next(procs[lab][1] for lab, b, _ in servers if b)
        for n in counts:
            before = queue(batching_url)
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for label, _, _ in order:
                    lat, wall = load(procs[label][1], scenario, model, n, args.requests)
                    rates.setdefault((label, n), []).append(len(lat) / wall)
                    latencies.setdefault((label, n), []).extend(lat)
            after = queue(batching_url)
            runs[n] = after["batches"] - before["batches"]
            waited[n] = after["waited_ms"] - before["waited_ms"]
        largest = int(queue(batching_url)["largest_batch"])
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(timeout=30)
    return rates, latencies, runs, waited, largest


def queue(url: str) -> dict[str, Any]:
    """The served model's batcher, from ``GET /api/status``."""
    with urllib.request.urlopen(url.rstrip("/") + "/api/status", timeout=30) as r:
        models = json.load(r)["models"]
    return dict(next(iter(models.values())))


if __name__ == "__main__":
    main()
