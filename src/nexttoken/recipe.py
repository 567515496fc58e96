"""A training run, from settings: the corpus, the tokenizer, the model and training configs.

``nexttoken train`` and ``nexttoken scaling`` both build their runs here: merged settings (the
defaults of :data:`TRAIN_DEFAULTS`, a ``--config`` file, flags) go in; a tokenizer
(:func:`signal_tokenizer`), a ``GPTConfig`` and ``TrainConfig`` (:func:`configs`) and training
and held-out batches (:func:`datasets`) come out. Bad settings raise ``ValueError`` naming the
setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "TRAIN_DEFAULTS",
    "ARCHITECTURE_KEYS",
    "noise_levels",
    "sources",
    "data_kind",
    "signal_tokenizer",
    "configs",
    "datasets",
]

# Settings of `nexttoken train`, with defaults; a --config JSON file may set any of them and
# command-line flags override both.
TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 1000,
    "batch_size": 32,
    "context": 192,
    "n_layer": 3,
    "n_head": 4,
    "n_embd": 96,
    "dropout": 0.0,
    "norm": "layernorm",
    "norm_position": "pre",
    "positions": "learned",
    "parametrization": "standard",
    "mup_base_width": None,
    "lr": 3e-3,
    "min_lr_ratio": 0.1,
    "warmup_steps": -1,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
    "eval_every": 100,
    "eval_batches": 8,
    "save_every": 250,
    "seed": 0,
    "objective": "gpt",
    "mask_rate": 0.15,
    "mask_mode": "bert",
    "mask_span": 1,
    "device": "cpu",
    "grad_accum_steps": 1,
    "precision": "fp32",
    "gradient_checkpointing": False,
    "compile": False,
    "patience": 0,
    # signals
    "bins": 128,
    "low": -4.0,
    "high": 4.0,
    # "standard" (subtract the context mean, divide by its std) survives levels and trends;
    # measured in docs/evaluation.md. Checkpoints keep the scaling they were trained with.
    "scaling": "standard",
    # every source of nexttoken.synthetic.SOURCES in equal shares
    "sources": "kernelsynth=1,structured=1,oscillators=1,mixup=1,sharp=1,spiky=1,floored=1,"
    "walks=1,weekly=1,regimes=1",
    "stats_prefix": 0.5,
    "short_fraction": 0.25,
    "families": ",".join(
        [
            "single_sine",
            "sine",
            "damped",
            "square",
            "sawtooth",
            "chirp",
            "am",
            "van_der_pol",
            "duffing",
            "coupled",
        ]
    ),
    "n_series": 4096,
    "series_length": 512,
    "noise": 0.0,
    # text
    "tokenizer": "char",
    "vocab_size": 512,
}


#: Settings that are the model's architecture: setting name -> ``GPTConfig`` field.
ARCHITECTURE_KEYS = {
    "context": "context_length",
    "n_layer": "n_layer",
    "n_head": "n_head",
    "n_embd": "n_embd",
    "norm": "norm",
    "norm_position": "norm_position",
    "positions": "positions",
    "dropout": "dropout",
    "objective": "objective",
    "parametrization": "parametrization",
    "mup_base_width": "mup_base_width",
}


def noise_levels(value: Any) -> list[float]:
    try:
        levels = [float(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--noise {value!r}: give a number or comma-separated numbers") from None
    if not levels or any(v < 0 for v in levels):
        raise ValueError(f"--noise {value!r}: give levels >= 0")
    return levels


def sources(value: Any) -> dict[str, float]:
    from .synthetic import SOURCES

    shares: dict[str, float] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        name, _, share = item.partition("=")
        name = name.strip()
        if name not in SOURCES:
            raise ValueError(
                f"--sources: unknown source {name!r}; choose from {', '.join(SOURCES)}"
            )
        try:
            shares[name] = float(share) if share.strip() else 1.0
        except ValueError:
            raise ValueError(
                f"--sources: {item!r} is not NAME=SHARE (e.g. kernelsynth=0.4)"
            ) from None
    if not shares or any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        raise ValueError(f"--sources {value!r}: give NAME=SHARE items with shares >= 0, not all 0")
    return shares


def data_kind(data: str) -> str:
    if data in ("oscillators", "synthetic"):
        return data
    for ext in ("csv", "txt"):
        if data.lower().endswith("." + ext):
            if not Path(data).is_file():
                raise ValueError(f"--data {data}: no such file")
            return ext
    raise ValueError(
        f"--data {data!r}: give 'oscillators', 'synthetic', a .csv file of series or a .txt file of text"
    )


def signal_tokenizer(s: dict[str, Any]) -> Any:
    """A new signal tokenizer from ``s`` (bins, low, high, scaling)."""
    from .tokenizers import SignalTokenizer

    return SignalTokenizer(
        n_bins=int(s["bins"]), low=float(s["low"]), high=float(s["high"]), scaling=str(s["scaling"])
    )


def configs(s: dict[str, Any], tokenizer: Any, progress: bool = True) -> tuple[Any, Any]:
    """``(GPTConfig, TrainConfig)`` from merged settings ``s`` (see :data:`TRAIN_DEFAULTS`)."""
    from .model import GPTConfig
    from .train import TrainConfig

    model_config = GPTConfig(
        vocab_size=tokenizer.vocab_size,
        context_length=int(s["context"]),
        n_layer=int(s["n_layer"]),
        n_head=int(s["n_head"]),
        n_embd=int(s["n_embd"]),
        dropout=float(s["dropout"]),
        norm=s["norm"],
        norm_position=s["norm_position"],
        positions=s["positions"],
        objective=s["objective"],
        parametrization=s["parametrization"],
        mup_base_width=None if s["mup_base_width"] is None else int(s["mup_base_width"]),
    )
    config = TrainConfig(
        steps=int(s["steps"]),
        batch_size=int(s["batch_size"]),
        lr=float(s["lr"]),
        min_lr_ratio=float(s["min_lr_ratio"]),
        warmup_steps=int(s["warmup_steps"]),
        weight_decay=float(s["weight_decay"]),
        grad_clip=float(s["grad_clip"]),
        eval_every=int(s["eval_every"]),
        eval_batches=int(s["eval_batches"]),
        save_every=int(s["save_every"]),
        seed=int(s["seed"]),
        device=str(s["device"]),
        progress=progress,
        grad_accum_steps=int(s["grad_accum_steps"]),
        precision=str(s["precision"]),
        gradient_checkpointing=bool(s["gradient_checkpointing"]),
        compile=bool(s["compile"]),
        patience=int(s["patience"]),
    )
    return model_config, config


def datasets(
    s: dict[str, Any], kind: str, data: str, text: str, tokenizer: Any, model_config: Any
) -> tuple[Any, Any]:
    """Training and validation batches for the data kind (masked for the MLM objective)."""
    from .data import (
        MaskedWindows,
        SeriesWindows,
        csv_datasets,
        oscillator_datasets,
        synthetic_datasets,
        text_datasets,
    )

    context = model_config.context_length
    train_data: Any
    val_data: Any
    if kind == "oscillators":
        families = tuple(f.strip() for f in str(s["families"]).split(",") if f.strip())
        train_data, val_data = oscillator_datasets(
            tokenizer,
            context,
            families=families,
            n_series=int(s["n_series"]),
            length=int(s["series_length"]),
            seed=int(s["seed"]),
            noise=noise_levels(s["noise"]),
        )
    elif kind == "synthetic":
        train_data, val_data = synthetic_datasets(
            tokenizer,
            context,
            n_series=int(s["n_series"]),
            length=int(s["series_length"]),
            seed=int(s["seed"]),
            noise=noise_levels(s["noise"]),
            shares=sources(s["sources"]),
            short_fraction=float(s["short_fraction"]),
            stats_prefix=float(s["stats_prefix"]),
        )
    elif kind == "csv":
        train_data, val_data = csv_datasets(data, tokenizer, context)
    else:
        train_data, val_data = text_datasets(text, tokenizer, context)
    if model_config.objective == "mlm":
        assert isinstance(train_data, SeriesWindows) and isinstance(val_data, SeriesWindows)
        bert = s["mask_mode"] == "bert"
        span = int(s["mask_span"])
        train_data = MaskedWindows(train_data, float(s["mask_rate"]), bert, span)
        val_data = MaskedWindows(val_data, float(s["mask_rate"]), bert, span)
    return train_data, val_data
