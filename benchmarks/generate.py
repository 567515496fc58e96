"""Sampling speed: nexttoken ``generate`` vs Hugging Face ``transformers`` ``generate``.

    python benchmarks/generate.py [--configs small,124m] [--repeats 10] [--threads N]

Both run in this process on the identical architecture and weights (ours exported with
``save_hf_gpt2`` and loaded by ``GPT2LMHeadModel.from_pretrained``), sampling ``--new`` tokens
from the full distribution (temperature 1, no top-k/top-p) after a ``--prompt``-token prompt,
at batch 1 and at 20 sample paths of one prompt (``num_return_sequences=20`` for transformers,
20 copies of the prompt for ours). Times are the best of ``--repeats`` rounds after one warm-up,
ours and theirs taking turns in each round; the ratio is transformers' time over ours (above
1: we are faster). Each timed run includes the prompt's prefill, as a user's call would.

Configs: ``small`` = an oscillator GPT (4 layers, width 128, 4 heads, 131 tokens; its position
table is made long enough for prompt + new tokens, 384, because transformers' GPT-2 cannot
slide a window past ``n_positions`` as ours does);
``124m`` = GPT-2's 124M shape (12 layers, width 768, 12 heads, context 1024, 50257 tokens),
random weights (nothing is downloaded).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

import nexttoken as nt
from nexttoken.hf import save_hf_gpt2
from nexttoken.model import GPT, GPTConfig
from nexttoken.tokenizers import SignalTokenizer

CONFIGS = {
    "small": dict(vocab_size=131, context_length=256, n_layer=4, n_head=4, n_embd=128),
    "124m": dict(vocab_size=50257, context_length=1024, n_layer=12, n_head=12, n_embd=768),
}


def best_times(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Best time of each function over ``repeats`` rounds, the functions taking turns in each
    round, so that a busy moment of the machine does not favour one of them."""
    for fn in fns:
        fn()  # warm-up: allocator, thread pool, lazy imports
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


@torch.no_grad()
def hf_generate(
    model: torch.nn.Module, prompt: torch.Tensor, *, new: int, paths: int
) -> torch.Tensor:
    """transformers' sampling of ``new`` tokens from the full distribution, ``paths`` per prompt."""
    return model.generate(  # type: ignore[operator]
        prompt,
        attention_mask=torch.ones_like(prompt),
        do_sample=True,
        top_k=0,
        top_p=1.0,
        temperature=1.0,
        max_new_tokens=new,
        min_new_tokens=new,
        num_return_sequences=paths,
        pad_token_id=0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="small,124m")
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--paths", type=int, default=20)
    parser.add_argument(
        "--repeats", type=int, default=10, help="timed rounds; the best of each is reported"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="measure each row this many times (a row each) and print the median ratio: "
        "the batch-1 ratio moves with the machine's state",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time generate(..., compile=True): the one-token step through torch.compile",
    )
    parser.add_argument(
        "--graph",
        action="store_true",
        help="also time generate(..., cuda_graph=True) (with --compile: compiled and captured), "
        "check its tokens against the eager step, and report memory-bandwidth use at batch 1",
    )
    parser.add_argument(
        "--dtype", choices=["fp32", "bf16"], default="fp32", help="weights of both models"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # no 'Loading weights' bar in the table
    warnings.filterwarnings("ignore")
    import transformers

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, device {args.device}, "
        f"{torch.get_num_threads()} threads; {args.prompt}-token prompt, {args.new} new tokens, "
        f"best of {args.repeats}\n"
    )
    head = "| config | batch | nexttoken tok/s | transformers tok/s | ratio |"
    rule = "|---|---|---|---|---|"
    if args.compile:
        head += " nexttoken compiled tok/s | ratio |"
        rule += "---|---|"
    if args.graph:
        head += " nexttoken CUDA graph tok/s | ratio | same tokens | bandwidth use |"
        rule += "---|---|---|---|"
    print(head)
    print(rule)
    ratios: dict[tuple[str, int], list[float]] = {}
    for name in args.configs.split(","):
        settings = dict(CONFIGS[name])
        settings["context_length"] = max(settings["context_length"], args.prompt + args.new)
        config = GPTConfig(**settings)  # type: ignore[arg-type]
        torch.manual_seed(0)
        ours = GPT(config).eval().to(args.device)
        with tempfile.TemporaryDirectory() as d:
            save_hf_gpt2(ours.cpu(), SignalTokenizer(n_bins=128), d)
            theirs = GPT2LMHeadModel.from_pretrained(d, attn_implementation="sdpa")
        dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
        ours.to(args.device, dtype)
        theirs = theirs.eval().to(args.device, dtype)
        gen = torch.Generator().manual_seed(1)
        prompt = torch.randint(0, config.vocab_size, (1, args.prompt), generator=gen)
        prompt = prompt.to(args.device)
        # Same weights, same logits: check before timing anything.
        with torch.no_grad():
            diff = (ours(prompt[:, :64]) - theirs(prompt[:, :64]).logits).abs().max().item()
        tolerance = 1e-3 if args.dtype == "fp32" else 0.5
        assert diff < tolerance, f"the two models disagree (max logit difference {diff})"
        for batch in [b for b in (1, args.paths) for _ in range(args.runs)]:
            ids = prompt.expand(batch, -1)

            run_ours = partial(nt.generate, ours, ids, args.new, seed=0)
            run_theirs = partial(hf_generate, theirs, prompt, new=args.new, paths=batch)

            out_ours, out_theirs = run_ours(), run_theirs()
            assert out_ours.shape == out_theirs.shape == (batch, args.prompt + args.new)  # type: ignore[attr-defined]
            t_ours, t_theirs = best_times([run_ours, run_theirs], args.repeats)
            n = batch * args.new
            row = (
                f"| {name} | {batch} | {n / t_ours:,.0f} | {n / t_theirs:,.0f} | "
                f"**{t_theirs / t_ours:.2f}x** |"
            )
            ratios.setdefault((name, batch), []).append(t_theirs / t_ours)
            if args.compile:
                run_compiled = partial(nt.generate, ours, ids, args.new, seed=0, compile=True)
                t0 = time.perf_counter()
                out_c = run_compiled()  # compiles
                compile_s = time.perf_counter() - t0
                # Fused kernels round differently, so a sampled path may part from the eager
                # one after a near-tie; report how many tokens agree.
                agree = (out_c == out_ours).float().mean().item()
                (t_c,) = best_times([run_compiled], args.repeats)
                row += (
                    f" {n / t_c:,.0f} (compile {compile_s:.0f} s, {agree:.0%} same tokens) | "
                    f"**{t_theirs / t_c:.2f}x** |"
                )
            if args.graph:
                row += graph_cells(ours, ids, args, t_theirs, out_ours, n)
            print(row, flush=True)
    if args.runs > 1:
        print()
        for (name, batch), r in ratios.items():
            print(
                f"{name}, batch {batch}: median ratio {statistics.median(r):.2f}x over {len(r)} "
                f"runs (min {min(r):.2f}x, max {max(r):.2f}x)"
            )


#: Peak memory bandwidth (TB/s) by device name, from the data sheets.
BANDWIDTH_TBS = {"H200": 4.8, "H100 PCIe": 2.0, "H100": 3.35, "A100": 2.0, "L4": 0.3}


def graph_cells(
    ours: GPT, ids: torch.Tensor, args: argparse.Namespace, t_theirs: float, eager: Any, n: int
) -> str:
    """Cells of the CUDA-graph columns: speed, ratio, agreement with eager, bandwidth use."""
    run = partial(nt.generate, ours, ids, args.new, seed=0, cuda_graph=True, compile=args.compile)
    out = run()  # captures (and compiles)
    same = (out == eager).float().mean().item()
    (t,) = best_times([run], args.repeats)
    tps = n / t
    use = "-"
    if args.device.startswith("cuda") and ids.shape[0] == 1:
        name = torch.cuda.get_device_name(args.device)
        peak = next((v for k, v in BANDWIDTH_TBS.items() if k in name), None)
        weight_bytes = sum(p.numel() * p.element_size() for p in ours.parameters())
        if peak:
            use = f"{100 * weight_bytes * tps / (peak * 1e12):.1f}%"
    return f" {tps:,.0f} | **{t_theirs / t:.2f}x** | {same:.0%} | {use} |"


if __name__ == "__main__":
    main()
