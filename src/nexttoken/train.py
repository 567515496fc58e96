"""A training loop that knows nothing about the model beyond ``model(x) -> logits``.

AdamW with decoupled weight decay on matrices only, linear warmup then cosine decay,
gradient clipping, a held-out eval loss, a tqdm progress bar with loss and tokens/s,
``metrics.jsonl``, and checkpoints that resume exactly: ``N`` steps in one go and
``N/2 + resume + N/2`` give the same weights.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoint import (
    CheckpointError,
    atomic_write,
    load_training_state,
    read_config,
    save_checkpoint,
    save_training_state,
)
from .data import IGNORE, Batches
from .model import GPT

__all__ = ["TrainConfig", "train", "lr_at", "lm_loss", "TrainResult"]


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of a training run."""

    steps: int = 1000
    """Optimizer steps in the whole run."""
    batch_size: int = 32
    lr: float = 1e-3
    """Peak learning rate, reached at the end of warmup."""
    min_lr_ratio: float = 0.1
    """The cosine decays to ``lr * min_lr_ratio`` at the last step."""
    warmup_steps: int = -1
    """Linear warmup steps; -1 means 5% of ``steps``."""
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 turns clipping off)."""
    eval_every: int = 100
    eval_batches: int = 8
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "eval_every",
            "eval_batches",
            "save_every",
            "log_every",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer (got {getattr(self, name)})")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0 (got {self.lr})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if self.warmup_steps < -1:
            raise ValueError("warmup_steps must be >= 0, or -1 for 5% of steps")
        if self.grad_clip < 0:
            raise ValueError("grad_clip must be >= 0 (0 turns clipping off)")

    @property
    def warmup(self) -> int:
        return max(1, self.steps // 20) if self.warmup_steps == -1 else self.warmup_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warmup, then cosine to the minimum."""
    warmup, peak = config.warmup, config.lr
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, config.steps - warmup))
    floor = peak * config.min_lr_ratio
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose target is not ``IGNORE``."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = config.device.startswith("cuda")
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)


@dataclass
class TrainResult:
    step: int
    train_loss: float
    eval_loss: float
    seconds: float
    tokens_per_second: float


@torch.no_grad()
def evaluate_loss(model: GPT, data: Batches, config: TrainConfig) -> float:
    """Mean loss over ``eval_batches`` fixed batches (the same batches at every eval)."""
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(config.seed + 1)
    total = 0.0
    for _ in range(config.eval_batches):
        x, y = data.batch(config.batch_size, gen)
        total += float(lm_loss(model(x.to(config.device)), y.to(config.device)))
    model.train(was_training)
    return total / config.eval_batches


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines logged after ``step`` (the run is resuming from there)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line torn by a kill
    atomic_write(path, lambda p: p.write_text("".join(k + "\n" for k in keep), encoding="utf-8"))


def train(
    model: GPT,
    tokenizer: Any,
    train_data: Batches,
    val_data: Batches,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    extra_config: dict[str, Any] | None = None,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``model`` for ``config.steps`` steps, writing checkpoints and metrics into ``out``.

    ``out`` must not already hold a checkpoint unless ``resume`` is set; then training goes on
    from the step, weights, optimizer moments and RNG states saved there.
    """
    out = Path(out)
    device = config.device
    model.to(device)
    optimizer = _optimizer(model, config)
    data_gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    start = 0
    metrics_path = out / "metrics.jsonl"
    state_path = out / "training_state.safetensors"
    if resume:
        if not state_path.is_file():
            raise CheckpointError(
                f"--resume: {out} has no training_state.safetensors to resume from; "
                "train without --resume to start a new run"
            )
        saved = read_config(out)
        if saved.get("model") != model.config.to_dict():
            raise CheckpointError(
                f"--resume: the model settings differ from those saved in {out}/config.json; "
                "resume with the same architecture flags (or none) or start a new --out"
            )
        start, rng, _ = load_training_state(out, model, optimizer)
        torch.set_rng_state(rng["torch"])
        data_gen.set_state(rng["data"])
        if start >= config.steps:
            raise CheckpointError(
                f"--resume: {out} is already at step {start} of {config.steps}; pass a larger --steps to go on"
            )
        _truncate_metrics(metrics_path, start)
    elif (out / "model.safetensors").exists() or state_path.exists():
        raise CheckpointError(
            f"{out} already holds a checkpoint; pass --resume to continue it, or choose a new --out "
            "(nothing was overwritten)"
        )
    out.mkdir(parents=True, exist_ok=True)
    extra = {**(extra_config or {}), "train": config.to_dict()}

    def save(step: int) -> None:
        # Training state first: a kill between the two files leaves a resumable pair.
        rng = {"torch": torch.get_rng_state(), "data": data_gen.get_state()}
        save_training_state(
            out, model, optimizer, step=step, rng=rng, meta={"train": config.to_dict()}
        )
        save_checkpoint(out, model, tokenizer, step=step, extra=extra)

    model.train()
    tokens_per_step = 0
    t_start = time.perf_counter()
    t_log, tokens_since_log = t_start, 0
    train_loss = eval_loss = float("nan")
    running = torch.zeros((), device=device)
    n_running = 0
    bar = tqdm(
        total=config.steps,
        initial=start,
        disable=not config.progress,
        unit="step",
        dynamic_ncols=True,
    )
    with metrics_path.open("a", encoding="utf-8") as metrics:
        for step in range(start, config.steps):
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = train_data.batch(config.batch_size, data_gen)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = lm_loss(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            running += loss.detach()
            n_running += 1
            tokens_per_step = x.numel()
            tokens_since_log += tokens_per_step
            done = step + 1
            record: dict[str, Any] = {}
            if done % config.log_every == 0 or done == config.steps:
                now = time.perf_counter()
                train_loss = float(running) / n_running
                running.zero_()
                n_running = 0
                tps = tokens_since_log / max(now - t_log, 1e-9)
                t_log, tokens_since_log = now, 0
                record = {
                    "step": done,
                    "loss": train_loss,
                    "lr": lr,
                    "tokens_per_s": tps,
                    "time": now - t_start,
                }
                bar.set_postfix(loss=f"{train_loss:.4f}", tok_s=f"{tps:,.0f}")
            if done % config.eval_every == 0 or done == config.steps:
                eval_loss = evaluate_loss(model, val_data, config)
                record = {**record, "step": done, "eval_loss": eval_loss}
                bar.write(f"step {done}: train loss {train_loss:.4f}, eval loss {eval_loss:.4f}")
            if record:
                metrics.write(json.dumps(record) + "\n")
                metrics.flush()
                if on_log:
                    on_log(record)
            if done % config.save_every == 0 or done == config.steps:
                save(done)
            bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t_start
    trained = (config.steps - start) * tokens_per_step
    return TrainResult(config.steps, train_loss, eval_loss, seconds, trained / max(seconds, 1e-9))
