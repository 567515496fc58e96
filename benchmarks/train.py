"""Training speed and memory: nexttoken's train step vs a plain PyTorch GPT step of the same size.

    python benchmarks/train.py [--configs small,124m] [--steps 10] [--repeats 3]

The reference below is a GPT-2 step written directly in PyTorch with nanoGPT's speed tricks
(embeddings, pre-LN blocks with fused-QKV flash/SDPA attention and a GELU MLP, biases, tied
head; the vocabulary padded to a multiple of 64 when it is large, as nanoGPT's 50,304; the loss
computed inside ``forward``, so ``torch.compile`` sees it; fused AdamW on CUDA with decay on
matrices; gradient clipping). Ours is ``nexttoken.train.train_step`` on ``nexttoken.GPT``.
Both get the same shapes, batches and optimizer settings; their timed blocks alternate in one
process (best of ``--repeats``) and the ratio is ours over the reference of the same precision
and compilation in tokens/s (1.0 = as fast). Memory: the activations autograd keeps for the backward pass (any device; this is
what gradient checkpointing saves) and, on a GPU, ``torch.cuda.max_memory_allocated``.

On a GPU the variants also include bf16 autocast and ``torch.compile``, and every row reports
MFU: model FLOPs per token (6N + 12 * n_layer * n_embd * context, PaLM's count) times tokens/s,
over the device's peak for the dtype (table below, or ``--peak-tflops``).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nexttoken.model import GPT, GPTConfig
from nexttoken.train import TrainConfig, _optimizer, train_step

CONFIGS: dict[str, dict[str, int]] = {
    "small": dict(
        vocab_size=131, context_length=256, n_layer=4, n_head=4, n_embd=128, batch_size=16
    ),
    "124m": dict(
        vocab_size=50257, context_length=1024, n_layer=12, n_head=12, n_embd=768, batch_size=4
    ),
}
#: On a GPU the 124M rows use a realistic batch (nanoGPT's 16 x 1024 micro-batch on one card).
GPU_BATCH = {"124m": 16}

# Dense peak TFLOP/s (no sparsity) by device name, from the vendors' data sheets: bf16 and tf32
# on tensor cores, fp32 without. fp32 rows count against tf32 when matmuls may use it (this
# script allows it on CUDA), since that is the rate the hardware then offers them.
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "tf32": 494.7, "fp32": 67.0},
    "H100 SXM": {"bf16": 989.0, "tf32": 494.7, "fp32": 67.0},
    "H100 PCIe": {"bf16": 756.0, "tf32": 378.0, "fp32": 51.0},
    "H100": {"bf16": 989.0, "tf32": 494.7, "fp32": 67.0},
    "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L4": {"bf16": 121.0, "tf32": 60.0, "fp32": 30.3},
    "A10": {"bf16": 125.0, "tf32": 62.5, "fp32": 31.2},
    "RTX 4090": {"bf16": 165.2, "tf32": 82.6, "fp32": 82.6},
}


# --- the reference: a plain PyTorch GPT -------------------------------------------------------
class RefBlock(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.out(F.gelu(self.fc(self.ln_2(x)), approximate="tanh"))


class RefGPT(nn.Module):
    def __init__(self, vocab: int, context: int, n_layer: int, n_head: int, d: int):
        super().__init__()
        if vocab >= 1024:  # nanoGPT: 50257 -> 50304, a multiple of 64
            vocab += -vocab % 64
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList([RefBlock(d, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def ref_optimizer(model: nn.Module, lr: float) -> torch.optim.AdamW:
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    cuda = params[0].is_cuda
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=cuda)


# --- variants ---------------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    reference: bool = False
    precision: str = "fp32"
    checkpointing: bool = False
    compile: bool = False


def build(variant: Variant, cfg: dict[str, int], device: str) -> tuple[Any, Any, int]:
    """Return ``(step(x, y), loss(x, y), n_params)`` for a variant (n_params: the true vocabulary)."""
    torch.manual_seed(0)
    autocast = partial(torch.autocast, device.split(":")[0], torch.bfloat16)
    bf16 = variant.precision == "bf16"
    if variant.reference:
        ref = RefGPT(
            cfg["vocab_size"], cfg["context_length"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
        ).to(device)
        ref_opt = ref_optimizer(ref, 1e-4)
        net_ref: Any = torch.compile(ref) if variant.compile else ref
        n = sum(p.numel() for p in ref.parameters())
        n -= (ref.wte.weight.shape[0] - cfg["vocab_size"]) * cfg["n_embd"]

        def ref_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with autocast(enabled=bf16):
                return net_ref(x, y)  # type: ignore[no-any-return]

        def ref_train(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with autocast(enabled=bf16):
                loss = net_ref(x, y)
            ref_opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
            ref_opt.step()
            return loss.detach()

        return ref_train, ref_loss, n
    model_cfg = {k: v for k, v in cfg.items() if k != "batch_size"}
    model = GPT(GPTConfig(**model_cfg)).to(device)  # type: ignore[arg-type]
    model.gradient_checkpointing = variant.checkpointing
    tc = TrainConfig(lr=1e-4, device=device, precision=variant.precision)
    opt = _optimizer(model, tc)
    net: Any = torch.compile(model) if variant.compile else model
    n = sum(p.numel() for p in model.parameters())

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(enabled=bf16):
            return net(x, y)  # type: ignore[no-any-return]

    return (lambda x, y: train_step(net, opt, x, y, tc, 1e-4)), loss, n


def saved_activation_mib(loss_fn: Any, x: torch.Tensor, y: torch.Tensor) -> float:
    """MiB of tensors autograd keeps from the forward pass for the backward (distinct storages).

    This is the activation memory a training step holds at its peak, whatever the device.
    """
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(x, y)
    del loss
    return sum(storages.values()) / 2**20


def variants_for(device: str) -> list[Variant]:
    out = [Variant("reference (nanoGPT's tricks)", reference=True), Variant("nexttoken")]
    out.append(Variant("nexttoken + gradient checkpointing", checkpointing=True))
    if device.startswith("cuda"):
        out += [
            Variant("reference bf16", reference=True, precision="bf16"),
            Variant("nexttoken bf16", precision="bf16"),
            Variant("reference bf16 + compile", reference=True, precision="bf16", compile=True),
            Variant("nexttoken bf16 + compile", precision="bf16", compile=True),
        ]
    return out


def reference_of(v: Variant, variants: list[Variant]) -> Variant:
    """The reference row a variant is compared with: same precision and compilation."""
    for r in variants:
        if r.reference and (r.precision, r.compile) == (v.precision, v.compile):
            return r
    return variants[0]


def batch(cfg: dict[str, int], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(
        0, cfg["vocab_size"], (cfg["batch_size"], cfg["context_length"] + 1), generator=g
    )
    return ids[:, :-1].to(device), ids[:, 1:].to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_for(name: str, precision: str, tf32: bool) -> float | None:
    """The peak TFLOP/s of the card called ``name`` for a run in ``precision`` (None: unknown
    card; pass ``--peak-tflops``). A key matches as a whole model name ("A10" is not found in
    "A100", nor "L4" in "L40S"); the first match wins, so "H100 PCIe" comes before "H100"."""
    for key, peaks in PEAK_TFLOPS.items():
        if re.search(rf"(?<![0-9a-z]){re.escape(key)}(?![0-9a-z])", name, re.IGNORECASE):
            if precision == "bf16":
                return peaks["bf16"]
            return peaks["tf32"] if tf32 else peaks["fp32"]
    return None


def peak_tflops(device: str, precision: str, override: float | None) -> float | None:
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    tf32 = torch.backends.cuda.matmul.allow_tf32
    return peak_for(torch.cuda.get_device_name(device), precision, tf32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="small")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__} on {where} ({torch.get_num_threads()} threads)\n")
    for config in args.configs.split(","):
        cfg = dict(CONFIGS[config])
        if args.device.startswith("cuda") and config in GPU_BATCH:
            cfg["batch_size"] = GPU_BATCH[config]
        x, y = batch(cfg, args.device)
        tokens = x.numel()
        variants = variants_for(args.device)
        steps, n_params, activations, peaks = {}, 0, {}, {}
        for v in variants:
            cuda = args.device.startswith("cuda")
            if cuda:  # each row's own memory: what it adds to what earlier rows hold
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            steps[v.name], loss_fn, n = build(v, cfg, args.device)
            n_params = max(n_params, n)
            activations[v.name] = saved_activation_mib(loss_fn, x, y)
            for _ in range(3):  # warm-up (and compilation)
                steps[v.name](x, y)
            if cuda:
                peaks[v.name] = f"{(torch.cuda.max_memory_allocated() - base) / 2**20:,.0f}"
        best = {v.name: math.inf for v in variants}
        for _ in range(args.repeats):
            for v in variants:  # alternate, so drift in machine speed hits every variant alike
                sync(args.device)
                t = time.perf_counter()
                for _ in range(args.steps):
                    steps[v.name](x, y)
                sync(args.device)
                best[v.name] = min(best[v.name], time.perf_counter() - t)
        del steps
        flops_per_token = 6 * n_params + 12 * cfg["n_layer"] * cfg["n_embd"] * cfg["context_length"]
        print(
            f"## {config}: {n_params / 1e6:.1f}M parameters, batch {cfg['batch_size']} x "
            f"{cfg['context_length']} tokens\n"
        )
        print("| variant | tokens/s | vs reference | activations MiB | peak GPU MiB | MFU |")
        print("|---|---|---|---|---|---|")
        for v in variants:
            tps = tokens * args.steps / best[v.name]
            ref_tps = tokens * args.steps / best[reference_of(v, variants).name]
            peak = peak_tflops(args.device, v.precision, args.peak_tflops)
            mfu = f"{100 * tps * flops_per_token / (peak * 1e12):.1f}%" if peak else "-"
            act = activations[v.name]
            print(
                f"| {v.name} | {tps:,.0f} | {tps / ref_tps:.2f}x | {act:,.0f} | "
                f"{peaks.get(v.name, '-')} | {mfu} |",
                flush=True,
            )
        print()


if __name__ == "__main__":
    main()
