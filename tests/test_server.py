"""The explorer's JSON API through Starlette's test client: every endpoint, its JSON shape, the
CLI's output for the same request, and bad input (a 4xx that names the problem, never a 500)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from nexttoken import GPT, CharTokenizer, GPTConfig, TrainConfig, load, train  # noqa: E402
from nexttoken.cli import main  # noqa: E402
from nexttoken.data import TokenWindows  # noqa: E402
from nexttoken.server import MAX_BODY, ModelPool, create_app  # noqa: E402

TEXT = "see you soon. see you later. see you there. see you then. you see the sea. " * 20


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory) -> str:
    """A tiny character-level GPT, trained for a moment on a short text."""
    import torch

    tok = CharTokenizer.from_text(TEXT)
    data = TokenWindows(torch.tensor(tok.encode(TEXT)), 32)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=32, n_layer=1, n_head=2, n_embd=32)
    )
    out = tmp_path_factory.mktemp("text") / "model"
    config = TrainConfig(
        steps=150, batch_size=16, lr=1e-2, eval_every=150, save_every=150, progress=False
    )
    train(model, tok, data, data, config, out)
    return str(out)


@pytest.fixture(scope="module")
def client(text_checkpoint, signal_checkpoint):
    pool = ModelPool([text_checkpoint, signal_checkpoint])
    with TestClient(create_app(pool), raise_server_exceptions=False) as c:
        c.text_model, c.signal_model = text_checkpoint, signal_checkpoint  # type: ignore[attr-defined]
        yield c


def _cli_json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_models_lists_each_model_by_the_name_it_was_given(client):
    data = client.get("/api/models").json()
    by_name = {m["name"]: m for m in data["models"]}
    assert list(by_name) == [client.text_model, client.signal_model]
    assert by_name[client.text_model]["kind"] == "text"
    assert by_name[client.signal_model]["kind"] == "signal"
    assert by_name[client.signal_model]["bins"] == 32
    assert "single_sine" in data["families"]


def test_next_is_exactly_the_cli_json(client, capsys):
    for model, prompt in ((client.text_model, "see you"), (client.signal_model, "0.1,0.5,0.9,0.5")):
        got = client.post("/api/next", json={"model": model, "prompt": prompt, "top": 5})
        assert got.status_code == 200
        assert got.json() == _cli_json(capsys, ["next", model, prompt, "--top", "5", "--json"])


def test_generate_is_exactly_the_cli_json(client, capsys):
    cli = _cli_json(
        capsys,
        [
            "generate",
            client.text_model,
            "see",
            "--max-new-tokens",
            "12",
            "--top-k",
            "5",
            "--seed",
            "3",
            "--json",
        ],
    )
    body = {
        "model": client.text_model,
        "prompt": "see",
        "max_new_tokens": 12,
        "top_k": 5,
        "seed": 3,
    }
    assert client.post("/api/generate", json=body).json() == cli
    greedy = {
        "model": client.signal_model,
        "prompt": "0,1,0,-1,0,1",
        "max_new_tokens": 6,
        "greedy": True,
    }
    cli = _cli_json(
        capsys,
        [
            "generate",
            client.signal_model,
            "0,1,0,-1,0,1",
            "--max-new-tokens",
            "6",
            "--greedy",
            "--json",
        ],
    )
    assert client.post("/api/generate", json=greedy).json() == cli


def test_forecast_rows_are_the_cli_csv(client, capsys, tmp_path):
    t = np.arange(40)
    a, b = np.sin(2 * np.pi * t / 10), 2 + np.cos(2 * np.pi * t / 8)
    body = {
        "model": client.signal_model,
        "series": {"a": a.tolist(), "b": b.tolist()},
        "horizon": 6,
        "samples": 8,
        "seed": 1,
    }
    rows = client.post("/api/forecast", json=body).json()["rows"]
    (tmp_path / "in.csv").write_text("a,b\n" + "\n".join(f"{x},{y}" for x, y in zip(a, b)) + "\n")
    out = tmp_path / "out.csv"
    argv = ["forecast", client.signal_model, "--input", str(tmp_path / "in.csv"), "--horizon", "6"]
    assert main([*argv, "--samples", "8", "--seed", "1", "--output", str(out)]) == 0
    lines = out.read_text().strip().split("\n")
    header = lines[0].split(",")
    assert list(rows[0]) == header and len(rows) == len(lines) - 1 == 12
    for row, line in zip(rows, lines[1:]):
        cells = line.split(",")
        assert [row["series"], str(row["step"])] == cells[:2]
        np.testing.assert_allclose(
            [row[h] for h in header[2:]], [float(c) for c in cells[2:]], rtol=1e-5
        )


def test_forecast_reads_a_csv_with_dates_and_gives_paths(client):
    pytest.importorskip("pandas")
    lines = ["date,sales"] + [f"2024-01-{d:02d},{10 + math.sin(d):.4f}" for d in range(1, 29)]
    body = {
        "model": client.signal_model,
        "csv": "\n".join(lines) + "\n",
        "horizon": 3,
        "samples": 4,
        "paths": True,
    }
    data = client.post("/api/forecast", json=body).json()
    assert [r["ds"] for r in data["rows"]] == ["2024-01-29", "2024-01-30", "2024-01-31"]
    s = data["series"][0]
    assert s["name"] == "sales" and len(s["context"]) == 28
    assert np.shape(s["samples"]) == (4, 3) and len(s["median"]) == len(s["q10"]) == 3


def test_distribution_shows_what_the_filters_keep(client):
    body = {"model": client.text_model, "prompt": "see you", "top": 8}
    raw = client.post("/api/distribution", json=body).json()
    assert [t["id"] for t in raw["prompt_tokens"]] == load(client.text_model).encode("see you")
    probs = [r["probability"] for r in raw["raw"]["top"]]
    assert probs == sorted(probs, reverse=True)
    assert raw["raw"]["total"] == pytest.approx(sum(probs))
    # no filters: the filtered distribution is the distribution
    np.testing.assert_allclose([r["filtered"] for r in raw["raw"]["top"]], probs, rtol=1e-9)
    top2 = client.post("/api/distribution", json={**body, "top_k": 2}).json()
    kept = [r["filtered"] for r in top2["raw"]["top"]]
    assert top2["filtered"]["kept"] == 2 and all(k == 0 for k in kept[2:])
    assert sum(kept[:2]) == pytest.approx(1.0)
    cold = client.post("/api/distribution", json={**body, "temperature": 0.5}).json()
    assert cold["raw"]["top"][0]["filtered"] > raw["raw"]["top"][0]["filtered"]
    greedy = client.post("/api/distribution", json={**body, "temperature": 0}).json()
    assert greedy["raw"]["top"][0]["filtered"] == 1.0 and greedy["filtered"]["kept"] == 1
    # given the last token only, as `--last-token-only` decodes
    last = load(client.text_model).next_token_distribution("u", top_k=8).to_json()
    assert [r["id"] for r in raw["last_token"]["top"]] == [r["id"] for r in last["top"]]


def test_distribution_of_a_signal_model_covers_every_bin(client):
    body = {"model": client.signal_model, "prompt": "0,1,0,-1,0,1,0,-1", "top": 5, "top_p": 0.5}
    data = client.post("/api/distribution", json=body).json()
    bins = data["bins"]
    assert len(bins["values"]) == len(bins["probability"]) == 32
    import torch

    from nexttoken.analysis import next_token_probs

    lm = load(client.signal_model)
    probs = next_token_probs(lm.model, torch.tensor(lm.encode(body["prompt"])))
    np.testing.assert_allclose(
        bins["probability"], probs[lm.tokenizer.n_special :].numpy(), rtol=1e-6
    )
    assert sum(bins["filtered"]) == pytest.approx(1.0)  # PAD/EOS/MASK are never drawn
    assert bins["values"] == sorted(bins["values"])


def test_frequencies_match_the_cli(client, capsys):
    body = {"model": client.text_model, "prompt": "see", "n": 500, "top": 5, "seed": 2}
    cli = _cli_json(
        capsys,
        [
            "sample-frequencies",
            client.text_model,
            "see",
            "--n",
            "500",
            "--top",
            "5",
            "--seed",
            "2",
            "--json",
        ],
    )
    assert client.post("/api/frequencies", json=body).json() == cli


def test_steps_give_a_distribution_per_step_that_the_path_was_drawn_from(client):
    body = {
        "model": client.signal_model,
        "series": np.sin(np.arange(30) / 2).tolist(),
        "horizon": 5,
    }
    data = client.post("/api/steps", json=body).json()
    probs = np.array(data["probs"])
    assert probs.shape == (5, 32) and len(data["path"]) == 5 and len(data["bin_values"]) == 32
    assert ((probs.sum(1) > 0.5) & (probs.sum(1) <= 1 + 1e-5)).all()  # bins only: PAD etc. left out
    chosen = np.array(data["chosen"])
    assert (probs[np.arange(5), chosen] > 0).all()  # each drawn value had probability > 0
    np.testing.assert_allclose(np.array(data["bin_values"])[chosen], data["path"], rtol=1e-6)


def test_oscillator_draws_a_family(client):
    data = client.get(
        "/api/oscillator", params={"family": "square", "length": 64, "seed": 1}
    ).json()
    assert data["family"] == "square" and len(data["values"]) == 64
    assert client.get("/api/oscillator", params={"family": "nope"}).status_code == 400


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/api/next", {"model": "nope", "prompt": "x"}, 404, "unknown model"),
        ("/api/next", {"model": "SIGNAL", "prompt": "hello there"}, 400, "not a number"),
        ("/api/next", {"model": "TEXT", "prompt": "see you " * 20}, 422, "context window of 32"),
        ("/api/next", {"model": "TEXT", "prompt": 5}, 400, "'prompt' must be text"),
        ("/api/next", {"model": "TEXT", "prompt": "see", "top": 0}, 400, "'top'"),
        (
            "/api/generate",
            {"model": "TEXT", "prompt": "see", "temperature": -1},
            400,
            "'temperature' must be between 0 and 100 (got -1)",
        ),
        (
            "/api/generate",
            {"model": "TEXT", "prompt": "see", "top_p": 1.5},
            400,
            "'top_p' must be between 0 and 1 (got 1.5)",
        ),
        (
            "/api/generate",
            {"model": "TEXT", "prompt": "see", "top_p": 0},
            400,
            "'top_p' must be between 0 and 1 (got 0)",
        ),
        (
            "/api/generate",
            {"model": "TEXT", "prompt": "see", "temperature": "hot"},
            400,
            "'temperature' must be a number (got 'hot')",
        ),
        (
            "/api/generate",
            {"model": "TEXT", "prompt": "see", "max_new_tokens": 10**6},
            400,
            "max_new_tokens",
        ),
        ("/api/forecast", {"model": "TEXT", "series": [1, 2, 3]}, 400, "signal model"),
        ("/api/forecast", {"model": "SIGNAL"}, 400, "'series'"),
        (
            "/api/forecast",
            {"model": "SIGNAL", "series": ["a", "b"]},
            400,
            "'series' must be a list",
        ),
        ("/api/forecast", {"model": "SIGNAL", "series": [None, None]}, 400, "no observed values"),
        ("/api/forecast", {"model": "SIGNAL", "series": [1, 2], "horizon": 0}, 400, "'horizon'"),
        ("/api/forecast", {"model": "SIGNAL", "csv": "a,b\nx,y\n"}, 400, "not a number"),
    ],
)
def test_bad_input_is_a_4xx_that_names_the_problem(client, path, body, status, words):
    body = {
        k: {"TEXT": client.text_model, "SIGNAL": client.signal_model}.get(v, v)
        if k == "model"
        else v
        for k, v in body.items()
    }
    res = client.post(path, json=body)
    assert res.status_code == status, res.text
    assert words in res.json()["error"]


def test_malformed_and_oversized_bodies_are_refused(client):
    res = client.post(
        "/api/next", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert res.status_code == 400 and "not valid JSON" in res.json()["error"]
    res = client.post("/api/next", json=[1, 2])
    assert res.status_code == 400 and "JSON object" in res.json()["error"]
    big = b'{"model": "x", "csv": "' + b"1," * (25 * 1024 * 1024) + b'"}'  # a 50 MB upload
    assert len(big) > MAX_BODY
    res = client.post("/api/forecast", content=big, headers={"content-type": "application/json"})
    assert res.status_code == 413 and "MB" in res.json()["error"]


def test_the_page_and_its_files_are_served_and_nothing_else(client):
    page = client.get("/")
    assert page.status_code == 200 and "nexttoken explorer" in page.text
    assert "http" not in page.text.replace("http://www.w3.org", "")  # no CDN: offline
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    assert client.get("/static/../server.py").status_code == 404
    assert client.get("/api/nothing").status_code == 404


def test_a_masked_lm_is_listed_but_cannot_predict(tmp_path, signal_checkpoint):
    import torch

    from nexttoken import SignalTokenizer

    tok = SignalTokenizer(n_bins=16)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(
            vocab_size=tok.vocab_size,
            context_length=16,
            n_layer=1,
            n_head=2,
            n_embd=16,
            objective="mlm",
        )
    )
    from nexttoken.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "mlm", model, tok, step=0)
    with TestClient(create_app(ModelPool([str(tmp_path / "mlm")]))) as c:
        assert c.get("/api/models").json()["models"][0]["objective"] == "mlm"
        res = c.post("/api/next", json={"model": str(tmp_path / "mlm"), "prompt": "1,2"})
        assert res.status_code == 400 and "masked LM" in res.json()["error"]


def test_serve_cli_refuses_a_bad_port_and_offers_the_demo_model(tmp_path, monkeypatch, capsys):
    from nexttoken.cli.serve import default_models

    assert main(["serve", "signals-small", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    assert main(["serve", "signals-small", "--batch-max-wait-ms", "-1"]) == 2
    assert "--batch-max-wait-ms must be between 0 and 1000" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert "runs/demo" not in default_models() and "signals-small" in default_models()
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "runs" / "demo" / "config.json").write_text("{}")
    assert default_models()[0] == "runs/demo"


def test_the_pool_passes_the_wait_for_callers_to_each_batcher():
    pool = ModelPool(["signals-small"], batch_max_wait=0.0)
    assert pool.batchers["signals-small"].max_wait == 0.0
    assert ModelPool(["signals-small"]).batchers["signals-small"].max_wait == 0.05


def test_infinity_and_nan_in_the_json_are_a_400_not_a_500(client):
    for word in (b"Infinity", b"NaN"):
        body = b'{"model": "%s", "prompt": "see", "top": %s}' % (client.text_model.encode(), word)
        res = client.post("/api/next", content=body, headers={"content-type": "application/json"})
        assert res.status_code == 400 and "finite number" in res.json()["error"]


def test_forecast_takes_a_trend_choice_and_steps_show_the_model_alone(client):
    t = np.arange(40)
    body = {"model": client.signal_model, "series": (3.0 * t + np.sin(t)).tolist()}
    body |= {"horizon": 4, "samples": 2, "paths": True}
    data = client.post("/api/forecast", json={**body, "trend": "linear"}).json()
    assert data["series"][0]["trend_removed"] is True
    data = client.post("/api/forecast", json={**body, "trend": "none"}).json()
    assert data["series"][0]["trend_removed"] is False
    # a known season: taken out with trend auto (4 cycles of 10 in the 40 steps), said so
    wavy = {**body, "series": (5.0 + np.tile([0, 3, 6, 2, -1, -4, -6, -3, 1, 2], 4)).tolist()}
    data = client.post("/api/forecast", json={**wavy, "season": [10]}).json()
    assert data["series"][0]["season_removed"] is True
    data = client.post("/api/forecast", json={**wavy, "season": [10], "trend": "none"}).json()
    assert data["series"][0]["season_removed"] is False
    for bad in ([0], [2.5], "10", [10] * 5):
        r = client.post("/api/forecast", json={**wavy, "season": bad})
        assert r.status_code == 400 and "season" in r.json()["error"], (bad, r.text)
    r = client.post("/api/forecast", json={**body, "trend": "cubic"})
    assert r.status_code == 400 and "'trend' must be one of auto, linear, none" in r.json()["error"]
    # the steps are the model's own distributions: they take no trend (nor paths, samples)
    steps_body = {"model": client.signal_model, "series": body["series"], "horizon": 4}
    steps = client.post("/api/steps", json=steps_body)
    assert steps.status_code == 200 and len(steps.json()["path"]) == 4
    refused = client.post("/api/steps", json={**steps_body, "trend": "linear"})
    assert refused.status_code == 400
    assert "'trend' is not a key of this request; the keys are: model," in refused.json()["error"]


def test_concurrent_requests_are_batched_and_each_gets_what_it_gets_alone(
    text_checkpoint, signal_checkpoint
):
    import threading

    pool = ModelPool([text_checkpoint, signal_checkpoint], batch_window=0.3)
    t = np.arange(30)
    bodies = (
        [
            (
                "/api/forecast",
                {
                    "model": signal_checkpoint,
                    "series": (np.sin(2 * np.pi * t / p) * (i + 1)).tolist(),
                    "horizon": 6,
                    "samples": 5,
                    "seed": i,
                    "trend": "none",
                },
            )
            for i, p in enumerate((6, 7, 9, 11))
        ]
        + [
            (
                "/api/generate",
                {"model": text_checkpoint, "prompt": p, "max_new_tokens": 8, "seed": i},
            )
            for i, p in enumerate(("see", "you", "sea", "the"))
        ]
        + [
            ("/api/next", {"model": text_checkpoint, "prompt": p, "top": 5})
            for p in ("see y", "s", "you see")
        ]
    )
    with TestClient(create_app(pool)) as c:
        alone = [c.post(path, json=body).json() for path, body in bodies]
        together: list = [None] * len(bodies)
        barrier = threading.Barrier(len(bodies))

        def call(i):
            barrier.wait()
            together[i] = c.post(bodies[i][0], json=bodies[i][1]).json()

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        status = c.get("/api/status").json()["models"]
    for (path, _), a, b in zip(bodies, alone, together):
        if path == "/api/next":  # probabilities may differ in the last bits of a float
            assert [r["id"] for r in a["top"]] == [r["id"] for r in b["top"]]
            np.testing.assert_allclose(
                [r["probability"] for r in a["top"]],
                [r["probability"] for r in b["top"]],
                rtol=1e-5,
            )
        else:
            assert a == b  # the same tokens, the same forecast rows
    assert status[signal_checkpoint]["largest_batch"] >= 2
    assert status[text_checkpoint]["largest_batch"] >= 2
    assert status[signal_checkpoint]["queued"] == 0


def test_each_model_is_loaded_and_run_on_its_own_thread(
    text_checkpoint, signal_checkpoint, monkeypatch
):
    import threading

    import nexttoken.server as server

    loaded_on = []
    real_loaded = server._loaded

    def loaded(*args):
        loaded_on.append(threading.current_thread())
        return real_loaded(*args)

    monkeypatch.setattr(server, "_loaded", loaded)
    pool = ModelPool([text_checkpoint, signal_checkpoint, text_checkpoint])
    assert list(pool.batchers) == [text_checkpoint, signal_checkpoint]  # one per model
    threads = {m: b.call(lambda: threading.current_thread()) for m, b in pool.batchers.items()}
    assert loaded_on == [threads[text_checkpoint], threads[signal_checkpoint]]
    assert len(set(threads.values())) == 2 and threading.current_thread() not in threads.values()
    seen: list[tuple[str, threading.Thread]] = []

    def spy(fn):
        def wrapped(lm, *args):
            seen.append((fn.__name__, threading.current_thread()))
            return fn(lm, *args)

        return wrapped

    for name in ("distribution_json", "frequencies_json"):
        monkeypatch.setattr(server, name, spy(getattr(server, name)))
    with TestClient(create_app(pool)) as c:
        body = {"model": text_checkpoint, "prompt": "see", "top": 3}
        assert c.post("/api/distribution", json=body).status_code == 200
        body = {"model": text_checkpoint, "prompt": "see", "n": 10, "seed": 0}
        assert c.post("/api/frequencies", json=body).status_code == 200
        assert c.post("/api/next", json={"model": text_checkpoint, "prompt": "s"}).is_success
    assert ("distribution_json", threads[text_checkpoint]) in seen
    assert ("frequencies_json", threads[text_checkpoint]) in seen
    with pytest.raises(server.ApiError, match="unknown model"):
        pool.run("nope", lambda lm: None)


def test_every_example_in_the_schema_is_answered(client):
    # /docs fills these in for "Try it out": each names a loaded model of the right kind
    spec = client.get("/openapi.json").json()
    routes = {
        "NextRequest": "/api/next",
        "GenerateRequest": "/api/generate",
        "ForecastRequest": "/api/forecast",
        "StepsRequest": "/api/steps",
        "DistributionRequest": "/api/distribution",
        "FrequenciesRequest": "/api/frequencies",
    }
    for name, path in routes.items():
        (example,) = spec["components"]["schemas"][name]["examples"]
        assert example["model"] in (client.text_model, client.signal_model)
        res = client.post(path, json=example)
        assert res.status_code == 200, (path, res.text)
