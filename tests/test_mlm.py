import numpy as np
import pytest
import torch

from nexttoken import GPT, GPTConfig, SignalTokenizer, TrainConfig, load, train
from nexttoken.cli import main
from nexttoken.data import IGNORE, MaskedWindows, SeriesWindows
from nexttoken.infill import infill
from nexttoken.train import lm_loss

from .conftest import TINY_TRAIN_FLAGS

# Period 5 and windows of 15 values: every training window has the same scale (mean |x|),
# and so do the test series below, whose gaps take out each phase equally often.
PATTERN = np.array([1.0, -2.0, 3.0, 0.5, -1.0])


def _windows(n_bins=17, context=14):
    tok = SignalTokenizer(n_bins=n_bins, low=-2.0, high=2.0)
    series = np.tile(PATTERN, 30)[None]
    return tok, SeriesWindows(series, tok, context)


def test_masking_targets_only_masked_positions():
    tok, source = _windows()
    gen = torch.Generator().manual_seed(0)
    ids, _ = source.batch(64, gen)
    inputs, labels = MaskedWindows(source, rate=0.3, bert=False).mask(ids, gen)
    chosen = labels != IGNORE
    assert chosen.any(-1).all()  # at least one target per window
    assert torch.equal(labels[chosen], ids[chosen])
    assert (inputs[chosen] == tok.MASK).all() and torch.equal(inputs[~chosen], ids[~chosen])
    assert 0.2 < chosen.float().mean() < 0.4


def test_bert_masking_mixes_mask_random_and_kept():
    tok, source = _windows(n_bins=64)
    gen = torch.Generator().manual_seed(1)
    ids, _ = source.batch(512, gen)
    inputs, labels = MaskedWindows(source, rate=0.5, bert=True).mask(ids, gen)
    chosen = labels != IGNORE
    masked = (inputs[chosen] == tok.MASK).float().mean()
    kept = (inputs[chosen] == ids[chosen]).float().mean()
    assert 0.75 < masked < 0.85 and 0.08 < kept < 0.14


def test_mlm_loss_ignores_unmasked_positions():
    logits = torch.randn(2, 6, 10)
    labels = torch.full((2, 6), IGNORE)
    labels[0, 2], labels[1, 4] = 3, 7
    changed = logits.clone()
    changed[0, 0] += 5.0  # an unmasked position
    assert torch.equal(lm_loss(logits, labels), lm_loss(changed, labels))
    changed[0, 2, 3] += 1.0  # a masked one
    assert not torch.equal(lm_loss(logits, labels), lm_loss(changed, labels))


@pytest.fixture(scope="module")
def mlm_checkpoint(tmp_path_factory):
    tok, source = _windows()
    data = MaskedWindows(source, rate=0.4, bert=False)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=tok.vocab_size,
            context_length=14,
            n_layer=2,
            n_head=2,
            n_embd=32,
            objective="mlm",
        )
    )
    out = tmp_path_factory.mktemp("mlm") / "model"
    config = TrainConfig(
        steps=300, batch_size=32, lr=1e-2, eval_every=300, save_every=300, progress=False
    )
    train(model, tok, data, data, config, out)
    return str(out)


def test_a_tiny_masked_lm_recovers_masked_tokens_of_a_pattern(mlm_checkpoint):
    lm = load(mlm_checkpoint)
    truth = np.tile(PATTERN, 12)
    given = truth.copy()
    given[[6, 12, 23, 29, 35, 41, 42, 45, 48, 49]] = (
        np.nan
    )  # single values and runs of two, each phase twice
    filled = infill(lm, given)
    np.testing.assert_array_equal(
        filled[~np.isnan(given)], truth[~np.isnan(given)]
    )  # kept as they were
    half_bin = 0.5 * 4.0 / 16 * lm.tokenizer.scale_of(torch.from_numpy(given)[None]).item()
    np.testing.assert_allclose(filled, truth, atol=half_bin + 1e-9)


def test_infill_takes_every_form_a_forecast_takes_and_gives_it_back(mlm_checkpoint):
    pd = pytest.importorskip("pandas")
    lm = load(mlm_checkpoint)
    a = np.tile(PATTERN, 6)
    b = 3.0 * np.tile(PATTERN, 5)
    ga, gb = a.copy(), b.copy()
    ga[[4, 11]] = np.nan
    gb[[7]] = np.nan
    one = infill(lm, ga)
    assert isinstance(one, np.ndarray) and one.shape == a.shape and not np.isnan(one).any()
    np.testing.assert_array_equal(infill(lm, list(ga)), one)  # a list of numbers: one series
    # several series: each filled as it is alone, whatever the container
    both = infill(lm, [ga, gb])
    assert isinstance(both, list) and len(both) == 2
    np.testing.assert_array_equal(both[0], one)
    np.testing.assert_array_equal(both[1], infill(lm, gb))
    two_d = infill(lm, np.stack([ga, ga[::-1]]))
    assert two_d.shape == (2, len(a))
    np.testing.assert_array_equal(two_d[0], one)
    # pandas: the same index, names and columns back
    dates = pd.date_range("2024-01-01", periods=len(a), freq="D")
    s = infill(lm, pd.Series(ga, index=dates, name="a"))
    assert isinstance(s, pd.Series) and s.name == "a" and s.index.equals(dates)
    np.testing.assert_array_equal(s.to_numpy(), one)
    wide = pd.DataFrame({"a": ga, "b": np.r_[gb, [np.nan] * 5]}, index=dates)
    out = infill(lm, wide)
    assert list(out.columns) == ["a", "b"] and out.index.equals(dates)
    np.testing.assert_array_equal(out["a"].to_numpy(), one)
    assert not out.isna().any().any() and wide["a"].isna().sum() == 2  # the input is untouched
    # long: a row left out of the daily grid comes back, filled
    rows = pd.DataFrame({"unique_id": "a", "ds": dates, "y": a}).drop(index=[4, 11])
    long = infill(lm, rows)
    assert list(long.columns) == ["unique_id", "ds", "y"] and len(long) == len(a)
    assert (long["ds"].to_numpy() == dates.to_numpy()).all()
    np.testing.assert_array_equal(long["y"].to_numpy(), one)


def test_infill_refuses_a_causal_model_and_empty_series(mlm_checkpoint, signal_checkpoint):
    with pytest.raises(ValueError, match="--objective mlm"):
        infill(load(signal_checkpoint), [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="no observed values"):
        infill(load(mlm_checkpoint), [np.nan, np.nan])
    with pytest.raises(ValueError, match="masked LM"):
        load(mlm_checkpoint).next_token_distribution("1,2,3")


def test_infill_cli_fills_every_empty_cell(tmp_path, capsys, mlm_checkpoint):
    a = np.tile(PATTERN, 8)[:30]
    rows = ["" if i in (4, 5, 18, 19) else f"{v:.6f}" for i, v in enumerate(a)]
    (tmp_path / "in.csv").write_text("a\n" + "\n".join(rows) + "\n")
    code = main(
        [
            "infill",
            mlm_checkpoint,
            "--input",
            str(tmp_path / "in.csv"),
            "--output",
            str(tmp_path / "out.csv"),
            "--plot",
            str(tmp_path / "gap.png"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "a" and len(lines) == 31 and all(line.strip() for line in lines[1:])
    assert float(lines[1]) == pytest.approx(a[0], abs=1e-6)  # given values kept
    assert (tmp_path / "gap.png").stat().st_size > 1000
    code = main(
        [
            "infill",
            mlm_checkpoint,
            "--input",
            str(tmp_path / "in.csv"),
            "--output",
            str(tmp_path / "in.csv"),
        ]
    )
    assert code == 2 and "never overwritten" in capsys.readouterr().err


def test_train_mlm_from_the_cli_and_refuse_text(tmp_path, capsys):
    code = main(
        [
            "train",
            *TINY_TRAIN_FLAGS,
            "--out",
            str(tmp_path / "m"),
            "--objective",
            "mlm",
            "--steps",
            "2",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert load(tmp_path / "m").model.config.objective == "mlm"
    (tmp_path / "t.txt").write_text("hello world " * 10)
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "t.txt"),
            "--out",
            str(tmp_path / "x"),
            "--objective",
            "mlm",
        ]
    )
    assert code == 2 and "MASK token" in capsys.readouterr().err


def test_span_masking_hides_contiguous_runs_at_about_the_rate():
    tok = SignalTokenizer(n_bins=32, low=-2.0, high=2.0)
    source = SeriesWindows(np.sin(np.arange(400) / 5.0)[None], tok, 128)
    gen = torch.Generator().manual_seed(0)
    ids, _ = source.batch(64, gen)
    _, labels = MaskedWindows(source, rate=0.3, bert=False, max_span=8).mask(ids, gen)
    chosen = labels != IGNORE
    assert 0.2 < chosen.float().mean() < 0.4
    # Runs are longer than with independent draws at the same rate.
    starts = chosen[:, 1:] & ~chosen[:, :-1]
    mean_run = chosen.sum() / max(1, int(starts.sum() + chosen[:, 0].sum()))
    assert mean_run > 2.5
    with pytest.raises(ValueError, match="max_span"):
        MaskedWindows(source, max_span=0)
