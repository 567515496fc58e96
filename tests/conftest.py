from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import settings

from nexttoken import GPT, GPTConfig, SignalTokenizer, TrainConfig, train
from nexttoken.data import SeriesWindows

# CI draws the same property-test examples every run (a landing never hangs on a new random
# example); run locally without CI set to explore fresh ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# `nexttoken train` flags for a tiny oscillator model that trains in a second.
TINY_TRAIN_FLAGS = (
    "--data oscillators --n-layer 1 --n-embd 16 --n-head 2 --context 16 --bins 16 "
    "--n-series 8 --series-length 40 --eval-batches 1 --no-progress"
).split()


def tiny_config(**overrides) -> GPTConfig:
    base = dict(vocab_size=35, context_length=32, n_layer=2, n_head=2, n_embd=16)
    base.update(overrides)
    return GPTConfig(**base)


@pytest.fixture
def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(tiny_config()).eval()


@pytest.fixture(scope="session")
def signal_checkpoint(tmp_path_factory) -> str:
    """A tiny signal GPT trained for a few steps on sines, saved as a checkpoint directory."""
    out = tmp_path_factory.mktemp("ckpt") / "model"
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    t = np.arange(200)
    series = np.stack([np.sin(2 * np.pi * t / p) for p in (8, 10, 12, 16)])
    data = SeriesWindows(series, tok, 24)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=24, n_layer=1, n_head=2, n_embd=16)
    )
    train(
        model,
        tok,
        data,
        data,
        TrainConfig(
            steps=4, batch_size=4, eval_every=2, eval_batches=1, save_every=4, progress=False
        ),
        out,
    )
    return str(out)


def mean_id_generate(model, ids, max_new_tokens, **_):
    """A stand-in for ``generate``: every row goes on at the mean of the ids it sees, so that its
    forecast leans back to the level of its whole view, as the trained models' largely do."""
    level = ids.double().mean(dim=1, keepdim=True).round().long()
    return torch.cat([ids, level.expand(-1, max_new_tokens)], dim=1)
