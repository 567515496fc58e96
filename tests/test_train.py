import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nexttoken import GPT, GPTConfig, SignalTokenizer, TrainConfig, load, train
from nexttoken.checkpoint import CheckpointError
from nexttoken.data import IGNORE, SeriesWindows, TokenWindows
from nexttoken.train import lr_at


def _setup(dropout=0.1):
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    t = np.arange(300)
    series = np.stack([np.sin(2 * np.pi * t / p + p) for p in (7, 9, 13, 20)])
    data = SeriesWindows(series, tok, 24)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=tok.vocab_size,
            context_length=24,
            n_layer=1,
            n_head=2,
            n_embd=16,
            dropout=dropout,
        )
    )
    return tok, data, model


def _config(steps, **kw):
    base = dict(
        steps=steps,
        batch_size=4,
        lr=3e-3,
        eval_every=3,
        eval_batches=1,
        save_every=3,
        progress=False,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_resume_reaches_the_same_weights_as_one_run(tmp_path):
    tok, data, model = _setup()
    train(model, tok, data, data, _config(12), tmp_path / "once")

    tok, data, model = _setup()

    def kill(record):
        if record["step"] == 9:
            raise KeyboardInterrupt

    # A run killed at step 9, after its last checkpoint at step 6 and a metrics line for step 9 ...
    with pytest.raises(KeyboardInterrupt):
        train(model, tok, data, data, _config(12, save_every=6), tmp_path / "twice", on_log=kill)
    assert load(tmp_path / "twice") is not None  # the last complete checkpoint loads
    # ... resumed in a fresh process-like setting (new model object, new data generator).
    tok, data, model = _setup()
    train(model, tok, data, data, _config(12, save_every=6), tmp_path / "twice", resume=True)

    a = load_file(tmp_path / "once" / "model.safetensors")
    b = load_file(tmp_path / "twice" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "twice" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 12


def test_refuses_to_overwrite_and_to_resume_nothing(tmp_path):
    tok, data, model = _setup()
    train(model, tok, data, data, _config(3), tmp_path / "run")
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        train(model, tok, data, data, _config(3), tmp_path / "run")
    with pytest.raises(CheckpointError, match="already at step 3 of 3"):
        train(model, tok, data, data, _config(3), tmp_path / "run", resume=True)
    with pytest.raises(CheckpointError, match="no training_state"):
        train(model, tok, data, data, _config(3), tmp_path / "empty", resume=True)


def test_a_tiny_model_overfits_a_short_signal(tmp_path):
    tok = SignalTokenizer(n_bins=16, low=-2.0, high=2.0)
    series = np.sin(2 * np.pi * np.arange(64) / 8)[None]
    data = SeriesWindows(series, tok, 16)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=16, n_layer=2, n_head=2, n_embd=32)
    )
    result = train(
        model, tok, data, data, _config(150, lr=1e-2, eval_every=50, save_every=150), tmp_path / "o"
    )
    # The first target of a window is ambiguous (rising or falling?), so the loss floor is above 0.
    assert result.train_loss < 0.2, result
    lm = load(tmp_path / "o")
    out = lm.generate(series[0, :16].tolist(), 16, greedy=True)
    np.testing.assert_allclose(out["values"], series[0, 16:32], atol=0.15)


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path):
    tok, data, model = _setup()
    train(model, tok, data, data, _config(3), tmp_path / "run")
    weights = tmp_path / "run" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        load(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match="not a nexttoken checkpoint"):
        load(tmp_path / "run")
    with pytest.raises(CheckpointError, match="no such model directory"):
        load(tmp_path / "nowhere")


def test_tokenizer_that_does_not_match_the_model_is_refused(tmp_path):
    tok, data, model = _setup()
    train(model, tok, data, data, _config(3), tmp_path / "run")
    (tmp_path / "run" / "tokenizer.json").write_text(SignalTokenizer(n_bins=99).to_json())
    with pytest.raises(CheckpointError, match="different models"):
        load(tmp_path / "run")


def test_lr_schedule_warmup_then_cosine():
    c = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert math.isclose(lr_at(0, c), 0.1) and math.isclose(lr_at(9, c), 1.0)
    assert math.isclose(lr_at(100, c), 0.1)
    values = [lr_at(s, c) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_windows_shift_targets_by_one_and_ignore_missing():
    tok = SignalTokenizer(n_bins=8, low=-1, high=1)
    series = np.array([[0.1, 0.5, np.nan, -0.5, 0.9, 0.2]])
    x, y = SeriesWindows(series, tok, 5).batch(2, torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 1:][y[:, :-1] != IGNORE], y[:, :-1][y[:, :-1] != IGNORE])
    assert (y[:, 1] == IGNORE).all()  # the target after 0.5 is the missing value
    x, y = TokenWindows(torch.arange(50), 8).batch(3, torch.Generator().manual_seed(0))
    assert torch.equal(y, x + 1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_bf16_autocast_and_compile_train_like_fp32_eager(tmp_path):
    # The options meant for GPUs run on a CPU too, so CI exercises them: the same three steps in
    # bf16 autocast and through torch.compile, against plain fp32.
    from torch._dynamo.utils import counters

    graphs_before = counters["stats"]["unique_graphs"]
    runs = {}
    for name, kw in (("fp32", {}), ("bf16", {"precision": "bf16"}), ("compile", {"compile": True})):
        tok, data, model = _setup(dropout=0.0)
        logs = []
        cfg = _config(3, eval_every=1, log_every=1, **kw)
        train(model, tok, data, data, cfg, tmp_path / name, on_log=logs.append)
        runs[name] = (
            torch.cat([p.detach().flatten() for p in model.parameters()]),
            [r["loss"] for r in logs if "loss" in r],
        )
    weights, losses = runs["fp32"]
    assert losses[-1] < losses[0]
    # compiled kernels round differently; the run is the same to a few ulps
    torch.testing.assert_close(runs["compile"][0], weights, rtol=1e-4, atol=1e-5)
    assert runs["compile"][1] == pytest.approx(losses, rel=1e-5)
    assert counters["stats"]["unique_graphs"] > graphs_before  # it did compile
    # bf16 matmuls: close to fp32, and not the same numbers (autocast was on)
    assert runs["bf16"][1] == pytest.approx(losses, abs=0.02)
    assert runs["bf16"][1] != losses
