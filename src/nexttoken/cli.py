"""The ``nexttoken`` command: thin subcommands over the library.

Every error a user can cause ends as one line ``nexttoken: error: ...`` that says what is
wrong and what to do, and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "build_parser"]

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
    # signals
    "bins": 128,
    "low": -4.0,
    "high": 4.0,
    # "standard" (subtract the context mean, divide by its std) survives levels and trends;
    # measured in docs/evaluation.md. Checkpoints keep the scaling they were trained with.
    "scaling": "standard",
    "sources": "kernelsynth=0.4,structured=0.3,oscillators=0.1,mixup=0.2",
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


class CLIError(Exception):
    """A usage problem: printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {v})")
    return v


def _add_sampling(p: argparse.ArgumentParser) -> None:
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
        "--top-k", type=_positive_int, default=None, help="sample among the K most probable tokens"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nexttoken",
        description="Next-token prediction with small transformers: train GPTs on signals or text, "
        "look at next-token distributions, generate and forecast.",
    )
    parser.add_argument("--version", action="version", version=f"nexttoken {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="train a small oscillator GPT here and write forecasts and figures",
        description="Generate oscillators, train a small GPT on the CPU (about 3 minutes), "
        "and write the checkpoint, figures, next-token table and summary.md to --out.",
    )
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="training steps (default: the demo's budget)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "train",
        help="train a GPT on oscillators, the synthetic corpus, a CSV of series or a text file",
        description="Train a model. Settings come from the defaults, then --config FILE (JSON "
        'with the long flag names as keys, e.g. {"n_layer": 4}), then the flags given here.',
    )
    p.add_argument(
        "--data",
        required=True,
        help="'oscillators' (zero-mean oscillator families), 'synthetic' (series with levels, trends "
        "and calendar seasons: KernelSynth, structured oscillators, TSMixup), a CSV of series "
        "(one column each) or a .txt file",
    )
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--config", help="JSON file of settings")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("optimisation")
    options: list[tuple[str, Any, str]] = [
        ("--steps", _positive_int, "optimizer steps"),
        ("--batch-size", _positive_int, "sequences per step"),
        ("--lr", float, "peak learning rate"),
        ("--min-lr-ratio", float, "final learning rate as a fraction of the peak"),
        ("--warmup-steps", int, "linear warmup steps (-1: 5%% of steps)"),
        ("--weight-decay", float, "AdamW weight decay on matrices"),
        ("--grad-clip", float, "clip the gradient norm (0: off)"),
        ("--eval-every", _positive_int, "steps between held-out evaluations"),
        ("--eval-batches", _positive_int, "batches per evaluation"),
        ("--save-every", _positive_int, "steps between checkpoints"),
        ("--seed", int, "seed of initialisation and data"),
        (
            "--device",
            str,
            "cpu, cuda, cuda:1, mps ... (under torchrun, cuda = one GPU per process)",
        ),
        ("--grad-accum-steps", _positive_int, "split each batch into N micro-batches"),
    ]
    for flag, typ, hlp in options:
        g.add_argument(flag, type=typ, default=None, help=hlp)
    g.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default=None,
        help="bf16: autocast matmuls to bfloat16 (GPUs; default fp32)",
    )
    g.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        default=None,
        help="recompute block activations in the backward pass (10x less activation memory, ~15%% slower)",
    )
    g.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the model (GPUs)"
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--objective",
        choices=["gpt", "mlm"],
        default=None,
        help="gpt: causal next-token prediction; mlm: masked LM, bidirectional (signals only)",
    )
    g.add_argument(
        "--mask-rate", type=float, default=None, help="mlm: share of tokens masked (default 0.15)"
    )
    g.add_argument(
        "--mask-span",
        type=_positive_int,
        default=None,
        help="mlm: hide spans of 1..N tokens instead of single tokens (default 1)",
    )
    g.add_argument(
        "--mask-mode",
        choices=["bert", "mask"],
        default=None,
        help="mlm: bert = 80%% MASK / 10%% random / 10%% kept (default); mask = always MASK",
    )
    options = [
        ("--context", _positive_int, "context window in tokens"),
        ("--n-layer", _positive_int, "transformer blocks"),
        ("--n-head", _positive_int, "attention heads"),
        ("--n-embd", _positive_int, "width"),
        ("--dropout", float, "dropout rate"),
    ]
    for flag, typ, hlp in options:
        g.add_argument(flag, type=typ, default=None, help=hlp)
    g.add_argument("--norm", choices=["layernorm", "rmsnorm"], default=None)
    g.add_argument("--norm-position", choices=["pre", "post"], default=None)
    g.add_argument("--positions", choices=["learned", "sinusoidal", "rope", "none"], default=None)
    g.add_argument(
        "--parametrization",
        choices=["standard", "mup"],
        default=None,
        help="mup: muP init, per-layer learning rates and 1/d attention (default standard)",
    )
    g.add_argument(
        "--mup-base-width",
        type=_positive_int,
        default=None,
        help="width at which muP equals standard (tune --lr there; default: --n-embd)",
    )
    g = p.add_argument_group("signals (oscillators, synthetic, CSV)")
    g.add_argument("--bins", type=_positive_int, default=None, help="number of value bins")
    g.add_argument(
        "--scaling",
        choices=["mean", "standard"],
        default=None,
        help="how each window is scaled before binning: standard (minus the mean, over the std; "
        "default, survives levels) or mean (over the mean |value|, as Chronos)",
    )
    g.add_argument(
        "--sources",
        default=None,
        help="shares of the synthetic corpus, e.g. kernelsynth=0.4,structured=0.3,oscillators=0.1,mixup=0.2",
    )
    g.add_argument(
        "--low", type=float, default=None, help="lowest bin centre (in units of the scale)"
    )
    g.add_argument("--high", type=float, default=None, help="highest bin centre")
    g.add_argument("--families", default=None, help="comma-separated oscillator families")
    g.add_argument(
        "--n-series",
        type=_positive_int,
        default=None,
        help="series to generate (oscillators, synthetic)",
    )
    g.add_argument(
        "--series-length", type=_positive_int, default=None, help="steps per generated oscillator"
    )
    g.add_argument(
        "--noise",
        default=None,
        help="relative Gaussian noise on the oscillators; several levels (e.g. 0,0.1) split the series among them",
    )
    g = p.add_argument_group("text (.txt)")
    g.add_argument(
        "--tokenizer",
        choices=["char", "bpe"],
        default=None,
        help="char (default) or byte-level bpe",
    )
    g.add_argument(
        "--vocab-size", type=_positive_int, default=None, help="BPE vocabulary size to learn"
    )

    p = sub.add_parser(
        "forecast",
        help="probabilistic forecast of the series in a CSV file",
        description="Forecast every column of IN.csv (header = series names, rows = time steps, "
        "empty cell = missing). IN.csv may start with a column of dates (header ds, date, ... or "
        "values such as 2024-01-31), or be long format with columns unique_id,ds,y. OUT.csv is long "
        "format: series,step,mean,median,q0.1,...,q0.9, with a ds column after step (the dates "
        "that follow the context, at its frequency) when IN.csv had dates.",
    )
    p.add_argument("model", help="checkpoint directory or a shipped model's name")
    p.add_argument(
        "--input", required=True, help="CSV of context series: wide, wide with dates, or long"
    )
    p.add_argument("--horizon", required=True, type=_positive_int, help="steps to forecast")
    p.add_argument(
        "--samples", type=_positive_int, default=20, help="sample paths per series (default 20)"
    )
    p.add_argument("--output", help="write the forecast CSV here (default: print it)")
    p.add_argument("--plot", help="write a fan chart PNG here")
    p.add_argument("--truth", help="CSV with the true continuation, drawn on the fan chart")
    p.add_argument(
        "--heatmap",
        help="write a PNG of the next-token distribution at each step of the first series' first sample path",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=_positive_int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser(
        "next",
        help="the top-K next tokens after a prompt, with probabilities",
        description="Print p(next token | prompt) as a table: rank, token, id, probability, "
        "and the total probability of the rows shown.",
    )
    p.add_argument("model", help="checkpoint or GPT-2 directory")
    p.add_argument("prompt", help="text, or comma-separated numbers for a signal model")
    p.add_argument("--top", type=_positive_int, default=10, help="rows to show (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", help="write a bar chart of the whole distribution here (PNG)")

    p = sub.add_parser(
        "generate",
        help="continue a prompt token by token",
        description="Continue PROMPT by N tokens, printing them as they come.",
    )
    p.add_argument("model", help="checkpoint or GPT-2 directory")
    p.add_argument("prompt", help="text, or comma-separated numbers for a signal model")
    p.add_argument("--max-new-tokens", required=True, type=_positive_int, help="tokens to add")
    _add_sampling(p)
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=None,
        help="CTRL penalty for repeated tokens (>1)",
    )
    p.add_argument(
        "--last-token-only",
        action="store_true",
        help="predict each token from the previous token alone, p(t_i | t_{i-1})",
    )
    p.add_argument(
        "--json", action="store_true", help="print JSON: prompt_ids, ids (new only), text"
    )

    p = sub.add_parser(
        "sample-frequencies",
        help="draw the next token N times and compare counts with probabilities",
        description="Sample the next token N times from the full distribution (temperature 1, "
        "no filtering) and show how often each top-K token was drawn next to its probability, and "
        "how often a token outside the top K was drawn.",
    )
    p.add_argument("model", help="checkpoint or GPT-2 directory")
    p.add_argument("prompt", help="text, or comma-separated numbers for a signal model")
    p.add_argument("--n", type=_positive_int, default=1000, help="number of draws (default 1000)")
    p.add_argument("--top", type=_positive_int, default=10, help="rows to show (default 10)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser(
        "export-hf",
        help="write a model as a Hugging Face GPT-2 directory",
        description="Write MODEL as a directory that transformers' GPT2LMHeadModel.from_pretrained "
        "loads (needs GPT-2's architecture: pre-LN LayerNorm, learned positions, causal).",
    )
    p.add_argument("model", help="checkpoint directory")
    p.add_argument("out", help="directory to write")

    p = sub.add_parser(
        "infill",
        help="fill the empty cells of a CSV with a masked-LM model",
        description="Write IN.csv with every empty cell filled by a model trained with --objective mlm; "
        "the given values are kept as they were.",
    )
    p.add_argument("model", help="checkpoint directory of a masked-LM model")
    p.add_argument("--input", required=True, help="CSV with empty cells")
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument(
        "--sample", action="store_true", help="sample each value instead of taking the argmax"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="write a PNG of each series with its filled values")

    p = sub.add_parser(
        "evaluate",
        help="score models and classical baselines on fixed benchmark suites",
        description="Forecast the held-out series of a suite with each MODEL and with the classical "
        "baselines, and write report.md (a table per suite, relative scores against the seasonal "
        "naive forecast, fan charts, calibration plot) and results.csv (every metric of every series).",
    )
    p.add_argument(
        "model",
        nargs="*",
        help="signal models: checkpoint directories or shipped names (see `nexttoken models`)",
    )
    p.add_argument(
        "--suite",
        choices=["oscillators", "levels", "real", "all"],
        default="oscillators",
        help="oscillators (10 families, clean and noisy), levels (the families with random levels "
        "and trends, offset sines, airline-like series), real (series bundled with statsmodels) "
        "or all (default oscillators)",
    )
    p.add_argument("--out", required=True, help="directory for report.md, results.csv, figures")
    p.add_argument(
        "--samples", type=_positive_int, default=20, help="sample paths per forecast (default 20)"
    )
    p.add_argument(
        "--series",
        type=_positive_int,
        default=16,
        help="held-out series per oscillator dataset (default 16)",
    )
    p.add_argument(
        "--baselines",
        default="last,seasonal,ar,ets,arima",
        help="comma-separated: last, seasonal, ar, ets, arima (default all; ets/arima need "
        "nexttoken[baselines], and arima takes most of the time); 'none' for models only",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true", help="skip the figures")

    p = sub.add_parser(
        "models",
        help="list the pretrained models that ship with nexttoken",
        description="Models inside the package, usable by name wherever a MODEL is asked for "
        "(e.g. nexttoken forecast oscillators-small --input IN.csv --horizon 64).",
    )
    p.add_argument("--json", action="store_true")

    for name in (
        "next",
        "generate",
        "sample-frequencies",
        "export-hf",
        "forecast",
        "infill",
        "evaluate",
    ):
        sub.choices[name].add_argument(
            "--allow-pickle",
            action="store_true",
            help="let a GPT-2 directory with only pytorch_model.bin load (pickle can run code: trusted files only)",
        )
    return parser


def _version() -> str:
    from . import __version__

    return __version__


# --- commands ------------------------------------------------------------------------------------


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = dict(TRAIN_DEFAULTS)
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise CLIError(f"--config {path}: no such file")
        try:
            from_file = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise CLIError(f"--config {path} is not valid JSON: {e}") from None
        if not isinstance(from_file, dict):
            raise CLIError(f"--config {path} must hold a JSON object of settings")
        from_file = {k.replace("-", "_"): v for k, v in from_file.items()}
        unknown = sorted(set(from_file) - set(settings))
        if unknown:
            raise CLIError(
                f"--config {path}: unknown settings {unknown}; known: {sorted(settings)}"
            )
        settings.update(from_file)
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    return settings


_RESUMED_MODEL_KEYS = {
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


def _noise_levels(value: Any) -> list[float]:
    try:
        levels = [float(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--noise {value!r}: give a number or comma-separated numbers") from None
    if not levels or any(v < 0 for v in levels):
        raise CLIError(f"--noise {value!r}: give levels >= 0")
    return levels


def _sources(value: Any) -> dict[str, float]:
    from .synthetic import SOURCES

    shares: dict[str, float] = {}
    for item in str(value).split(","):
        if not item.strip():
            continue
        name, _, share = item.partition("=")
        name = name.strip()
        if name not in SOURCES:
            raise CLIError(f"--sources: unknown source {name!r}; choose from {', '.join(SOURCES)}")
        try:
            shares[name] = float(share) if share.strip() else 1.0
        except ValueError:
            raise CLIError(
                f"--sources: {item!r} is not NAME=SHARE (e.g. kernelsynth=0.4)"
            ) from None
    if not shares or any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        raise CLIError(f"--sources {value!r}: give NAME=SHARE items with shares >= 0, not all 0")
    return shares


def _data_kind(data: str) -> str:
    if data in ("oscillators", "synthetic"):
        return data
    for ext in ("csv", "txt"):
        if data.lower().endswith("." + ext):
            if not Path(data).is_file():
                raise CLIError(f"--data {data}: no such file")
            return ext
    raise CLIError(
        f"--data {data!r}: give 'oscillators', 'synthetic', a .csv file of series or a .txt file of text"
    )


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import read_config, saved_step
    from .data import (
        Batches,
        MaskedWindows,
        SeriesWindows,
        csv_datasets,
        oscillator_datasets,
        synthetic_datasets,
        text_datasets,
    )
    from .model import GPT, GPTConfig
    from .tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer, tokenizer_from_json
    from .train import Distributed, TrainConfig, train

    s = _train_settings(args)
    out = Path(args.out)
    data = str(args.data)
    kind = _data_kind(data)
    if not args.resume and any(
        (out / f).exists() for f in ("model.safetensors", "training_state.safetensors")
    ):
        raise CLIError(
            f"{out} already holds a checkpoint; pass --resume to continue it, or choose a new --out "
            "(nothing was overwritten)"
        )
    text = Path(data).read_text(encoding="utf-8") if kind == "txt" else ""
    # Tokenizer and configs first, so that bad settings fail before any data is made.
    tokenizer: Any
    if args.resume:
        done = saved_step(out)
        if done is not None and done >= int(s["steps"]):
            # A requeued job that already finished: nothing to do, and nothing is touched.
            print(
                f"nexttoken: {out} already reached step {done} of --steps {s['steps']}; nothing to "
                "do (pass a larger --steps to train on)",
                file=sys.stderr,
            )
            return 0
        # A run keeps the tokenizer and architecture it started with.
        saved = read_config(out)
        tokenizer = tokenizer_from_json((out / "tokenizer.json").read_text(encoding="utf-8"))
        for key, model_key in _RESUMED_MODEL_KEYS.items():
            if getattr(args, key, None) is None:
                s[key] = saved["model"].get(model_key, s[key])
    elif kind == "txt":
        bpe = s["tokenizer"] == "bpe"
        tokenizer = (
            BPETokenizer.train([data], int(s["vocab_size"]))
            if bpe
            else CharTokenizer.from_text(text)
        )
    else:
        tokenizer = SignalTokenizer(
            n_bins=int(s["bins"]),
            low=float(s["low"]),
            high=float(s["high"]),
            scaling=str(s["scaling"]),
        )
    if s["objective"] == "mlm" and kind == "txt":
        raise CLIError(
            "--objective mlm needs a MASK token: train it on oscillators or a CSV of series"
        )
    if (kind == "txt") == isinstance(tokenizer, SignalTokenizer):
        raise CLIError(
            f"--resume: {out} was trained on other data than {data} ({tokenizer.kind} tokenizer)"
        )
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
        progress=not args.no_progress,
        grad_accum_steps=int(s["grad_accum_steps"]),
        precision=str(s["precision"]),
        gradient_checkpointing=bool(s["gradient_checkpointing"]),
        compile=bool(s["compile"]),
    )

    train_data: Batches
    val_data: Batches
    context = model_config.context_length
    if kind == "oscillators":
        families = tuple(f.strip() for f in str(s["families"]).split(",") if f.strip())
        train_data, val_data = oscillator_datasets(
            tokenizer,
            context,
            families=families,
            n_series=int(s["n_series"]),
            length=int(s["series_length"]),
            seed=int(s["seed"]),
            noise=_noise_levels(s["noise"]),
        )
    elif kind == "synthetic":
        train_data, val_data = synthetic_datasets(
            tokenizer,
            context,
            n_series=int(s["n_series"]),
            length=int(s["series_length"]),
            seed=int(s["seed"]),
            noise=_noise_levels(s["noise"]),
            shares=_sources(s["sources"]),
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

    torch.manual_seed(config.seed)
    model = GPT(model_config)
    dist_info = Distributed.from_env()
    if dist_info.main:
        print(
            f"training a {model.num_params() / 1e6:.2f}M-parameter {s['objective'].upper()} on {data} "
            f"({tokenizer.kind} tokenizer, {tokenizer.vocab_size} tokens) -> {out}",
            file=sys.stderr,
        )
    result = train(
        model,
        tokenizer,
        train_data,
        val_data,
        config,
        out,
        resume=args.resume,
        extra_config={"data": {"source": data, "settings": s}},
    )
    if not dist_info.main:
        return 0
    workers = f" on {dist_info.world_size} processes" if dist_info.active else ""
    print(
        f"done: step {result.step}, train loss {result.train_loss:.4f}, eval loss {result.eval_loss:.4f}, "
        f"{result.seconds:.0f} s, {result.tokens_per_second:,.0f} tokens/s{workers}; checkpoint in {out}"
    )
    return 0


def cmd_forecast(args: argparse.Namespace) -> int:
    from .forecast import forecast
    from .frames import read_table
    from .lm import load
    from .signals import read_csv

    lm = load(args.model, allow_pickle=args.allow_pickle)
    table = read_table(args.input)
    if not table.values:
        raise CLIError(f"{args.input} has no series columns")
    names = table.names
    contexts, times = [], []
    for name, v, t in zip(names, table.values, table.times):
        observed = np.flatnonzero(~np.isnan(v))
        if observed.size == 0:
            raise CLIError(
                f"{args.input}: series {name!r} has no observed values; fill it or drop the column"
            )
        end = observed[-1] + 1  # drop trailing blanks: the forecast starts after the last value
        contexts.append(v[:end])
        times.append(None if t is None else t[:end])
    f = forecast(
        lm,
        contexts,
        args.horizon,
        num_samples=args.samples,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        names=names,
    )
    text = _forecast_csv(f, times, args.horizon)
    if args.output:
        from .checkpoint import atomic_write

        atomic_write(Path(args.output), lambda p: p.write_text(text))
        print(f"wrote {len(names)} series x {args.horizon} steps to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        from .plots import fan_chart

        truths = None
        if args.truth:
            t = read_csv(args.truth)
            truths = [t.get(n) for n in names]
        fan_chart(
            args.plot,
            contexts,
            f.quantiles,
            f.quantile_levels,
            f.median,
            truths=truths,
            names=names,
            title=f"{lm.source}: {args.samples} sample paths",
        )
        print(f"wrote fan chart to {args.plot}", file=sys.stderr)
    if args.heatmap:
        _forecast_heatmap(lm, f, contexts[0], args.heatmap, names[0])
    return 0


def _forecast_csv(f: Any, times: list[Any], horizon: int) -> str:
    """Long CSV: series, step[, ds], mean, median, q0.1..q0.9 (ds when the input had dates)."""
    from .frames import future_times

    future = [future_times(t, horizon) for t in times]
    dated = any(t is not None for t in future)
    header = ["series", "step"] + (["ds"] if dated else [])
    header += ["mean", "median"] + [f"q{q:g}" for q in f.quantile_levels]
    q, med, mean = f.quantiles, f.median, f.mean
    lines = [",".join(header)]
    for i, name in enumerate(f.names):
        for h in range(horizon):
            cells = [mean[i, h], med[i, h], *q[i, :, h]]
            lead = [_csv_cell(name), str(h + 1)]
            if dated:
                lead.append("" if future[i] is None else _time_cell(future[i][h]))
            lines.append(",".join(lead + [f"{c:.6g}" for c in cells]))
    return "\n".join(lines) + "\n"


def _time_cell(value: Any) -> str:
    if isinstance(value, np.datetime64):
        text = str(np.datetime_as_string(value, unit="s"))
        return text[:10] if text.endswith("T00:00:00") else text.replace("T", " ")
    return str(value)


def _forecast_heatmap(lm: Any, f: Any, context: np.ndarray, path: str, name: str) -> None:
    import torch

    from .analysis import step_distributions
    from .plots import distribution_heatmap

    tok = lm.tokenizer
    window = lm.model.config.context_length
    prompt = tok.values_to_ids(
        torch.tensor(context[-window:])[None], torch.tensor([f.scale[0]]), torch.tensor([f.loc[0]])
    )[0]
    path_ids = torch.cat([prompt, torch.as_tensor(f.ids[0, 0])])
    probs = step_distributions(lm.model, path_ids, len(prompt)).numpy()[:, tok.n_special :]
    distribution_heatmap(
        path,
        probs,
        tok.centers().numpy() * f.scale[0] + f.loc[0],
        path_values=f.samples[0, 0],
        title=f"{name}: next-token distribution at each step of one sampled path",
    )
    print(f"wrote heat map to {path}", file=sys.stderr)


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def cmd_next(args: argparse.Namespace) -> int:
    import torch

    from .analysis import next_token_probs
    from .lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    table = lm.next_token_distribution(args.prompt, top_k=args.top)
    if args.json:
        print(json.dumps(table.to_json()))
    else:
        for note in table.notes:
            print(f"note: {note}", file=sys.stderr)
        print(f"p(next token | {args.prompt!r}), {len(table.prompt_ids)} prompt tokens")
        print(table.format())
    if args.plot:
        from .plots import next_token_bars

        probs = next_token_probs(lm.model, torch.tensor(table.prompt_ids)).numpy()
        affine = lm.affine_of(args.prompt)
        if lm.is_signal:
            tok = lm.tokenizer
            first = tok.n_special  # type: ignore[union-attr]
            labels = [lm.token_str(i, *affine) for i in range(first, len(probs))]
            next_token_bars(
                args.plot,
                probs[first:],
                labels,
                xlabel="next value (bin centre)",
                title=f"p(next value | prompt), {len(table.prompt_ids)} prompt values",
            )
        else:
            top = np.argsort(-probs)[:40]
            next_token_bars(
                args.plot,
                probs[top],
                [lm.token_str(int(i)) for i in top],
                title=f"p(next token | {args.prompt!r}), 40 most probable",
            )
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from .generate import stream
    from .lm import load
    from .tokenizers import SignalTokenizer

    lm = load(args.model, allow_pickle=args.allow_pickle)
    ids = lm.encode(args.prompt)
    kwargs: dict[str, Any] = dict(
        greedy=args.greedy,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        last_token_only=args.last_token_only,
    )
    if isinstance(lm.tokenizer, SignalTokenizer):
        kwargs["suppress_ids"] = lm.tokenizer.special_ids
    affine = lm.affine_of(args.prompt)
    new: list[int] = []
    shown = ""
    live = not args.json
    if live and not lm.is_signal:
        sys.stdout.write(args.prompt)
    for tok in stream(lm.model, torch.tensor([ids]), args.max_new_tokens, **kwargs):
        new.append(int(tok[0]))
        if live:
            if lm.is_signal:
                sys.stdout.write(("" if len(new) == 1 else ",") + lm.token_str(new[-1], *affine))
            else:
                text = lm.decode(new)
                sys.stdout.write(text[len(shown) :])  # BPE pieces can complete a character later
                shown = text
            sys.stdout.flush()
    if live:
        sys.stdout.write("\n")
        return 0
    out: dict[str, Any] = {"prompt_ids": ids, "ids": new}
    if lm.is_signal:
        values = [float(v) for v in lm.decode(new, *affine)]
        out["values"] = values
        out["text"] = ",".join(f"{v:.6g}" for v in values)
    else:
        out["text"] = lm.decode(new)
    print(json.dumps(out))
    return 0


def cmd_sample_frequencies(args: argparse.Namespace) -> int:
    import torch

    from .analysis import next_token_probs, sample_frequencies
    from .lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    ids = lm.encode(args.prompt)
    affine = lm.affine_of(args.prompt)
    probs = next_token_probs(lm.model, torch.tensor(ids))
    table = sample_frequencies(
        probs, args.n, lambda i: lm.token_str(i, *affine), args.top, args.seed
    )
    if args.json:
        print(json.dumps({"prompt_ids": ids, **table.to_json()}))
    else:
        print(f"next token after {args.prompt!r}: {args.n} draws")
        print(table.format())
    return 0


def cmd_export_hf(args: argparse.Namespace) -> int:
    from .hf import save_hf_gpt2
    from .lm import load

    lm = load(args.model, allow_pickle=args.allow_pickle)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise CLIError(
            f"{out} exists and is not empty; choose a new directory (nothing was overwritten)"
        )
    if lm.tokenizer is None:
        raise CLIError(
            f"{args.model} has no tokenizer files; there is no tokenizer to export with it"
        )
    save_hf_gpt2(lm.model, lm.tokenizer, out)
    print(f"wrote a Hugging Face GPT-2 directory to {out}", file=sys.stderr)
    return 0


def cmd_infill(args: argparse.Namespace) -> int:
    from .infill import infill
    from .lm import load
    from .signals import read_csv, write_csv

    out = Path(args.output)
    if out.resolve() == Path(args.input).resolve():
        raise CLIError("--output must differ from --input (the input file is never overwritten)")
    lm = load(args.model, allow_pickle=args.allow_pickle)
    series = read_csv(args.input)
    filled = {name: infill(lm, v, sample=args.sample, seed=args.seed) for name, v in series.items()}
    write_csv(out, filled)
    n = sum(int(np.isnan(v).sum()) for v in series.values())
    print(f"filled {n} empty cells in {len(series)} series -> {out}", file=sys.stderr)
    if args.plot:
        from .plots import infill_chart

        infill_chart(args.plot, series, filled)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, steps=args.steps, seed=args.seed, progress=not args.no_progress)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import shlex

    from .baselines import BASELINES, ModelForecaster, baseline
    from .evaluate import run, suite_tasks, write_report
    from .lm import load

    keys = [k.strip() for k in args.baselines.split(",") if k.strip() and k.strip() != "none"]
    unknown = [k for k in keys if k not in BASELINES]
    if unknown:
        raise CLIError(f"--baselines: unknown {unknown}; choose from {', '.join(BASELINES)}, none")
    if "seasonal" not in keys:
        keys.insert(0, "seasonal")  # the reference of the relative scores
    forecasters: list[Any] = []
    for path in args.model:
        lm = load(path, allow_pickle=args.allow_pickle)
        if not lm.is_signal or not lm.model.config.causal:
            raise CLIError(
                f"{path}: evaluate needs a causal signal model (a GPT trained on series)"
            )
        forecasters.append(ModelForecaster(lm, name=Path(path).name or str(path)))
    for key in keys:
        b = baseline(key)
        if key in ("ets", "arima"):
            try:
                import statsforecast  # noqa: F401
            except ImportError:
                print(
                    f"nexttoken: note: skipping {b.name}: pip install 'nexttoken[baselines]' to include it",
                    file=sys.stderr,
                )
                continue
        forecasters.append(b)
    tasks = suite_tasks(args.suite, n_series=args.series)
    print(
        f"evaluating {len(forecasters)} forecasters on {len(tasks)} datasets "
        f"({sum(len(t.contexts) for t in tasks)} forecasts each)",
        file=sys.stderr,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # contexts longer than a model's window are cropped
        result = run(
            forecasters,
            tasks,
            num_samples=args.samples,
            seed=args.seed,
            on_progress=lambda name: print(f"  {name}", file=sys.stderr),
        )
    command = "nexttoken " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    report = write_report(result, args.out, command=command, plots=not args.no_plots)
    print(f"wrote {report} and {Path(args.out) / 'results.csv'}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .lm import pretrained_models

    rows = []
    for name, path in pretrained_models().items():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        m = config["model"]
        from safetensors import safe_open

        with safe_open(str(path / "model.safetensors"), framework="pt") as fh:
            n = sum(int(np.prod(fh.get_slice(k).get_shape())) for k in fh.keys())
        d, L, V = m["n_embd"], m["n_layer"], m["vocab_size"]
        rows.append(
            {
                "name": name,
                "parameters": n,
                "context": m["context_length"],
                "layers": L,
                "width": d,
                "tokens": V,
                "trained_steps": config.get("step"),
                "description": config.get("description", ""),
                "path": str(path),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no pretrained models ship with this installation")
        return 0
    print(f"{'name':22s} {'params':>8s} {'context':>8s}  description")
    for r in rows:
        print(
            f"{r['name']:22s} {r['parameters'] / 1e6:7.2f}M {r['context']:8d}  {r['description']}"
        )
    return 0


COMMANDS = {
    "demo": cmd_demo,
    "train": cmd_train,
    "forecast": cmd_forecast,
    "next": cmd_next,
    "generate": cmd_generate,
    "sample-frequencies": cmd_sample_frequencies,
    "export-hf": cmd_export_hf,
    "infill": cmd_infill,
    "evaluate": cmd_evaluate,
    "models": cmd_models,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from .checkpoint import CheckpointError

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
