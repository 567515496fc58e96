"""Fine-tuning (`train --init MODEL`): what it keeps, what it holds out, how it stops and resumes."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nexttoken import GPT, GPTConfig, SignalTokenizer, TrainConfig, train
from nexttoken.cli import main
from nexttoken.data import IGNORE, SeriesWindows
from nexttoken.finetune import MixedBatches, TailWindows, extend_context, finetune_data
from nexttoken.lm import pretrained_models


def _write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    length = max(len(v) for v in columns.values())
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(columns))
        for t in range(length):
            w.writerow(
                ["" if t >= len(v) or np.isnan(v[t]) else f"{v[t]:.6g}" for v in columns.values()]
            )
    return path


def _seasonal(n: int, period: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 3 * np.sin(2 * np.pi * t / period) + 0.05 * t + 0.3 * rng.standard_normal(n)


def _fast(*extra: str) -> list[str]:
    return ["--steps", "6", "--eval-every", "2", "--eval-batches", "1", "--batch-size", "4",
            "--save-every", "3", "--no-progress", *extra]  # fmt: skip


def test_finetuning_a_shipped_model_changes_weights_and_keeps_its_tokenizer(tmp_path, capsys):
    data = _write_csv(tmp_path / "in.csv", {f"s{i}": _seasonal(120, 12, i) for i in range(3)})
    out = tmp_path / "ft"
    main(["train", "--data", str(data), "--init", "signals-small", "--out", str(out),
          "--holdout", "12", "--patience", "0", "--season", "12", *_fast()])  # fmt: skip
    shipped = pretrained_models()["signals-small"]
    assert (out / "tokenizer.json").read_bytes() == (shipped / "tokenizer.json").read_bytes()
    before = load_file(shipped / "model.safetensors")
    after = load_file(out / "model.safetensors")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    config = json.loads((out / "config.json").read_text())
    assert config["init"]["from"] == "signals-small"
    assert config["finetune"]["holdout"] == 12 and config["finetune"]["series"] == 3
    assert config["model"] == json.loads((shipped / "config.json").read_text())["model"]
    assert config["finetune"]["season"] == [12] and config["finetune"]["deseasoned_windows"] > 0
    err = capsys.readouterr().err
    assert "fine-tuning signals-small" in err and "season 12 taken out of" in err


def test_a_resumed_finetune_equals_an_uninterrupted_one(tmp_path, signal_checkpoint, monkeypatch):
    data = _write_csv(tmp_path / "in.csv", {f"s{i}": _seasonal(90, 8, i) for i in range(3)})
    flags = ["--data", str(data), "--init", signal_checkpoint, "--holdout", "8",
             "--mix-synthetic", "0.25", "--patience", "5", *_fast()]  # fmt: skip
    main(["train", "--out", str(tmp_path / "once"), *flags])

    T = importlib.import_module("nexttoken.train")  # the package re-exports train()

    real = T.train

    def killed_at_step_4(*args, **kwargs):
        def kill(record):
            if record["step"] == 4:
                raise KeyboardInterrupt

        return real(*args, **{**kwargs, "on_log": kill})

    monkeypatch.setattr(T, "train", killed_at_step_4)
    assert main(["train", "--out", str(tmp_path / "twice"), *flags]) == 130  # interrupted
    monkeypatch.setattr(T, "train", real)
    main(["train", "--out", str(tmp_path / "twice"), "--resume", *flags])
    for name in ("model.safetensors", "best.safetensors"):
        a = load_file(tmp_path / "once" / name)
        b = load_file(tmp_path / "twice" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    once = json.loads((tmp_path / "once" / "config.json").read_text())
    twice = json.loads((tmp_path / "twice" / "config.json").read_text())
    assert once["early_stopping"] == twice["early_stopping"]


def test_holdout_steps_are_never_trained_on_nor_scored():
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    series = [_seasonal(100, 10, i) for i in range(2)] + [_seasonal(60, 10, 9)]
    for x in series:
        x[-10:] = 1e6  # what the holdout hides
    prepared = finetune_data(series, ["a", "b", "c"], tok, 24, holdout=10, val_steps=6)
    train_values = prepared.train.values.numpy()
    assert np.nanmax(train_values) < 1e3
    assert np.nanmax(prepared.val.values.numpy()) < 1e3
    # and the tail that early stopping scores is not trained on either
    tails = {round(float(v), 6) for x in series for v in x[-16:-10]}
    assert not tails & {round(float(v), 6) for v in train_values[~np.isnan(train_values)]}
    assert prepared.info["holdout"] == 10 and prepared.info["val_steps"] == 6


def test_a_strong_season_is_taken_out_of_each_window_as_a_forecast_takes_it_out():
    from nexttoken.forecast import _continued, _profile

    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    t = np.arange(400)
    rng = np.random.default_rng(0)
    shape = np.array([0, 0, 1, 5, 9, 6, 2, 0, 0, 0, 0, 0], dtype=float)  # a sharp daily peak
    seasonal = 20 + shape[t % 12] + 0.2 * rng.standard_normal(400)
    noise = 20 + rng.standard_normal(400)
    series, names = [seasonal, noise], ["seasonal", "noise"]
    plain = finetune_data(series, names, tok, 96, holdout=12, val_steps=8)
    tuned = finetune_data(series, names, tok, 96, holdout=12, val_steps=8, season=12)
    assert tuned.info["season"] == [12] and plain.info["season"] == []
    before, after = plain.train.values.numpy(), tuned.train.values.numpy()
    n_seasonal = len(before) // 2  # the two series give as many windows each
    # each seasonal window lost its own profile: what is left varies like the noise added
    for row, new in zip(before[:n_seasonal], after[:n_seasonal]):
        np.testing.assert_allclose(new, row - _continued(_profile(row, (12,)), 0, len(row)))
        assert np.std(new) < 0.5 < 2 < np.std(row)
    # a noise window keeps its values unless its own steps pass the strength screen by chance
    changed = [not np.array_equal(a, b) for a, b in zip(after[n_seasonal:], before[n_seasonal:])]
    screened = [_profile(row, (12,)) is not None for row in before[n_seasonal:]]
    assert changed == screened and sum(changed) < 0.1 * n_seasonal
    assert tuned.info["deseasoned_windows"] == n_seasonal + sum(changed)
    # a held-out tail's profile is read from the steps before it, never from the tail
    window, start = plain.val.values[0].numpy(), int(plain.val.tail_start[0])
    expected = window - _continued(_profile(window[:start], (12,)), 0, len(window))
    np.testing.assert_allclose(tuned.val.values[0].numpy(), expected)
    with pytest.raises(ValueError, match="season must be a whole number"):
        finetune_data(series, names, tok, 48, season=[12.5])


def test_tail_windows_score_only_the_tail_and_mixing_keeps_its_share():
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    windows = np.stack([np.sin(np.arange(25) / 3.0) for _ in range(4)])
    tails = TailWindows(windows, np.array([20, 20, 18, 18]), tok)
    x, y = tails.batch(8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 24)
    scored = (y != IGNORE).sum(dim=1)
    assert set(scored.tolist()) <= {5, 7} and (y[:, :17] == IGNORE).all()
    other = SeriesWindows(np.ones((2, 40)), tok, 24)
    mixed = MixedBatches(SeriesWindows(windows, tok, 24), other, 0.25)
    xb, _ = mixed.batch(8, torch.Generator().manual_seed(0))
    assert xb.shape == (8, 24)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        MixedBatches(other, other, 1.0)


def test_early_stopping_keeps_the_better_weights(tmp_path):
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    t = np.arange(200)
    data = SeriesWindows(np.stack([np.sin(2 * np.pi * t / p) for p in (8, 12)]), tok, 24)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=24, n_layer=1, n_head=2, n_embd=16)
    )
    start = {k: v.clone() for k, v in model.state_dict().items()}
    # a learning rate that wrecks the model: no evaluation beats the starting weights
    config = TrainConfig(steps=40, batch_size=8, lr=50.0, warmup_steps=0, eval_every=2,
                         eval_batches=2, save_every=40, progress=False, patience=2)  # fmt: skip
    result = train(model, tok, data, data, config, tmp_path / "o")
    assert result.stopped_early and result.step == 4 and result.best_step == 0
    saved = load_file(tmp_path / "o" / "model.safetensors")
    assert all(torch.equal(saved[k], start[k]) for k in saved)
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="stopped early"):
        train(model, tok, data, data, TrainConfig(**{**config.to_dict(), "steps": 80}),
              tmp_path / "o", resume=True)  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-embd", "32"], "--n-embd: --init"),
        (["--bins", "64"], "--bins: --init"),
        (["--init", "no/such/model"], "--init no/such/model"),
        (["--holdout", "110"], "'s1' keeps"),
    ],
)
def test_bad_finetunes_get_clear_errors(tmp_path, capsys, signal_checkpoint, extra, message):
    data = _write_csv(
        tmp_path / "in.csv", {"s0": _seasonal(120, 12, 0), "s1": _seasonal(112, 12, 1)}
    )
    init = [] if "--init" in extra else ["--init", signal_checkpoint]
    code = main(
        ["train", "--data", str(data), "--out", str(tmp_path / "o"), *init, *extra, *_fast()]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_all_missing_series_and_flags_without_init_are_refused(tmp_path, capsys, signal_checkpoint):
    data = _write_csv(
        tmp_path / "in.csv", {"ok": _seasonal(80, 8, 0), "empty": np.full(80, np.nan)}
    )
    assert main(["train", "--data", str(data), "--init", signal_checkpoint, "--out",
                 str(tmp_path / "o"), *_fast()]) == 2  # fmt: skip
    assert "'empty' has no values (all missing)" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "p"), "--holdout", "4",
                 *_fast()]) == 2  # fmt: skip
    assert "--holdout is for fine-tuning" in capsys.readouterr().err
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "p"), "--season", "8",
                 *_fast()]) == 2  # fmt: skip
    assert "--season is for fine-tuning" in capsys.readouterr().err
    config = tmp_path / "c.json"
    config.write_text('{"n_layer": 3}')
    assert main(["train", "--data", str(data), "--init", signal_checkpoint, "--config",
                 str(config), "--out", str(tmp_path / "q"), *_fast()]) == 2  # fmt: skip
    assert "'n_layer' in --config" in capsys.readouterr().err


@pytest.mark.parametrize("positions", ["learned", "rope", "sinusoidal"])
def test_a_grown_context_keeps_what_the_model_did_within_its_old_window(positions):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=40, context_length=16, n_layer=2, n_head=2, n_embd=16,
                       positions=positions)  # fmt: skip
    model = GPT(config).eval()
    grown = extend_context(model, 40).eval()
    assert grown.config.context_length == 40 and model.config.context_length == 16
    ids = torch.randint(0, 40, (3, 16))
    with torch.no_grad():
        torch.testing.assert_close(grown(ids), model(ids))
        assert grown(torch.randint(0, 40, (2, 40))).shape == (2, 40, 40)
    if positions == "learned":
        old = model.transformer.wpe.weight
        new = grown.transformer.wpe.weight
        assert torch.equal(new[:16], old) and torch.equal(new[16:32], old)
        assert torch.equal(new[32:], old[:8])
    assert extend_context(model, 16) is model
    with pytest.raises(ValueError, match="can grow .* not shrink"):
        extend_context(model, 8)


def test_init_with_a_longer_context_trains_and_resumes_with_it(tmp_path, capsys, signal_checkpoint):
    data = _write_csv(tmp_path / "in.csv", {f"s{i}": _seasonal(200, 12, i) for i in range(3)})
    out = tmp_path / "o"
    args = ["train", "--data", str(data), "--init", signal_checkpoint, "--out", str(out),
            "--patience", "0"]  # fmt: skip
    assert main([*args, "--context", "48", *_fast()]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["context_length"] == 48
    assert load_file(out / "model.safetensors")["transformer.wpe.weight"].shape[0] == 48
    capsys.readouterr()
    assert main([*args, "--context", "64", "--resume", *_fast("--steps", "10")]) == 2
    assert "trained with a context of 48" in capsys.readouterr().err
    assert main([*args, "--context", "12", "--out", str(tmp_path / "p"), *_fast()]) == 2
    assert "not shrink" in capsys.readouterr().err
