import csv
import json

import numpy as np
import pytest

from nexttoken import load
from nexttoken.cli import main

from .conftest import TINY_TRAIN_FLAGS, mean_id_generate


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_next_table_and_json(capsys, signal_checkpoint):
    prompt = ",".join(f"{v:.3f}" for v in np.sin(np.arange(20) / 2))
    code, out, _ = run(capsys, "next", signal_checkpoint, prompt, "--top", "5")
    assert code == 0
    assert (
        "rank" in out and "probability" in out and "total probability of the 5 tokens shown" in out
    )
    code, out, _ = run(capsys, "next", signal_checkpoint, prompt, "--top", "5", "--json")
    data = json.loads(out)
    assert set(data) == {"prompt_ids", "top", "total"} and len(data["prompt_ids"]) == 20
    assert [r["rank"] for r in data["top"]] == [1, 2, 3, 4, 5]
    assert set(data["top"][0]) == {"rank", "id", "token", "probability"}
    probs = [r["probability"] for r in data["top"]]
    assert probs == sorted(probs, reverse=True)
    assert abs(sum(probs) - data["total"]) < 1e-9 and data["total"] <= 1 + 1e-9


def test_generate_json_and_streaming(capsys, signal_checkpoint):
    code, out, _ = run(
        capsys,
        "generate",
        signal_checkpoint,
        "0.1,0.5,0.9,0.5",
        "--max-new-tokens",
        "6",
        "--seed",
        "1",
        "--json",
    )
    data = json.loads(out)
    assert (
        code == 0
        and len(data["ids"]) == 6
        and len(data["values"]) == 6
        and len(data["prompt_ids"]) == 4
    )
    code2, out2, _ = run(
        capsys,
        "generate",
        signal_checkpoint,
        "0.1,0.5,0.9,0.5",
        "--max-new-tokens",
        "6",
        "--seed",
        "1",
        "--json",
    )
    assert json.loads(out2) == data
    code, out, _ = run(
        capsys, "generate", signal_checkpoint, "0.1,0.5,0.9", "--max-new-tokens", "3", "--greedy"
    )
    assert code == 0 and len(out.strip().split(",")) == 3


def test_forecast_csv_round_trip(capsys, tmp_path, signal_checkpoint):
    t = np.arange(30)
    inp = tmp_path / "in.csv"
    rows = [[f"{np.sin(i / 2):.4f}", "" if i % 7 == 3 else f"{np.cos(i / 3):.4f}"] for i in t]
    inp.write_text("alpha,beta\n" + "\n".join(",".join(r) for r in rows) + "\n")
    out_csv, png = tmp_path / "out.csv", tmp_path / "fan.png"
    code, _, err = run(
        capsys,
        "forecast",
        signal_checkpoint,
        "--input",
        inp,
        "--horizon",
        "5",
        "--samples",
        "4",
        "--output",
        out_csv,
        "--plot",
        png,
        "--heatmap",
        tmp_path / "heat.png",
    )
    assert code == 0, err
    with out_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["series", "step", "mean", "median"] + [f"q0.{i}" for i in range(1, 10)]
    assert [r["series"] for r in rows] == ["alpha"] * 5 + ["beta"] * 5
    assert [int(r["step"]) for r in rows[:5]] == [1, 2, 3, 4, 5]
    assert all(float(r["q0.1"]) <= float(r["median"]) <= float(r["q0.9"]) for r in rows)
    assert png.stat().st_size > 1000 and (tmp_path / "heat.png").stat().st_size > 1000


def test_forecast_trend_flag(capsys, tmp_path, signal_checkpoint):
    inp = tmp_path / "in.csv"
    inp.write_text("up\n" + "\n".join(f"{2.0 * i + np.sin(i):.4f}" for i in range(20)) + "\n")
    argv = ["forecast", signal_checkpoint, "--input", inp, "--horizon", "3", "--samples", "2"]
    code, out, err = run(capsys, *argv, "--trend", "linear", "--heatmap", tmp_path / "h.png")
    assert code == 0, err
    # the heat map is of the model on the series as it is, and says so
    assert "forecast with its trend or season removed" in err and (tmp_path / "h.png").exists()
    medians = [float(r.split(",")[3]) for r in out.strip().splitlines()[1:]]
    assert min(medians) > 30  # the line (2 a step, at 38 by the end) is carried on
    with pytest.raises(SystemExit) as stop:
        run(capsys, *argv, "--trend", "cubic")
    assert stop.value.code == 2 and "invalid choice: 'cubic'" in capsys.readouterr().err


def test_forecast_reads_the_season_from_the_dates_or_the_flag(capsys, tmp_path, signal_checkpoint):
    shape = np.array([0.0, 5.0, -1.0, -4.0])
    quarters = [f"{2000 + i // 4}-{3 * (i % 4) + 1:02d}-01" for i in range(40)]
    values = [10 + shape[i % 4] + 0.05 * np.sin(i) for i in range(40)]
    inp = tmp_path / "quarterly.csv"
    inp.write_text(
        "ds,sales\n" + "\n".join(f"{d},{v:.4f}" for d, v in zip(quarters, values)) + "\n"
    )
    argv = ["forecast", signal_checkpoint, "--input", inp, "--horizon", "8", "--samples", "3"]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "season 4 from the series' dates" in err
    assert "1 of 1 series forecast with their seasonal profile (season 4) removed" in err
    medians = np.array([float(r.split(",")[4]) for r in out.strip().splitlines()[1:]])
    # the profile is added back: the tiny, barely trained model forecasts what is left (about
    # 10), so the median follows the season (measured within 0.1; the model alone is off by up to
    # 36, its medians 14.5, 26.1, -14.5, 4.8, ...)
    expected = 10 + np.tile(shape, 2)
    assert np.abs(medians - expected).max() < 1.0
    # --season overrides; --trend none leaves the season in place and says nothing
    code, _, err = run(capsys, *argv, "--season", "4,12")
    assert code == 0 and "(season 4, 12) removed" in err
    code, _, err = run(capsys, *argv, "--trend", "none")
    assert code == 0 and "seasonal profile" not in err and "from the series' dates" not in err
    with pytest.raises(SystemExit) as stop:
        run(capsys, *argv, "--season", "12,0")
    assert stop.value.code == 2 and "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["next", "{ckpt}", "0.1,abc"], "'abc' is not a number"),
        (["next", "{tmp}/nowhere", "1,2"], "no such model directory"),
        (
            ["forecast", "{ckpt}", "--input", "{tmp}/missing.csv", "--horizon", "3"],
            "no such CSV file",
        ),
        (["train", "--data", "weird.bin", "--out", "{tmp}/x"], "give 'oscillators'"),
        (
            [
                "train",
                "--data",
                "oscillators",
                "--out",
                "{tmp}/x",
                "--n-embd",
                "10",
                "--n-head",
                "3",
            ],
            "not divisible",
        ),
        (["generate", "{ckpt}", "1,2", "--max-new-tokens", "2", "--top-p", "2"], "top_p"),
    ],
)
def test_errors_are_one_clear_line(capsys, tmp_path, signal_checkpoint, argv, message):
    argv = [a.format(ckpt=signal_checkpoint, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.startswith("nexttoken: error:")


def test_train_then_resume_from_the_cli(capsys, tmp_path):
    out = tmp_path / "run"
    common = [
        "train",
        "--data",
        "oscillators",
        "--out",
        out,
        "--n-layer",
        "1",
        "--n-embd",
        "16",
        "--n-head",
        "2",
        "--context",
        "16",
        "--batch-size",
        "2",
        "--bins",
        "16",
        "--n-series",
        "8",
        "--series-length",
        "40",
        "--eval-every",
        "2",
        "--eval-batches",
        "1",
        "--save-every",
        "2",
        "--no-progress",
    ]
    # muP with a base width below n_embd: resuming must keep its per-layer learning rates.
    code, _, err = run(
        capsys, *common, "--steps", "2", "--parametrization", "mup", "--mup-base-width", "8"
    )
    assert code == 0, err
    code, _, err = run(capsys, *common, "--steps", "2")
    assert code == 2 and "already holds a checkpoint" in err
    code, out_text, err = run(capsys, *common, "--steps", "4", "--resume")
    assert code == 0, err
    assert "step 4" in out_text + err
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["n_layer"] == 1 and config["tokenizer"]["kind"] == "signal"
    assert config["model"]["parametrization"] == "mup" and config["model"]["mup_base_width"] == 8
    from safetensors import safe_open

    with safe_open(str(out / "training_state.safetensors"), framework="pt") as fh:
        header = json.loads(fh.metadata()["nexttoken"])
    assert header["step"] == 4
    assert sorted(g["lr_mult"] for g in header["param_groups"]) == [0.5, 1.0, 1.0]


def test_config_file_and_flag_precedence(capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "n_layer": 2,
                "n_embd": 16,
                "n_head": 2,
                "context": 16,
                "steps": 1,
                "batch_size": 2,
                "bins": 8,
                "n_series": 4,
                "series_length": 30,
            }
        )
    )
    code, _, err = run(
        capsys,
        "train",
        "--data",
        "oscillators",
        "--out",
        tmp_path / "r",
        "--config",
        cfg,
        "--n-layer",
        "1",
        "--no-progress",
    )
    assert code == 0, err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["model"]["n_layer"] == 1 and config["model"]["n_embd"] == 16
    cfg.write_text(json.dumps({"layers": 3}))
    code, _, err = run(
        capsys, "train", "--data", "oscillators", "--out", tmp_path / "r2", "--config", cfg
    )
    assert code == 2 and "unknown settings ['layers']" in err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("demo", "train", "forecast", "next", "generate"):
        assert cmd in out


def test_text_training_generation_and_the_see_you_table(capsys, tmp_path):
    text = tmp_path / "book.txt"
    text.write_text("See you soon. See you there. See you later. " * 40)
    for tokenizer in ("char", "bpe"):
        out = tmp_path / tokenizer
        code, _, err = run(
            capsys,
            "train",
            "--data",
            text,
            "--out",
            out,
            "--tokenizer",
            tokenizer,
            "--vocab-size",
            "280",
            "--steps",
            "30",
            "--batch-size",
            "8",
            "--context",
            "32",
            "--n-layer",
            "1",
            "--n-embd",
            "32",
            "--n-head",
            "2",
            "--lr",
            "0.01",
            "--eval-every",
            "30",
            "--no-progress",
        )
        assert code == 0, err
        code, out_text, err = run(
            capsys, "generate", out, "See you", "--max-new-tokens", "12", "--greedy", "--json"
        )
        data = json.loads(out_text)
        assert code == 0 and len(data["ids"]) == 12 and isinstance(data["text"], str)
        code, out_text, err = run(capsys, "next", out, "See you", "--top", "3")
        assert code == 0 and "total probability of the 3 tokens shown" in out_text
        # Tokens are shown quoted, so a leading space stays visible.
        lm = load(out)
        assert lm.token_str(lm.encode(" ")[0]) == '" "'
        assert all(line.split()[1].startswith('"') for line in out_text.splitlines()[3:6])


def test_sample_frequencies_follow_the_probabilities(capsys, signal_checkpoint):
    code, out, err = run(
        capsys,
        "sample-frequencies",
        signal_checkpoint,
        "0.1,0.5,0.9,0.5",
        "--n",
        "20000",
        "--top",
        "5",
        "--seed",
        "0",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    counts = [r["count"] for r in data["top"]] + [data["other"]["count"]]
    assert sum(counts) == 20000
    for r in data["top"]:
        # 5 standard deviations of a binomial frequency
        assert abs(r["frequency"] - r["probability"]) < 5 * (r["probability"] / 20000) ** 0.5 + 1e-3
    assert abs(data["other"]["probability"] + sum(r["probability"] for r in data["top"]) - 1) < 1e-6


def test_export_hf_refuses_to_overwrite(capsys, tmp_path, signal_checkpoint):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "export-hf", signal_checkpoint, tmp_path / "x")
    assert code == 2 and "not empty" in err
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
    code, _, err = run(capsys, "export-hf", signal_checkpoint, tmp_path / "y")
    assert code == 0, err
    assert (tmp_path / "y" / "model.safetensors").exists() and (
        tmp_path / "y" / "nexttoken_tokenizer.json"
    ).exists()


def test_train_on_the_synthetic_corpus_with_standard_scaling(capsys, tmp_path):
    out = tmp_path / "syn"
    code, _, err = run(
        capsys,
        "train",
        *"--data synthetic --n-layer 1 --n-embd 16 --n-head 2 --context 16 --bins 16".split(),
        *"--n-series 8 --series-length 40 --eval-batches 1 --no-progress --steps 2".split(),
        "--sources",
        "kernelsynth=1,structured=1",
        "--out",
        out,
    )
    assert code == 0, err
    lm = load(out)
    assert lm.tokenizer.scaling == "standard"  # the default for new models
    saved = json.loads((out / "config.json").read_text())["data"]
    assert (
        saved["source"] == "synthetic"
        and saved["settings"]["sources"] == "kernelsynth=1,structured=1"
    )
    code, _, err = run(
        capsys, "train", *TINY_TRAIN_FLAGS, "--scaling", "mean", "--out", tmp_path / "m"
    )
    assert code == 0 and load(tmp_path / "m").tokenizer.scaling == "mean"
    code, _, err = run(
        capsys, "train", "--data", "synthetic", "--sources", "real=1", "--out", tmp_path / "x"
    )
    assert code == 2 and "unknown source 'real'" in err


def test_resume_of_a_finished_run_is_a_notice(capsys, tmp_path):
    out = tmp_path / "done"
    assert main(["train", *TINY_TRAIN_FLAGS, "--steps", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code = main(["train", *TINY_TRAIN_FLAGS, "--steps", "2", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert code == 0 and "already reached step 2 of --steps 2; nothing to do" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing touched


def test_forecast_says_where_the_model_saw_only_the_last_steps(
    capsys, tmp_path, signal_checkpoint, monkeypatch
):
    import sys

    F = sys.modules["nexttoken.forecast"]
    monkeypatch.setattr(F, "generate", mean_id_generate)
    monkeypatch.setattr(F, "SHORT_VIEW", 8)  # the window is 24 steps
    shape = np.array([0.0, 5.0, -1.0, -4.0])
    rows = [(10 + shape[i % 4] + (6.0 if i >= 25 else 0.0), 10 + shape[i % 4]) for i in range(40)]
    inp = tmp_path / "two.csv"
    inp.write_text("shifted,steady\n" + "\n".join(f"{a:.4f},{b:.4f}" for a, b in rows) + "\n")
    argv = ["forecast", signal_checkpoint, "--input", inp, "--horizon", "6", "--season", "4"]
    code, out, err = run(capsys, *argv, "--samples", "2")
    assert code == 0, err
    assert "2 of 2 series forecast with their seasonal profile (season 4) removed" in err
    assert "only the last 8 steps of what is left for 1 of them" in err
    medians = np.array([float(r.split(",")[4]) for r in out.strip().splitlines()[1:]])
    # the shifted series goes on at its new level, 16 (plus the season), not the window's mean
    np.testing.assert_allclose(medians[:6], 16 + shape[np.arange(40, 46) % 4], atol=0.5)
    code, _, err = run(capsys, *argv, "--trend", "none")
    assert code == 0 and "only the last" not in err
