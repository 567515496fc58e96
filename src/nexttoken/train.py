"""A training loop that knows nothing about the model beyond ``model(x) -> logits``.

AdamW with decoupled weight decay on matrices only, linear warmup then cosine decay,
gradient clipping, a held-out eval loss, a tqdm progress bar with loss and tokens/s,
``metrics.jsonl``, and checkpoints that resume exactly: ``N`` steps in one go and
``N/2 + resume + N/2`` give the same weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .checkpoint import (
    CheckpointError,
    atomic_write,
    load_training_state,
    load_weights,
    model_tensors,
    read_config,
    save_checkpoint,
    save_training_state,
)
from .data import IGNORE, Batches
from .incontext import bucket_means, icl_score, position_losses
from .model import GPT, GPTConfig

__all__ = [
    "TrainConfig",
    "train",
    "train_step",
    "lr_at",
    "lm_loss",
    "evaluate_loss",
    "evaluate_held_out",
    "TrainResult",
    "Distributed",
]


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
    """``cpu``, ``cuda`` (under torchrun: each process its ``LOCAL_RANK`` GPU) or ``mps``."""
    progress: bool = True
    grad_accum_steps: int = 1
    """Split each batch into this many micro-batches (same result, less activation memory)."""
    gradient_checkpointing: bool = False
    """Recompute each block's activations in the backward pass instead of keeping them."""
    precision: str = "fp32"
    """``fp32``, or ``bf16``: autocast matmuls to bfloat16 (weights and optimizer stay fp32)."""
    compile: bool = False
    """``torch.compile`` the model (pays off on GPUs; on CPUs it has not, see docs/performance.md)."""
    patience: int = 0
    """Early stopping: stop after this many evaluations in a row without a lower held-out loss,
    and keep the weights of the best one (0: off, train all ``steps``)."""

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "eval_every",
            "eval_batches",
            "save_every",
            "log_every",
            "grad_accum_steps",
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
        if self.patience < 0:
            raise ValueError(
                f"patience must be >= 0 (0 turns early stopping off; got {self.patience})"
            )
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16 (got {self.precision!r})")
        if self.batch_size % self.grad_accum_steps:
            raise ValueError(
                f"batch_size={self.batch_size} is not a multiple of grad_accum_steps={self.grad_accum_steps}"
            )

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
    logits = logits.flatten(0, 1)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # fp64 stays fp64
    return F.cross_entropy(logits, targets.flatten(), ignore_index=IGNORE)


def _computes_loss(model: torch.nn.Module) -> bool:
    """Whether ``model`` (or the GPT inside DDP / ``torch.compile`` wrappers) takes targets."""
    inner: Any = model
    while True:
        if isinstance(inner, GPT):
            return True
        nxt = getattr(inner, "_orig_mod", None) or getattr(inner, "module", None)
        if nxt is None or nxt is inner:
            return False
        inner = nxt


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The batch's mean loss: inside the model for a GPT (what ``torch.compile`` then sees,
    without holding every logit for large vocabularies), else from its logits."""
    if _computes_loss(model):
        return model(x, y)
    return lm_loss(model(x), y)


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the model's own groups (``optim_groups``: per-group ``lr_mult``, e.g. muP) or,
    for any other module, decay on matrices only."""
    groups_of = getattr(model, "optim_groups", None)
    if callable(groups_of):
        groups = groups_of(config.weight_decay)
    else:
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
    # One fused kernel per parameter instead of a dozen foreach ops: on a CPU, for the small
    # models here, the optimizer step drops from ~7% of a training step to ~1%
    # (docs/performance.md). MPS and other devices keep the default implementation.
    fused = torch.device(config.device).type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=fused)


def _autocast(device_type: str, config: TrainConfig) -> torch.autocast:
    """bfloat16 autocast when ``config.precision == "bf16"``, a no-op context otherwise."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.precision == "bf16")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to ``lr`` times its ``lr_mult`` (1 when absent)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


@dataclass
class TrainResult:
    step: int
    train_loss: float
    eval_loss: float
    seconds: float
    tokens_per_second: float
    stopped_early: bool = False
    """True when early stopping ended the run before ``steps`` (``step`` is where it stopped)."""
    best_step: int | None = None
    """With early stopping: the step whose weights were kept (``eval_loss`` is its loss)."""


@torch.no_grad()
def evaluate_loss(
    model: GPT, data: Batches, config: TrainConfig, device: str | None = None
) -> float:
    """Mean loss over ``eval_batches`` fixed batches (the same batches at every eval)."""
    return evaluate_held_out(model, data, config, device)[0]


@torch.no_grad()
def evaluate_held_out(
    model: GPT, data: Batches, config: TrainConfig, device: str | None = None
) -> tuple[float, dict[str, Any]]:
    """:func:`evaluate_loss`, and for a causal model the same batches' loss at each position
    of the window: ``{"icl_score", "eval_loss_by_position"}`` (see :mod:`nexttoken.incontext`)."""
    device = device or config.device
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(config.seed + 1)
    total = 0.0
    autocast = _autocast(torch.device(device).type, config)
    causal = getattr(getattr(model, "config", None), "causal", False)
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    for _ in range(config.eval_batches):
        x, y = data.batch(config.batch_size, gen)
        with autocast:
            if not causal:
                total += float(_loss(model, x.to(device), y.to(device)))
                continue
            losses = position_losses(model, x.to(device), y)  # (B, T), NaN where ignored
        valid = y != IGNORE  # a diverged model's NaN loss stays NaN: it must not read as 0
        zeroed = torch.where(valid, losses, 0.0).double()
        total += float(zeroed.sum() / valid.sum().clamp_min(1))
        sums = zeroed.sum(0) if sums is None else sums + zeroed.sum(0)
        counts = valid.sum(0) if counts is None else counts + valid.sum(0)
    model.train(was_training)
    extra: dict[str, Any] = {}
    if sums is not None and counts is not None:
        curve = torch.where(counts > 0, sums / counts.clamp_min(1), math.nan).numpy()
        score = icl_score(curve)
        extra = {
            "icl_score": round(score, 5) if math.isfinite(score) else None,
            "eval_loss_by_position": bucket_means(curve),
        }
    return total / config.eval_batches, extra


def _agree(stop: bool, dist_info: Distributed, device: str) -> bool:
    """Rank 0's early-stopping decision, on every rank."""
    if not dist_info.active:
        return stop
    import torch.distributed as dist

    flag = torch.tensor([1.0 if stop else 0.0], device=device)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


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


@dataclass
class Distributed:
    """Where this process sits in a ``torchrun`` job (world size 1 when it is alone)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Distributed:
        """Read ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` as set by ``torchrun``."""
        try:
            return cls(
                int(os.environ.get("RANK", 0)),
                int(os.environ.get("LOCAL_RANK", 0)),
                int(os.environ.get("WORLD_SIZE", 1)),
            )
        except ValueError:
            raise RuntimeError(
                "RANK, LOCAL_RANK and WORLD_SIZE must be whole numbers (they are set by torchrun)"
            ) from None


def _device_for(config: TrainConfig, dist_info: Distributed) -> str:
    if dist_info.active and config.device == "cuda":
        return f"cuda:{dist_info.local_rank}"  # one GPU per process
    return config.device


def _init_process_group(dist_info: Distributed, device: str) -> bool:
    """Join the torchrun job's process group (once); True when this call created it."""
    import torch.distributed as dist

    if not dist_info.active or dist.is_initialized():
        return False
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return True


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    lr: float,
) -> torch.Tensor:
    """One optimizer step on the batch ``x, y`` ``(B, T)``; returns the mean loss (a tensor, no sync).

    The batch is split into ``config.grad_accum_steps`` micro-batches; under
    DistributedDataParallel gradients are all-reduced only on the last of them.
    """
    set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    accum = config.grad_accum_steps
    total = torch.zeros((), device=x.device)
    autocast = _autocast(x.device.type, config)
    no_sync = getattr(model, "no_sync", None)
    for i, (xb, yb) in enumerate(zip(x.chunk(accum), y.chunk(accum))):
        sync = i == accum - 1 or no_sync is None
        with contextlib.nullcontext() if sync else no_sync():  # type: ignore[misc]
            with autocast:
                loss = _loss(model, xb, yb) / accum
            loss.backward()
        total += loss.detach()
    if config.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return total


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

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains a DistributedDataParallel replica:
    every rank draws the same global batch of ``batch_size`` rows and trains on its own slice,
    so the run follows the single-process run with the same ``batch_size``; rank 0 alone logs,
    evaluates and writes checkpoints.
    """
    out = Path(out)
    dist_info = Distributed.from_env()
    device = _device_for(config, dist_info)
    shards = dist_info.world_size * config.grad_accum_steps
    if config.batch_size % shards:
        raise ValueError(
            f"batch_size={config.batch_size} does not split into {dist_info.world_size} processes x "
            f"{config.grad_accum_steps} accumulation steps; make it a multiple of {shards}"
        )
    created_group = _init_process_group(dist_info, device)
    try:
        result = _train(
            model,
            tokenizer,
            train_data,
            val_data,
            config,
            out,
            device,
            dist_info,
            resume=resume,
            extra_config=extra_config,
            on_log=on_log,
        )
        if created_group:
            # every rank is done talking before any tears the group down: a rank that destroys
            # it while another still sends can abort in gloo's threads (seen once in CI)
            _barrier(dist_info)
        return result
    finally:
        if created_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _barrier(dist_info: Distributed) -> None:
    if dist_info.active:
        import torch.distributed as dist

        dist.barrier()


def _start_step(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    data_gen: torch.Generator,
    out: Path,
    config: TrainConfig,
    dist_info: Distributed,
    resume: bool,
    stopping: _EarlyStopping,
) -> int:
    """The step to start from: 0 for a new run (refusing to overwrite a checkpoint), else the
    saved step, with the weights, optimizer and random states read back."""
    state_path = out / "training_state.safetensors"
    if not resume:
        if (out / "model.safetensors").exists() or state_path.exists():
            raise CheckpointError(
                f"{out} already holds a checkpoint; pass --resume to continue it, or choose a new "
                "--out (nothing was overwritten)"
            )
        return 0
    # Every rank checks and reads the same files; rank 0 writes them only after everyone has read.
    if not state_path.is_file():
        raise CheckpointError(
            f"--resume: {out} has no training_state.safetensors to resume from; "
            "train without --resume to start a new run"
        )
    saved = read_config(out)
    if GPTConfig.from_dict(saved.get("model", {})) != model.config:
        raise CheckpointError(
            f"--resume: the model settings differ from those saved in {out}/config.json; "
            "resume with the same architecture flags (or none) or start a new --out"
        )
    start, rng, header = load_training_state(out, model, optimizer)
    stopping.restore(header.get("early_stopping"), out)
    torch.set_rng_state(rng.get(f"torch.rank{dist_info.rank}", rng["torch"]))
    data_gen.set_state(rng["data"])
    if start >= config.steps:
        raise CheckpointError(
            f"--resume: {out} is already at step {start} of {config.steps}; pass a larger --steps to go on"
        )
    if stopping.stopped:
        raise CheckpointError(
            f"--resume: {out} stopped early at step {start} (no better held-out loss in "
            f"{stopping.bad} evaluations; best at step {stopping.best_step}); nothing to resume"
        )
    saved_world = int(header.get("world_size", 1))
    if saved_world != dist_info.world_size and dist_info.main:
        warnings.warn(
            f"resuming a run saved with {saved_world} process(es) on {dist_info.world_size}: "
            "it goes on from the same weights and batches, but dropout draws differ",
            stacklevel=4,
        )
    _barrier(dist_info)
    if dist_info.main:
        _truncate_metrics(out / "metrics.jsonl", start)
    return start


def _wrap(model: GPT, config: TrainConfig, dist_info: Distributed, device: str) -> torch.nn.Module:
    """The module the steps call: the model, in DDP across processes, compiled on request."""
    net: torch.nn.Module = model
    if dist_info.active:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[dist_info.local_rank] if device.startswith("cuda") else None
        )
    if config.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return net


def _save(
    out: Path,
    model: GPT,
    tokenizer: Any,
    optimizer: torch.optim.Optimizer,
    data_gen: torch.Generator,
    config: TrainConfig,
    dist_info: Distributed,
    step: int,
    extra: dict[str, Any],
    stopping: _EarlyStopping | None = None,
) -> None:
    """Write the checkpoint and the training state of ``step`` (rank 0; the others wait)."""
    rng = {"torch": torch.get_rng_state(), "data": data_gen.get_state()}
    if dist_info.active:
        import torch.distributed as dist

        states: list[Any] = [None] * dist_info.world_size
        dist.all_gather_object(states, torch.get_rng_state())
        rng.update({f"torch.rank{r}": s for r, s in enumerate(states) if r > 0})
    if dist_info.main:
        # Training state first: a kill between the two files leaves a resumable pair.
        meta = {"train": config.to_dict(), "world_size": dist_info.world_size}
        if stopping is not None and stopping.on:
            meta["early_stopping"] = stopping.state()
        save_training_state(out, model, optimizer, step=step, rng=rng, meta=meta)
        if stopping is not None and stopping.on and stopping.has_best(out):
            # the checkpoint holds the best weights so far; the training state the latest
            with stopping.best_weights(model, out):
                extra = {**extra, "early_stopping": stopping.state()}
                save_checkpoint(out, model, tokenizer, step=step, extra=extra)
        else:
            save_checkpoint(out, model, tokenizer, step=step, extra=extra)
    _barrier(dist_info)  # no rank runs ahead of a checkpoint that is still being written


class _EarlyStopping:
    """The best held-out loss so far, its step, and evaluations since (``best.safetensors``)."""

    FILE = "best.safetensors"

    def __init__(self, patience: int):
        self.patience = patience
        self.best = math.inf
        self.best_step = 0
        self.bad = 0
        self.stopped = False

    @property
    def on(self) -> bool:
        return self.patience > 0

    def state(self) -> dict[str, Any]:
        return {
            "best_eval_loss": self.best if math.isfinite(self.best) else None,
            "best_step": self.best_step,
            "evaluations_without_gain": self.bad,
            "stopped": self.stopped,
            "patience": self.patience,
        }

    def restore(self, saved: dict[str, Any] | None, out: Path) -> None:
        if not saved or not self.on:
            return
        best = saved.get("best_eval_loss")
        self.best = math.inf if best is None else float(best)
        self.best_step = int(saved.get("best_step", 0))
        self.bad = int(saved.get("evaluations_without_gain", 0))
        self.stopped = bool(saved.get("stopped", False))
        if math.isfinite(self.best) and not (out / self.FILE).is_file():
            raise CheckpointError(
                f"--resume: {out}/{self.FILE} (the best weights of early stopping) is missing"
            )

    def update(self, eval_loss: float, step: int, model: GPT, out: Path, main: bool) -> bool:
        """Count one evaluation; keep the weights if best. True when training should stop."""
        if not self.on:
            return False
        if eval_loss < self.best:
            self.best, self.best_step, self.bad = eval_loss, step, 0
            if main:
                out.mkdir(parents=True, exist_ok=True)
                state = model_tensors(model)
                atomic_write(out / self.FILE, lambda p: save_file(state, str(p)))
        else:
            self.bad += 1
        self.stopped = self.bad >= self.patience
        return self.stopped

    def has_best(self, out: Path) -> bool:
        return math.isfinite(self.best) and (out / self.FILE).is_file()

    @contextlib.contextmanager
    def best_weights(self, model: GPT, out: Path) -> Iterator[None]:
        """The model holds the best weights inside the block, its own again after it."""
        current = {k: v.detach().clone() for k, v in model.state_dict().items()}
        load_weights(model, out / self.FILE)
        try:
            yield
        finally:
            model.load_state_dict(current)


class _Progress:
    """The running train loss, tokens per second, the progress bar and metrics.jsonl."""

    def __init__(
        self,
        config: TrainConfig,
        start: int,
        dist_info: Distributed,
        device: str,
        on_log: Callable[[dict[str, Any]], None] | None,
    ):
        self.config, self.dist_info, self.on_log = config, dist_info, on_log
        self.t_start = self.t_log = time.perf_counter()
        self.tokens_since_log = self.tokens_per_step = 0
        self.train_loss = self.eval_loss = float("nan")
        self.running = torch.zeros((), device=device)
        self.n_running = 0
        self.bar = tqdm(
            total=config.steps,
            initial=start,
            disable=not (config.progress and dist_info.main),
            unit="step",
            dynamic_ncols=True,
        )

    def add(self, loss: torch.Tensor, tokens: int) -> None:
        """Count one step's loss (kept on the device: no sync per step) and global tokens."""
        self.running += loss
        self.n_running += 1
        self.tokens_per_step = tokens
        self.tokens_since_log += tokens

    def _train_record(self, done: int, lr: float) -> dict[str, Any]:
        now = time.perf_counter()
        if self.dist_info.active:
            import torch.distributed as dist

            dist.all_reduce(self.running)  # the global batch's loss, as one process sees it
            self.running /= self.dist_info.world_size
        self.train_loss = float(self.running) / self.n_running
        self.running.zero_()
        self.n_running = 0
        tps = self.tokens_since_log / max(now - self.t_log, 1e-9)
        self.t_log, self.tokens_since_log = now, 0
        self.bar.set_postfix(loss=f"{self.train_loss:.4f}", tok_s=f"{tps:,.0f}")
        return {
            "step": done,
            "loss": self.train_loss,
            "lr": lr,
            "tokens_per_s": tps,
            "time": now - self.t_start,
        }

    def log(
        self,
        done: int,
        lr: float,
        evaluate: Callable[[], tuple[float, dict[str, Any]]],
        metrics: Any,
    ) -> bool:
        """After step ``done``: the train loss and eval loss when they are due, written out.
        True when an evaluation ran (rank 0)."""
        config = self.config
        last = done == config.steps
        record: dict[str, Any] = {}
        if done % config.log_every == 0 or last:
            record = self._train_record(done, lr)
        if self.dist_info.main and (done % config.eval_every == 0 or last):
            self.eval_loss, extra = evaluate()
            record = {**record, "step": done, "eval_loss": self.eval_loss, **extra}
            if config.progress:
                self.bar.write(
                    f"step {done}: train loss {self.train_loss:.4f}, eval loss {self.eval_loss:.4f}"
                )
            self._write(record, metrics)
            return True
        self._write(record, metrics)
        return False

    def log_start(self, evaluate: Callable[[], tuple[float, dict[str, Any]]], metrics: Any) -> None:
        """A new run's step-0 record: the untrained model's held-out loss (and loss by position)."""
        if self.dist_info.main:
            self.eval_loss, extra = evaluate()
            self._write({"step": 0, "eval_loss": self.eval_loss, **extra}, metrics)

    def _write(self, record: dict[str, Any], metrics: Any) -> None:
        if record and metrics is not None:
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
            if self.on_log:
                self.on_log(record)


def _train(
    model: GPT,
    tokenizer: Any,
    train_data: Batches,
    val_data: Batches,
    config: TrainConfig,
    out: Path,
    device: str,
    dist_info: Distributed,
    *,
    resume: bool,
    extra_config: dict[str, Any] | None,
    on_log: Callable[[dict[str, Any]], None] | None,
) -> TrainResult:
    model.to(device)
    model.gradient_checkpointing = config.gradient_checkpointing
    optimizer = _optimizer(model, config)
    data_gen = torch.Generator().manual_seed(config.seed)
    # Dropout differs per rank (each sees other rows); the data generator is the same everywhere.
    torch.manual_seed(config.seed + dist_info.rank)
    stopping = _EarlyStopping(config.patience)
    start = _start_step(model, optimizer, data_gen, out, config, dist_info, resume, stopping)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
    extra = {**(extra_config or {}), "train": config.to_dict()}
    net = _wrap(model, config, dist_info, device)
    model.train()
    per_rank = config.batch_size // dist_info.world_size
    lo, hi = dist_info.rank * per_rank, (dist_info.rank + 1) * per_rank
    progress = _Progress(config, start, dist_info, device, on_log)
    with contextlib.ExitStack() as stack:
        metrics = None
        if dist_info.main:
            metrics = stack.enter_context((out / "metrics.jsonl").open("a", encoding="utf-8"))
        held_out = lambda: evaluate_held_out(model, val_data, config, device)  # noqa: E731
        if start == 0:
            progress.log_start(held_out, metrics)
            if dist_info.main:  # the starting weights are a candidate too (a fine-tune may hurt)
                stopping.update(progress.eval_loss, 0, model, out, main=True)
        done = start
        for step in range(start, config.steps):
            lr = lr_at(step, config)
            x, y = train_data.batch(config.batch_size, data_gen)
            x = x[lo:hi].to(device, non_blocking=True)
            y = y[lo:hi].to(device, non_blocking=True)
            progress.add(
                train_step(net, optimizer, x, y, config, lr), x.numel() * dist_info.world_size
            )
            done = step + 1
            evaluated = progress.log(done, lr, held_out, metrics)
            stop = evaluated and stopping.update(
                progress.eval_loss, done, model, out, dist_info.main
            )
            stop = _agree(stop, dist_info, device) if stopping.on else False
            if done % config.save_every == 0 or done == config.steps or stop:
                _save(
                    out,
                    model,
                    tokenizer,
                    optimizer,
                    data_gen,
                    config,
                    dist_info,
                    done,
                    extra,
                    stopping,
                )
            progress.bar.update(1)
            if stop:
                if dist_info.main:
                    progress.bar.write(
                        f"early stopping at step {done}: no lower held-out loss in "
                        f"{stopping.bad} evaluations; keeping step {stopping.best_step} "
                        f"(eval loss {stopping.best:.4f})"
                    )
                break
    progress.bar.close()
    if stopping.has_best(out):  # hand back the weights that were saved
        load_weights(model, out / stopping.FILE)
    model.gradient_checkpointing = False
    seconds = time.perf_counter() - progress.t_start
    trained = (done - start) * progress.tokens_per_step
    return TrainResult(
        done,
        progress.train_loss,
        stopping.best if stopping.has_best(out) else progress.eval_loss,
        seconds,
        trained / max(seconds, 1e-9),
        stopped_early=stopping.stopped,
        best_step=stopping.best_step if stopping.on else None,
    )
