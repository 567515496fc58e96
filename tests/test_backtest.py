"""Backtest on the user's own series: windows, errors, the leaderboard, the CLI."""

import numpy as np
import pytest

from nexttoken.backtest import MIN_CONTEXT, backtest, backtest_tasks
from nexttoken.baselines import LastValue, LinearAR, SeasonalNaive
from nexttoken.cli import main
from nexttoken.evaluate import run

pd = pytest.importorskip("pandas")


def _series(n=6, length=60, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return [
        10 + i + 3 * np.sin(2 * np.pi * t / 12 + i) + rng.normal(0, 0.3, length) for i in range(n)
    ]


def test_windows_are_the_last_steps_earliest_first():
    x = np.arange(50.0)
    y = np.arange(40.0) * 2
    tasks = backtest_tasks([x, y], ["x", "y"], horizon=5, windows=3, step=4)
    assert [t.dataset.split(" (")[0] for t in tasks] == ["window 1", "window 2", "window 3"]
    last = tasks[-1]
    np.testing.assert_array_equal(last.targets, [x[45:], y[35:]])
    np.testing.assert_array_equal(last.contexts[0], x[:45])
    first = tasks[0]  # ends 2 x 4 steps before the last
    np.testing.assert_array_equal(first.targets, [x[37:42], y[27:32]])
    np.testing.assert_array_equal(first.contexts[1], y[:27])
    # a series ending in missing values is backtested up to its last value
    z = np.concatenate([np.arange(30.0), [np.nan, np.nan]])
    (t,) = backtest_tasks([z], ["z"], horizon=4, windows=1)
    np.testing.assert_array_equal(t.targets[0], [26, 27, 28, 29])


def test_short_series_and_gaps_are_named_never_skipped():
    ok, short = np.arange(40.0), np.arange(12.0)
    with pytest.raises(ValueError, match=r"'tiny' has 12 observed steps.*fewer --windows"):
        backtest_tasks([ok, short], ["fine", "tiny"], horizon=4, windows=2)
    gappy = np.arange(40.0)
    gappy[-3] = np.nan
    with pytest.raises(ValueError, match="'gappy' has missing values in its last 8 steps"):
        backtest_tasks([gappy], ["gappy"], horizon=4, windows=2)
    assert len(backtest_tasks([np.arange(float(MIN_CONTEXT + 4))], ["s"], 4, 1)) == 1
    with pytest.raises(ValueError, match="horizon and windows"):
        backtest_tasks([ok], ["a"], horizon=0)


def test_the_leaderboard_is_evaluates_scores_on_the_same_windows():
    data = _series()
    forecasters = [LastValue(), LinearAR()]
    bt = backtest(forecasters, data, 12, windows=2, num_samples=8, seed=3)
    table = bt.table
    assert list(table.columns) == [
        "model", "relative_wql", "relative_mase", "wql", "mase", "coverage80", "seconds"
    ]  # fmt: skip
    assert set(table.model) == {"seasonal naive", "last value", "linear AR"}
    assert table.relative_wql.is_monotonic_increasing
    ref = table.set_index("model").loc["seasonal naive"]
    assert ref.relative_wql == pytest.approx(1.0) and ref.relative_mase == pytest.approx(1.0)
    # the same forecasters on the same windows through nexttoken.evaluate
    tasks = backtest_tasks(data, [f"series_{i}" for i in range(6)], 12, 2)
    direct = run([SeasonalNaive(), *forecasters], tasks, num_samples=8, seed=3)
    for model in ("last value", "linear AR"):
        row = table.set_index("model").loc[model]
        assert row.relative_wql == pytest.approx(
            direct.relative("backtest", model, "wql", "seasonal naive")
        )
        assert row.mase == pytest.approx(direct.suite_mean("backtest", model, "mase"))


def test_backtest_cli_writes_the_leaderboard_and_report(tmp_path, signal_checkpoint, capsys):
    data = _series(n=3, length=48)
    path = tmp_path / "mine.csv"
    path.write_text("a,b,c\n" + "".join(f"{a:.4f},{b:.4f},{c:.4f}\n" for a, b, c in zip(*data)))
    out = tmp_path / "bt"
    argv = ["backtest", signal_checkpoint, "--input", str(path), "--horizon", "6"]
    code = main(
        [
            *argv,
            "--windows",
            "2",
            "--baselines",
            "seasonal,last",
            "--samples",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "3 series x 2 window(s) of 6 steps" in printed and "| seasonal naive |" in printed
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board.model) == {"seasonal naive", "last value", "model"}
    assert (out / "report.md").read_text().count("| model | rel. WQL") == 1
    results = pd.read_csv(out / "results.csv")
    assert {"dataset", "mase", "wql"} <= set(results.columns)
    # bad input: a series too short for the windows is an error that names it
    assert main([*argv, "--windows", "8", "--no-progress"]) == 2
    assert "'a' has 48 observed steps" in capsys.readouterr().err
    assert (
        main(
            ["backtest", signal_checkpoint, "--input", str(tmp_path / "none.csv"), "--horizon", "3"]
        )
        == 2
    )
    assert "no such CSV file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("freq", "season"),
    [
        ("MS", 12),
        ("QS", 4),
        ("W-SUN", 52),
        ("D", 7),
        ("B", 5),
        ("h", 24),
        ("30min", 48),
        ("YS", 1),
        ("7min", None),
    ],
)
def test_calendar_season_reads_the_dates_step(freq, season):
    from nexttoken.frames import calendar_season

    assert calendar_season(pd.date_range("2020-01-01", periods=30, freq=freq).to_numpy()) == season
    if freq == "MS":
        assert calendar_season(pd.period_range("2020-01", periods=30, freq="M")) == 12
        assert calendar_season(np.arange(30.0)) is None  # plain numbers: no calendar


def test_backtest_takes_the_season_from_the_files_dates(tmp_path, signal_checkpoint, capsys):
    # A trending monthly series: its autocorrelation never dips below zero, so the season is
    # not found from the context alone; the dates say 12.
    t = np.arange(72)
    y = [10 + 0.5 * t + 3 * np.sin(2 * np.pi * t / 12 + i) for i in range(2)]
    dates = pd.date_range("2015-01-01", periods=72, freq="MS")
    path = tmp_path / "monthly.csv"
    path.write_text(
        "date,a,b\n" + "".join(f"{d:%Y-%m-%d},{a:.4f},{b:.4f}\n" for d, a, b in zip(dates, *y))
    )
    argv = ["backtest", signal_checkpoint, "--input", str(path), "--horizon", "6",
            "--baselines", "seasonal", "--samples", "2", "--no-progress"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "bt")]) == 0
    assert "season 12 from the series' dates" in capsys.readouterr().err
    assert "(season 12)" in (tmp_path / "bt" / "report.md").read_text()
    assert main([*argv, "--season", "6"]) == 0
    assert "from the series' dates" not in capsys.readouterr().err
