"""``nexttoken train``: train a GPT or masked LM on oscillators, the synthetic corpus, a CSV or text."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..recipe import (
    ARCHITECTURE_KEYS,
    TRAIN_DEFAULTS,
    configs,
    data_kind,
    datasets,
    signal_tokenizer,
)
from .common import CLIError, positive_int, season_from_dates, seasons_arg

NAME = "train"


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
    _add_finetune(p)
    _add_optimisation(p)
    _add_model(p)
    _add_signals(p)
    _add_text(p)
    return p


def _add_finetune(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "fine-tuning (--init)",
        "Start from a trained signal model and train on --data (a CSV of your series, as "
        "`nexttoken forecast --input` reads it; or synthetic/oscillators to go on pre-training). "
        "The model's architecture and tokenizer are kept: flags that would change them are "
        "refused. Defaults change to suit fine-tuning: --steps 300, --lr 2e-4, --warmup-steps 20, "
        "--eval-every 20, --patience 4 (flags and --config still win).",
    )
    g.add_argument(
        "--init",
        metavar="MODEL",
        help="the model to start from: a shipped name (see `nexttoken models`) or a checkpoint "
        "directory",
    )
    g.add_argument(
        "--holdout",
        type=int,
        default=None,
        metavar="STEPS",
        help="CSV: never train on (or stop early by) the last STEPS of each series; give what a "
        "backtest holds out, (windows - 1) x step + horizon, to backtest the result honestly "
        "(default 0)",
    )
    g.add_argument(
        "--val-steps",
        type=positive_int,
        default=None,
        help="CSV: the held-out tail of each series (before --holdout) that early stopping "
        "scores (default a tenth of the median length, 4 to context/4)",
    )
    g.add_argument(
        "--season",
        type=seasons_arg,
        default=None,
        help="CSV: the series' season in steps, or several comma-separated, main first (12 for "
        "monthly, 24,168 for hourly): each training window whose season is strong has its "
        "seasonal profile taken out, as `forecast --season` takes it out of a context, so the "
        "model is tuned on what it forecasts (default: the calendar's season when the CSV has "
        "dates; 1 for none)",
    )
    g.add_argument(
        "--mix-synthetic",
        type=float,
        default=None,
        metavar="P",
        help="CSV: share of each batch drawn from the synthetic corpus so the model keeps what "
        "it knew (0 to <1; default 0)",
    )


def _add_optimisation(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimisation")
    options: list[tuple[str, Any, str]] = [
        ("--steps", positive_int, "optimizer steps"),
        ("--batch-size", positive_int, "sequences per step"),
        ("--lr", float, "peak learning rate"),
        ("--min-lr-ratio", float, "final learning rate as a fraction of the peak"),
        ("--warmup-steps", int, "linear warmup steps (-1: 5%% of steps)"),
        ("--weight-decay", float, "AdamW weight decay on matrices"),
        ("--grad-clip", float, "clip the gradient norm (0: off)"),
        ("--eval-every", positive_int, "steps between held-out evaluations"),
        ("--eval-batches", positive_int, "batches per evaluation"),
        ("--save-every", positive_int, "steps between checkpoints"),
        ("--seed", int, "seed of initialisation and data"),
        (
            "--device",
            str,
            "cpu, cuda, cuda:1, mps ... (under torchrun, cuda = one GPU per process)",
        ),
        ("--grad-accum-steps", positive_int, "split each batch into N micro-batches"),
        (
            "--patience",
            int,
            "early stopping: stop after N evaluations without a lower held-out loss and keep "
            "the best weights (0: off; default 0, 4 with --init)",
        ),
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


def _add_model(p: argparse.ArgumentParser) -> None:
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
        type=positive_int,
        default=None,
        help="mlm: hide spans of 1..N tokens instead of single tokens (default 1)",
    )
    g.add_argument(
        "--mask-mode",
        choices=["bert", "mask"],
        default=None,
        help="mlm: bert = 80%% MASK / 10%% random / 10%% kept (default); mask = always MASK",
    )
    options: list[tuple[str, Any, str]] = [
        ("--context", positive_int, "context window in tokens (with --init: may grow the model's)"),
        ("--n-layer", positive_int, "transformer blocks"),
        ("--n-head", positive_int, "attention heads"),
        ("--n-embd", positive_int, "width"),
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
        type=positive_int,
        default=None,
        help="width at which muP equals standard (tune --lr there; default: --n-embd)",
    )


def _add_signals(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("signals (oscillators, synthetic, CSV)")
    g.add_argument("--bins", type=positive_int, default=None, help="number of value bins")
    g.add_argument(
        "--scaling",
        choices=["mean", "standard"],
        default=None,
        help="how each window is scaled before binning: standard (minus the mean, over the std; "
        "default, survives levels) or mean (over the mean |value|, as Chronos)",
    )
    g.add_argument(
        "--stats-prefix",
        type=float,
        default=None,
        help="synthetic: scale each window by the statistics of its first k steps, k drawn from "
        "this share of the window up to all of it (default 0.5; 1 = the whole window; from 0.75 "
        "the model learned to fall back to the middle instead of carrying a trend on)",
    )
    g.add_argument(
        "--short-fraction",
        type=float,
        default=None,
        help="synthetic: share of windows cut to a random shorter length (default 0.25)",
    )
    g.add_argument(
        "--sources",
        default=None,
        help="shares of the synthetic corpus, NAME=SHARE comma-separated, from kernelsynth, "
        "structured, oscillators, mixup, sharp, spiky, floored, walks, weekly, regimes (default: "
        "all ten equally; see nexttoken.synthetic and nexttoken.seasonal)",
    )
    g.add_argument(
        "--low", type=float, default=None, help="lowest bin centre (in units of the scale)"
    )
    g.add_argument("--high", type=float, default=None, help="highest bin centre")
    g.add_argument("--families", default=None, help="comma-separated oscillator families")
    g.add_argument(
        "--n-series",
        type=positive_int,
        default=None,
        help="series to generate (oscillators, synthetic)",
    )
    g.add_argument(
        "--series-length", type=positive_int, default=None, help="steps per generated oscillator"
    )
    g.add_argument(
        "--noise",
        default=None,
        help="relative Gaussian noise added to the generated series (oscillators, synthetic); several levels (e.g. 0,0.1) split the series among them",
    )


def _add_text(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("text (.txt)")
    g.add_argument(
        "--tokenizer",
        choices=["char", "bpe"],
        default=None,
        help="char (default) or byte-level bpe",
    )
    g.add_argument(
        "--vocab-size", type=positive_int, default=None, help="BPE vocabulary size to learn"
    )


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    return _settings_and_origins(args)[0]


def _settings_and_origins(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged settings, and for each one the user set, where: ``--flag`` or the file."""
    from ..finetune import FINETUNE_DEFAULTS

    settings = dict(TRAIN_DEFAULTS)
    if getattr(args, "init", None):
        settings.update(FINETUNE_DEFAULTS)
    origins: dict[str, str] = {}
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
        origins.update({k: f"{k!r} in --config {path}" for k in from_file})
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
            origins[key] = "--" + key.replace("_", "-")
    return settings, origins


def run(args: argparse.Namespace) -> int:
    import torch

    from ..model import GPT
    from ..train import Distributed, train

    s, origins = _settings_and_origins(args)
    out = Path(args.out)
    data = str(args.data)
    kind = data_kind(data)
    if args.init:
        return _run_init(args, s, origins, kind, data, out)
    for flag in ("holdout", "val_steps", "season", "mix_synthetic"):
        if getattr(args, flag) is not None:
            raise CLIError(
                f"--{flag.replace('_', '-')} is for fine-tuning: give --init MODEL (the model to "
                "start from) with it"
            )
    if _nothing_to_do(args, out, int(s["steps"])):
        return 0
    text = Path(data).read_text(encoding="utf-8") if kind == "txt" else ""
    # Tokenizer and configs first, so that bad settings fail before any data is made.
    tokenizer = _tokenizer(args, s, kind, text)
    model_config, config = configs(s, tokenizer, progress=not args.no_progress)
    train_data, val_data = datasets(s, kind, data, text, tokenizer, model_config)

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


def _run_init(
    args: argparse.Namespace,
    s: dict[str, Any],
    origins: dict[str, str],
    kind: str,
    data: str,
    out: Path,
) -> int:
    """``train --init MODEL``: fine-tune (CSV) or go on pre-training (synthetic, oscillators)."""
    from ..checkpoint import CheckpointError, read_config
    from ..finetune import FIXED_BY_INIT, extend_context, finetune_data
    from ..frames import read_table
    from ..lm import load
    from ..model import GPT, GPTConfig
    from ..tokenizers import SignalTokenizer, tokenizer_from_json
    from ..train import Distributed, train

    fixed = [origins[k] for k in FIXED_BY_INIT if k in origins]
    if fixed:
        raise CLIError(
            f"{', '.join(fixed)}: --init {args.init} fixes the architecture and tokenizer (they "
            "are the model's); drop the setting, or train a new model without --init"
        )
    if kind == "txt":
        raise CLIError(
            "--init fine-tunes signal models: give --data a CSV of series (or synthetic, "
            "oscillators); text models are trained from scratch"
        )
    if kind != "csv":
        for flag in ("holdout", "val_steps", "season", "mix_synthetic"):
            if getattr(args, flag) is not None:
                raise CLIError(
                    f"--{flag.replace('_', '-')} applies to a CSV of your series; --data {data} "
                    "goes on pre-training on generated series"
                )
    if _nothing_to_do(args, out, int(s["steps"])):
        return 0
    try:
        lm = load(args.init, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise CLIError(f"--init {args.init}: {e}") from None
    if not lm.is_signal or not isinstance(lm.tokenizer, SignalTokenizer):
        raise CLIError(
            f"--init {args.init} is a text model; --init fine-tunes signal models (see "
            "`nexttoken models`)"
        )
    from ..lm import pretrained_models

    where = Path(args.init) if Path(args.init).exists() else pretrained_models().get(args.init)
    init_config = read_config(where) if where and (Path(where) / "config.json").is_file() else {}
    tokenizer: Any = lm.tokenizer
    if args.resume:
        try:
            saved = read_config(out)
        except CheckpointError as e:
            raise CLIError(str(e)) from None
        if saved.get("init", {}).get("from") not in (None, args.init):
            raise CLIError(
                f"--resume: {out} was fine-tuned from {saved['init']['from']}, not {args.init}"
            )
        tokenizer = tokenizer_from_json((out / "tokenizer.json").read_text(encoding="utf-8"))
        model = GPT(GPTConfig.from_dict(saved["model"]))
    else:
        model = lm.model
    if "context" in origins:
        if args.resume and int(s["context"]) != model.config.context_length:
            raise CLIError(
                f"{origins['context']} {s['context']}: {out} was trained with a context of "
                f"{model.config.context_length}; --resume goes on with it (drop the setting)"
            )
        try:
            model = extend_context(model, int(s["context"]))
        except ValueError as e:
            raise CLIError(f"{origins['context']}: {e}") from None
    model_config = model.config
    for key, model_key in ARCHITECTURE_KEYS.items():
        s[key] = getattr(model_config, model_key)
    s.update(bins=tokenizer.n_bins, low=tokenizer.low, high=tokenizer.high)
    s["scaling"] = tokenizer.scaling
    _, config = configs(s, tokenizer, progress=not args.no_progress)
    context = model_config.context_length
    info: dict[str, Any] = {}
    if kind == "csv":
        try:
            table = read_table(data)
            season = args.season
            if season is None:
                season = season_from_dates(table.times)
            prepared = finetune_data(
                table.values,
                table.names,
                tokenizer,
                context,
                holdout=int(args.holdout or 0),
                season=season,
                val_steps=args.val_steps,
                mix_synthetic=float(args.mix_synthetic or 0.0),
                seed=int(s["seed"]),
                short_fraction=float(s["short_fraction"]),
                stats_prefix=float(s["stats_prefix"]),
            )
        except (ValueError, ImportError, FileNotFoundError) as e:
            raise CLIError(f"--data {data}: {e}") from None
        train_data, val_data, info = prepared.train, prepared.val, prepared.info
        for note in info["notes"]:
            print(f"nexttoken: note: {note}", file=sys.stderr)
    else:
        train_data, val_data = datasets(s, kind, data, "", tokenizer, model_config)
    dist_info = Distributed.from_env()
    if dist_info.main:
        what = (
            f"{info['series']} series, {info['windows']} windows, last {info['holdout']} steps "
            f"held out, tails of {info['val_steps']} for early stopping"
            + (
                f", season {','.join(map(str, info['season']))} taken out of "
                f"{info['deseasoned_windows']} windows"
                if info.get("season")
                else ""
            )
            if info
            else data
        )
        print(
            f"fine-tuning {args.init} ({model.num_params() / 1e6:.2f}M parameters) on {what} "
            f"-> {out}",
            file=sys.stderr,
        )
    init = {"from": str(args.init), "trained_steps": init_config.get("train", {}).get("steps")}
    result = train(
        model,
        tokenizer,
        train_data,
        val_data,
        config,
        out,
        resume=args.resume,
        extra_config={"data": {"source": data, "settings": s}, "init": init, "finetune": info},
    )
    if not dist_info.main:
        return 0
    stopped = (
        f"; stopped early, kept step {result.best_step}"
        if result.stopped_early
        else (f"; kept step {result.best_step} (best held-out loss)" if result.best_step else "")
    )
    print(
        f"done: step {result.step}, train loss {result.train_loss:.4f}, held-out loss "
        f"{result.eval_loss:.4f}, {result.seconds:.0f} s{stopped}; checkpoint in {out}"
    )
    return 0


def _nothing_to_do(args: argparse.Namespace, out: Path, steps: int) -> bool:
    """Refuse to overwrite a checkpoint without --resume; True when a resumed run is done."""
    if not args.resume and any(
        (out / f).exists() for f in ("model.safetensors", "training_state.safetensors")
    ):
        raise CLIError(
            f"{out} already holds a checkpoint; pass --resume to continue it, or choose a new --out "
            "(nothing was overwritten)"
        )
    return bool(args.resume and _finished(out, steps))


def _finished(out: Path, steps: int) -> bool:
    """True (after a notice) when the run in ``out`` already reached ``steps``: a requeued job."""
    from ..checkpoint import saved_step

    done = saved_step(out)
    if done is None or done < steps:
        return False
    print(
        f"nexttoken: {out} already reached step {done} of --steps {steps}; nothing to do "
        "(pass a larger --steps to train on)",
        file=sys.stderr,
    )
    return True


def _tokenizer(args: argparse.Namespace, s: dict[str, Any], kind: str, text: str) -> Any:
    """The run's tokenizer: the saved one on --resume (which also restores the architecture
    settings into ``s``), else a new one for the data."""
    from ..checkpoint import read_config
    from ..tokenizers import BPETokenizer, CharTokenizer, SignalTokenizer, tokenizer_from_json

    out = Path(args.out)
    tokenizer: Any
    if args.resume:
        # A run keeps the tokenizer and architecture it started with.
        saved = read_config(out)
        tokenizer = tokenizer_from_json((out / "tokenizer.json").read_text(encoding="utf-8"))
        for key, model_key in ARCHITECTURE_KEYS.items():
            if getattr(args, key, None) is None:
                s[key] = saved["model"].get(model_key, s[key])
    elif kind == "txt":
        bpe = s["tokenizer"] == "bpe"
        tokenizer = (
            BPETokenizer.train([str(args.data)], int(s["vocab_size"]))
            if bpe
            else CharTokenizer.from_text(text)
        )
    else:
        tokenizer = signal_tokenizer(s)
    if s["objective"] == "mlm" and kind == "txt":
        raise CLIError(
            "--objective mlm needs a MASK token: train it on oscillators or a CSV of series"
        )
    if (kind == "txt") == isinstance(tokenizer, SignalTokenizer):
        raise CLIError(
            f"--resume: {out} was trained on other data than {args.data} ({tokenizer.kind} tokenizer)"
        )
    return tokenizer
