"""The demo end to end on a tiny budget: every file it promises, the in-context section, and
the settings it refuses."""

import json

import pytest

from nexttoken.demo import DEMO_SETTINGS, run_demo

TINY = {
    "n_series": 64,
    "series_length": 160,
    "context": 64,
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 16,
    "steps": 40,
    "eval_every": 10,
    "eval_context": 48,
    "horizon": 8,
    "eval_series": 2,
    "sine_eval_series": 3,
    "samples": 4,
    "family_weights": {"single_sine": 3},
}


def test_the_demo_writes_its_files_and_shows_in_context_learning(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    summary = run_demo(out, progress=False, settings=TINY)
    for name in (
        "config.json",
        "model.safetensors",
        "metrics.jsonl",
        "summary.md",
        "next_token.txt",
        "training_curve.png",
        "in_context.png",
        "heatmap.png",
        "forecast_single_sine.png",
    ):
        assert (out / name).is_file(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "icl_score" in r]
    assert [r["step"] for r in evals] == [0, 10, 20, 30, 40]  # the untrained model first
    assert summary["icl_score_untrained"] == evals[0]["icl_score"]
    assert summary["icl_score_final"] == evals[-1]["icl_score"]
    text = (out / "summary.md").read_text()
    assert "## In-context learning" in text and "Olsson et al." in text and "Brown et al." in text
    assert "single_sine x3; the others x1" in text
    assert set(summary["per_family"]) >= {"single_sine", "sine + offset"}
    # the demo's own directory is reused; any other checkpoint is left alone
    run_demo(out, progress=False, settings={**TINY, "steps": 10, "eval_every": 5})
    with pytest.raises(ValueError, match="unknown demo settings"):
        run_demo(tmp_path / "x", settings={"stepz": 3})
    assert set(TINY) <= set(DEMO_SETTINGS)
