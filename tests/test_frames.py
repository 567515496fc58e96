"""pandas in and out: every accepted form of context, dates kept, long format for utilsforecast."""

import numpy as np
import pytest
import torch

import nexttoken as nt
from nexttoken import GPT, GPTConfig, SignalTokenizer
from nexttoken.cli import main
from nexttoken.frames import future_times, read_series, read_table
from nexttoken.lm import LanguageModel

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def lm():
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0, scaling="standard")
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=32, n_layer=1, n_head=2, n_embd=16)
    )
    return LanguageModel(model.eval(), tok, source="tiny")


def test_a_pandas_series_is_one_series_not_many(lm):
    # Before: read as 100 series of one value each, with no error.
    s = pd.Series(np.sin(np.arange(100) / 4.0), name="load")
    f = nt.forecast(lm, s, horizon=8, num_samples=3)
    assert f.median.shape == (1, 8) and f.names == ["load"]
    same = nt.forecast(lm, s.to_numpy(), horizon=8, num_samples=3)
    np.testing.assert_array_equal(f.samples, same.samples)


def test_every_form_gives_the_same_forecast(lm):
    a, b = np.sin(np.arange(40) / 3.0), np.cos(np.arange(40) / 5.0)
    dates = pd.date_range("2021-01-01", periods=40, freq="W-SUN")
    wide = pd.DataFrame({"a": a, "b": b}, index=dates)
    long = wide.reset_index(names="ds").melt(id_vars="ds", var_name="unique_id", value_name="y")
    forms = [np.stack([a, b]), [a, b], wide, long, torch.tensor(np.stack([a, b]))]
    results = [nt.forecast(lm, x, 5, num_samples=4, seed=2) for x in forms]
    for r in results[1:]:
        np.testing.assert_array_equal(r.samples, results[0].samples)
    assert results[2].names == ["a", "b"] == results[3].names
    # dates continue at the context's own frequency
    expected = pd.date_range("2021-10-10", periods=5, freq="W-SUN").to_numpy()
    np.testing.assert_array_equal(results[2].times[0], expected)
    np.testing.assert_array_equal(results[3].times[1], expected)
    assert results[0].times == [None, None]


def test_different_lengths_and_gaps_in_a_long_frame(lm):
    rows = [
        ("x", d, float(i)) for i, d in enumerate(pd.date_range("2020-01", periods=24, freq="MS"))
    ]
    rows += [
        ("y", d, 2.0 * i) for i, d in enumerate(pd.date_range("2021-01", periods=12, freq="MS"))
    ]
    long = pd.DataFrame(rows, columns=["unique_id", "ds", "y"]).drop(index=[5, 6])  # a gap in x
    got = read_series(long)
    assert [len(v) for v in got.values] == [24, 12]
    assert np.isnan(got.values[0][[5, 6]]).all()  # missing months come back as NaN
    f = nt.forecast(lm, long, 3, num_samples=2)
    assert str(f.times[0][0])[:10] == "2022-01-01" and str(f.times[1][0])[:10] == "2022-01-01"


def test_to_pandas_is_long_and_scores_with_utilsforecast(lm):
    from utilsforecast.evaluation import evaluate
    from utilsforecast.losses import mae

    x = np.sin(np.arange(60) / 4.0)
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    ctx = pd.DataFrame({"s": x[:50]}, index=dates[:50])
    f = nt.forecast(lm, ctx, 10, num_samples=5)
    out = f.to_pandas()
    assert list(out.columns) == ["unique_id", "ds", "mean", "median"] + [
        f"q{q:g}" for q in f.quantile_levels
    ]
    assert len(out) == 10 and (out["ds"].to_numpy() == dates[50:].to_numpy()).all()
    truth = pd.DataFrame({"unique_id": "s", "ds": dates[50:], "y": x[50:]})
    scored = evaluate(truth.merge(out, on=["unique_id", "ds"]), metrics=[mae], models=["median"])
    expected = np.abs(x[50:] - f.median[0]).mean()
    assert scored["median"].iloc[0] == pytest.approx(expected)
    # without dates, ds counts the steps
    assert nt.forecast(lm, x[:50], 4, num_samples=2).to_pandas()["ds"].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"a": [1.0]}, "cannot read a context of type dict"),
        ("1,2,3", "cannot read a context of type str"),
        (np.zeros((2, 3, 4)), "1-D .* or 2-D"),
    ],
)
def test_other_forms_are_refused_with_the_accepted_ones(lm, bad, message):
    with pytest.raises(ValueError, match=message):
        nt.forecast(lm, bad, 3)


def test_bad_frames_are_explained(lm):
    with pytest.raises(ValueError, match="not numeric; put dates in the index"):
        nt.forecast(lm, pd.DataFrame({"when": ["a", "b"], "v": [1.0, 2.0]}), 2)
    with pytest.raises(ValueError, match="needs a 'ds' column"):
        nt.forecast(lm, pd.DataFrame({"unique_id": ["a"], "y": [1.0]}), 2)
    dup = pd.DataFrame({"unique_id": ["a", "a"], "ds": [1, 1], "y": [1.0, 2.0]})
    with pytest.raises(ValueError, match="same ds twice"):
        nt.forecast(lm, dup, 2)


def test_future_times_numbers_and_irregular_dates():
    np.testing.assert_array_equal(future_times(np.array([3, 5, 7]), 2), [9, 11])
    assert future_times(None, 3) is None and future_times(np.array([1]), 3) is None
    hourly = pd.date_range("2024-03-01", periods=30, freq="h").to_numpy()
    assert str(future_times(hourly, 1)[0]).startswith("2024-03-02T06")


def test_csv_with_dates_and_long_csv_through_the_cli(tmp_path, capsys, signal_checkpoint):
    dated = tmp_path / "dated.csv"
    dates = pd.date_range("2023-01-01", periods=30, freq="MS")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "a": np.sin(np.arange(30) / 2)}).to_csv(
        dated, index=False
    )
    assert main(["forecast", signal_checkpoint, "--input", str(dated), "--horizon", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("series,step,ds,mean,median")
    assert [ln.split(",")[2] for ln in lines[1:]] == ["2025-07-01", "2025-08-01", "2025-09-01"]
    long = tmp_path / "long.csv"
    pd.DataFrame(
        {"unique_id": ["u"] * 20 + ["v"] * 20, "ds": list(range(20)) * 2, "y": np.arange(40.0)}
    ).to_csv(long, index=False)
    assert read_table(long).names == ["u", "v"]
    assert main(["forecast", signal_checkpoint, "--input", str(long), "--horizon", "2"]) == 0
    rows = [ln.split(",") for ln in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("u", "1", "20"),
        ("u", "2", "21"),
        ("v", "1", "20"),
        ("v", "2", "21"),
    ]
    # a plain CSV keeps the old columns
    plain = tmp_path / "plain.csv"
    plain.write_text("s\n" + "\n".join(str(v) for v in np.arange(10.0)) + "\n")
    assert main(["forecast", signal_checkpoint, "--input", str(plain), "--horizon", "1"]) == 0
    assert capsys.readouterr().out.startswith("series,step,mean,median")
