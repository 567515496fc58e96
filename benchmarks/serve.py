"""Load on the explorer: concurrent clients asking ``POST /api/next`` of one model.

    python benchmarks/serve.py [--configs small,124m] [--clients 20] [--requests 10] [--threads N]

For each config a checkpoint with random weights is written (nothing is downloaded), served by
``nexttoken serve`` in a child process on a free port, and ``--clients`` threads each send
``--requests`` requests one after another (a 32-token prompt, top 10). Reported: the latency
of a request (median and 95th percentile, seconds from send to the parsed answer), requests
per second, and the reference measured in the same run: the same ``next_token_distribution``
call made directly in this process, one at a time. ``per-request overhead`` is the served
median latency at one client over the direct call's time (HTTP, JSON and threads); with many
clients a request also waits for those ahead of it (one model answers one request at a time).

Configs: ``small`` = the oscillator GPT shape (4 layers, width 128) with a 96-character tokenizer;
``124m`` = GPT-2's 124M shape (12 layers, width 768, context 1024) with a 50257-token
character tokenizer, so its head is GPT-2's size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import torch

import nexttoken as nt
from nexttoken.checkpoint import save_checkpoint
from nexttoken.model import GPT, GPTConfig
from nexttoken.tokenizers import CharTokenizer

CONFIGS = {
    "small": dict(context_length=256, n_layer=4, n_head=4, n_embd=128),
    "124m": dict(context_length=1024, n_layer=12, n_head=12, n_embd=768, vocab_size=50257),
}
PROMPT = "see you soon, said the student. "  # 32 characters: 32 tokens


def write_model(name: str, where: Path) -> Path:
    vocab = int(CONFIGS[name].get("vocab_size", 96))
    tok = CharTokenizer(chr(i) for i in range(32, 32 + vocab))  # printable ASCII first
    settings = {**CONFIGS[name], "vocab_size": tok.vocab_size}
    torch.manual_seed(0)
    model = GPT(GPTConfig(**settings))
    out = where / name
    save_checkpoint(out, model, tok, step=0)
    return out


def start_server(model: Path, threads: int) -> tuple[subprocess.Popen[str], str]:
    env_threads = ["env", f"OMP_NUM_THREADS={threads}"] if threads else []
    proc = subprocess.Popen(
        [*env_threads, sys.executable, "-m", "nexttoken", "serve", str(model), "--port", "0"],
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


def ask(url: str, model: str) -> float:
    body = json.dumps({"model": model, "prompt": PROMPT, "top": 10}).encode()
    request = urllib.request.Request(
        url + "api/next", data=body, headers={"Content-Type": "application/json"}
    )
    t = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as res:
        answer = json.loads(res.read())
    elapsed = time.perf_counter() - t
    assert len(answer["top"]) == 10, answer
    return elapsed


def load(url: str, model: str, clients: int, requests: int) -> tuple[list[float], float]:
    """Latencies of every request and the wall time, ``clients`` threads at once."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(requests):
            t = ask(url, model)
            with lock:
                latencies.append(t)

    workers = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return latencies, time.perf_counter() - t0


def direct_time(model: Path, repeats: int) -> float:
    lm = nt.load(model)
    lm.next_token_distribution(PROMPT, top_k=10)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.inference_mode():
            lm.next_token_distribution(PROMPT, top_k=10)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="small,124m")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=10, help="requests per client")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.clients} clients x "
        f"{args.requests} requests of POST /api/next (32-token prompt, top 10)\n"
    )
    print(
        "| config | direct call (reference) | 1 client: median | per-request overhead | "
        f"{args.clients} clients: median | p95 | requests/s |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs.split(","):
            path = write_model(name, Path(tmp))
            direct = direct_time(path, repeats=max(5, args.requests))
            proc, url = start_server(path, args.threads)
            try:
                ask(url, str(path))  # warm-up
                one, _ = load(url, str(path), 1, args.requests)
                many, wall = load(url, str(path), args.clients, args.requests)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            single = statistics.median(one)
            print(
                f"| {name} | {direct * 1e3:.1f} ms | {single * 1e3:.1f} ms | "
                f"**{single / direct:.2f}x** | {statistics.median(many) * 1e3:.1f} ms | "
                f"{p95(many) * 1e3:.1f} ms | {len(many) / wall:.1f} |"
            )


if __name__ == "__main__":
    main()
