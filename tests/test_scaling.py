"""`nexttoken scaling`: the power-law fit, and a tiny study end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nexttoken.cli import main
from nexttoken.scaling import fit_power_law


def test_fit_recovers_a_known_law_and_refuses_too_few_points():
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5])
    loss = 1.5 + 10.0 * n**-0.3
    fit = fit_power_law(n, loss, grid=4000)
    assert fit.alpha == pytest.approx(0.3, abs=0.01)
    assert fit.E == pytest.approx(1.5, abs=0.01)
    assert fit.A == pytest.approx(10.0, rel=0.05)
    assert fit.r2 > 0.9999
    noisy = loss * (1 + 0.002 * np.random.default_rng(0).standard_normal(n.size))
    assert fit_power_law(n, noisy).alpha == pytest.approx(0.3, abs=0.1)
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law([1e3, 1e4], [2.0, 1.9])


def test_a_tiny_scaling_study_writes_runs_fit_and_report(tmp_path, capsys):
    out = tmp_path / "study"
    code = main(
        [
            "scaling",
            "--data",
            "oscillators",
            "--out",
            str(out),
            "--widths",
            "16,32,48",
            "--head-dim",
            "16",
            "--depth",
            "1",
            "--context",
            "16",
            "--steps",
            "6",
            "--batch-size",
            "4",
            "--n-series",
            "16",
            "--series-length",
            "40",
            "--no-progress",
        ]  # fmt: skip
    )
    assert code == 0
    study = json.loads((out / "scaling.json").read_text())
    runs = study["runs"]
    assert [r["width"] for r in runs] == [16, 32, 48]
    params = [r["params"] for r in runs]
    assert params == sorted(params) and len(set(params)) == 3
    for r in runs:
        assert r["tokens"] == 6 * 4 * 16 and r["flops"] == pytest.approx(
            6 * r["params"] * r["tokens"]
        )
        assert np.isfinite(r["eval_loss"]) and r["curve"]
        assert (out / f"width-{r['width']}" / "model.safetensors").is_file()
    assert {"E", "A", "alpha", "r2"} <= set(study["fit"])
    assert study["settings"]["parametrization"] == "mup"
    report = (out / "report.md").read_text()
    assert "L(N) =" in report
    # six steps teach too little for size to matter: the report must say which case it is
    said = "doubl" if study["fit"]["alpha"] > 0 else "did not fall with size"
    assert said in report
    assert "L(N) =" in capsys.readouterr().out
    assert main(["scaling", "--out", str(out), "--widths", "16,32,48"]) == 2  # no overwrite
    assert main(["scaling", "--out", str(tmp_path / "x"), "--widths", "16,32"]) == 2
    assert "at least 3 widths" in capsys.readouterr().err


def test_the_signals_base_recipe_runs_and_a_shipped_signals_base_loads_by_name(
    tmp_path, monkeypatch, capsys, signal_checkpoint
):
    import shutil
    from pathlib import Path

    import nexttoken.lm as lm_module
    from nexttoken.lm import load

    recipe = Path(__file__).parent.parent / "configs" / "signals-base.json"
    settings = json.loads(recipe.read_text())
    assert settings["context"] >= 512 and settings["parametrization"] == "mup"
    tokens = settings["steps"] * settings["batch_size"] * settings["context"]
    assert tokens >= 1e9  # the budget: at least 1B tokens of the new corpus
    # one step on the CPU, the corpus cut small: the recipe is a valid set of settings
    out = tmp_path / "base"
    code = main(
        [
            "train",
            "--data",
            "synthetic",
            "--config",
            str(recipe),
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--n-series",
            "8",
            "--eval-batches",
            "1",
            "--precision",
            "fp32",
            "--no-progress",
            "--out",
            str(out),
        ]  # fmt: skip
    )
    assert code == 0
    params = load(out).model.num_params()
    assert 5e6 <= params <= 20e6, params
    # a signals-base directory beside the shipped ones is found by name everywhere
    shipped = tmp_path / "pretrained"
    shipped.mkdir()
    shutil.copytree(signal_checkpoint, shipped / "signals-base")
    monkeypatch.setattr(lm_module, "PRETRAINED_DIR", shipped)
    assert load("signals-base").is_signal
    assert main(["models"]) == 0
    assert "signals-base" in capsys.readouterr().out
