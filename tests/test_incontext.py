"""In-context learning made visible: loss by position, the score, the switch, the CLI."""

import json
import math

import numpy as np
import pytest
import torch

from nexttoken import GPT, GPTConfig, SignalTokenizer, TrainConfig, train
from nexttoken.cli import main
from nexttoken.data import IGNORE, SeriesWindows
from nexttoken.incontext import (
    icl_score,
    loss_by_position,
    position_losses,
    read_profiles,
    switch_step,
)
from nexttoken.train import _loss


class Repeats:
    """Windows of a random pattern of 4-8 tokens, repeated: nothing predicts the first period,
    copying predicts everything after it. A model that reads its context gets better with
    position; one that does not stays flat."""

    def __init__(self, vocab=16, T=32):
        self.vocab, self.T = vocab, T

    def batch(self, B, gen):
        period = torch.randint(4, 9, (B,), generator=gen)
        pattern = torch.randint(0, self.vocab, (B, 8), generator=gen)
        seq = pattern.gather(1, torch.arange(self.T + 1)[None] % period[:, None])
        return seq[:, :-1], seq[:, 1:]


def _model(causal=True, seed=0):
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(
            vocab_size=16,
            context_length=32,
            n_layer=2,
            n_head=2,
            n_embd=32,
            objective="gpt" if causal else "mlm",
        )
    )


def test_position_losses_average_to_the_models_own_loss_and_skip_ignored_targets():
    model = _model()
    x, y = Repeats().batch(6, torch.Generator().manual_seed(1))
    y = y.clone()
    y[0, :5] = IGNORE
    y[3, -2:] = IGNORE
    with torch.no_grad():
        per = position_losses(model, x, y)
        mean = float(_loss(model, x, y))
    assert per.shape == (6, 32)
    assert torch.isnan(per[0, :5]).all() and torch.isnan(per[3, -2:]).all()
    assert not torch.isnan(per[1]).any()
    assert float(per[~torch.isnan(per)].mean()) == pytest.approx(mean, rel=1e-5)


def test_icl_score_reads_a_falling_curve_as_negative_and_a_flat_one_as_zero():
    T = 64
    falling = 3.0 - np.log1p(np.arange(T))
    assert icl_score(falling) < -1.0
    assert icl_score(np.full(T, 2.5)) == pytest.approx(0.0)
    assert icl_score(np.linspace(1, 2, T)) > 0
    # positions T/16..T/8 against the last T/4
    curve = np.zeros(T)
    curve[4:8] = 1.0
    assert icl_score(curve) == pytest.approx(-1.0)
    curve[48:] = 0.5
    assert icl_score(curve) == pytest.approx(-0.5)


def test_switch_is_where_the_smoothed_score_gets_halfway_to_its_end():
    scores = [0.0, 0.0, -0.02, 0.0, -0.9, -0.95, -1.0, -1.0, -1.0]
    recs = [
        {"step": 100 * i, "icl_score": v, "eval_loss": 3.0 - i * 0.1} for i, v in enumerate(scores)
    ]
    sw = switch_step(recs)
    # smoothed: 0, -0.007, -0.007, -0.307, -0.617, ...; the end is -1.0: halfway at step 400
    assert (sw.previous_step, sw.step) == (300, 400)
    assert sw.untrained_score == 0.0 and sw.final_score == pytest.approx(-1.0)
    assert "between steps 300 and 400" in sw.describe()
    # one evaluation's dip, undone at the next, does not make a switch on its own
    wobbly = [0.0, 0.0, -0.8, 0.0, 0.0, -0.5, -0.6, -0.6, -0.6]
    recs = [{"step": 100 * i, "icl_score": v} for i, v in enumerate(wobbly)]
    assert switch_step(recs).step == 500
    assert switch_step(recs[:1]) is None
    assert switch_step([{"step": 0, "icl_score": -1.0}, {"step": 10, "icl_score": 0.0}]) is None
    # a wiggle of 0.01 is no switch
    assert switch_step([{"step": 0, "icl_score": 0.0}, {"step": 10, "icl_score": -0.01}]) is None


def test_read_profiles_keeps_the_last_record_of_a_step_and_skips_torn_lines(tmp_path):
    lines = [
        {"step": 0, "eval_loss": 3.0, "icl_score": 0.01},
        {"step": 10, "loss": 2.0},
        {"step": 10, "eval_loss": 2.5, "icl_score": -0.2},
        {"step": 10, "eval_loss": 2.4, "icl_score": -0.3},  # logged again by a resumed run
    ]
    text = "".join(json.dumps(r) + "\n" for r in lines) + '{"step": 20, "icl'
    (tmp_path / "metrics.jsonl").write_text(text)
    recs = read_profiles(tmp_path)
    assert [r["step"] for r in recs] == [0, 10] and recs[1]["icl_score"] == -0.3
    assert read_profiles(tmp_path / "nothing-here") == []


def test_training_on_repeated_patterns_shows_in_context_learning_and_its_switch(tmp_path):
    # A real run: the untrained model's loss is flat in position; after training, tokens late
    # in the window (where the pattern has repeated) are predicted far better than early ones.
    tok = SignalTokenizer(n_bins=13)  # 13 values + PAD, EOS, MASK = 16 ids
    model = _model()
    config = TrainConfig(
        steps=200,
        batch_size=32,
        lr=3e-3,
        eval_every=25,
        eval_batches=2,
        save_every=200,
        progress=False,
    )
    train(model, tok, Repeats(), Repeats(), config, tmp_path / "run")
    recs = read_profiles(tmp_path / "run")
    assert [r["step"] for r in recs] == list(range(0, 201, 25))
    assert abs(recs[0]["icl_score"]) < 0.1  # untrained: position does not matter
    assert recs[-1]["icl_score"] < -0.5
    assert len(recs[-1]["eval_loss_by_position"]) == 32
    sw = switch_step(recs)
    assert sw is not None and 0 < sw.step <= 200 and sw.score_after < sw.score_before
    curve = loss_by_position(model, Repeats(), batches=2, batch_size=32)
    assert curve.shape == (32,) and icl_score(curve) < -0.5
    assert curve[-8:].mean() < curve[:4].mean() - 0.5


def test_masked_models_are_refused():
    model = _model(causal=False)
    with pytest.raises(ValueError, match="causal"):
        loss_by_position(model, Repeats())


def test_in_context_cli_on_a_trained_signal_run(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    t = np.arange(400)
    series = np.stack([np.sin(2 * np.pi * t / p + p) for p in (7, 9, 13, 20, 25, 31)])
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=48, n_layer=1, n_head=2, n_embd=16)
    )
    cfg = TrainConfig(
        steps=20, batch_size=8, eval_every=10, eval_batches=1, save_every=20, progress=False
    )
    data = SeriesWindows(series, tok, 48)
    train(model, tok, data, data, cfg, tmp_path / "run")
    csv = tmp_path / "s.csv"
    csv.write_text(
        "a,b\n" + "".join(f"{math.sin(i / 3):.4f},{math.cos(i / 5):.4f}\n" for i in range(120))
    )
    code = main(
        [
            "in-context",
            str(tmp_path / "run"),
            "--data",
            str(csv),
            "--windows",
            "16",
            "--plot",
            str(tmp_path / "ic.png"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "in-context score" in out and "positions     1-4" in out
    assert (tmp_path / "ic.png").stat().st_size > 10_000
    assert main(["in-context", str(tmp_path / "run"), "--json", "--windows", "16"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["loss_by_position"]) == 48
    assert [s for s, _ in report["training_scores"]] == [0, 10, 20]
    assert report["icl_score"] == pytest.approx(icl_score(np.array(report["loss_by_position"])))


def test_in_context_cli_errors_name_the_fix(tmp_path, capsys):
    tok = SignalTokenizer(n_bins=32)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=16, n_layer=1, n_head=2, n_embd=16)
    )
    from nexttoken.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m", model, tok, step=0)
    assert main(["in-context", str(tmp_path / "m"), "--data", str(tmp_path / "x.txt")]) == 2
    assert ".csv" in capsys.readouterr().err
