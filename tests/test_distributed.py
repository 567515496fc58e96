"""Data-parallel training (torchrun / DDP on gloo), gradient accumulation and checkpointing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from nexttoken import GPT, GPTConfig, SignalTokenizer, TrainConfig, train
from nexttoken.checkpoint import model_tensors
from nexttoken.data import SeriesWindows

from .conftest import TINY_TRAIN_FLAGS


def _setup(**train_overrides):
    tok = SignalTokenizer(n_bins=32, low=-3.0, high=3.0)
    t = np.arange(120)
    series = np.stack([np.sin(2 * np.pi * t / p) for p in (7, 9, 11, 13, 17, 19)])
    data = SeriesWindows(series, tok, 16)
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=16, n_layer=2, n_head=2, n_embd=16)
    )
    config = TrainConfig(
        **{
            "steps": 4,
            "batch_size": 8,
            "lr": 1e-2,
            "eval_every": 2,
            "eval_batches": 1,
            "save_every": 2,
            "log_every": 1,
            "progress": False,
            **train_overrides,
        }
    )
    return model, tok, data, config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, out: str, results: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    model, tok, data, config = _setup(grad_accum_steps=2)
    train(model, tok, data, data, config, out)
    save_file(model_tensors(model), str(Path(results) / f"rank{rank}.safetensors"))


def _losses(out: Path) -> list[float]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if "loss" in json.loads(line)]


def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path):
    # 2 processes x 2 accumulation steps x 2 rows each = the single process's batch of 8.
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path / "ddp"), str(tmp_path)), nprocs=2, join=True)
    rank0 = load_file(str(tmp_path / "rank0.safetensors"))
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    model, tok, data, config = _setup()
    train(model, tok, data, data, config, tmp_path / "single")
    x, _ = data.batch(4, torch.Generator().manual_seed(5))
    ddp_model = GPT(model.config)
    missing, unexpected = ddp_model.load_state_dict(rank0, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}  # tied to wte
    torch.testing.assert_close(ddp_model.eval()(x), model.eval()(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_losses(tmp_path / "ddp"), _losses(tmp_path / "single"), rtol=1e-5)
    # Rank 0 alone wrote the checkpoint, and it holds the trained weights.
    saved = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    torch.testing.assert_close(
        saved["transformer.h.0.mlp.c_fc.weight"], rank0["transformer.h.0.mlp.c_fc.weight"]
    )


@pytest.mark.parametrize("option", ["grad_accum_steps", "gradient_checkpointing"])
def test_accumulation_and_checkpointing_leave_the_result_unchanged(tmp_path, option):
    model_a, tok, data, config = _setup()
    train(model_a, tok, data, data, config, tmp_path / "a")
    value = 4 if option == "grad_accum_steps" else True
    model_b, tok, data, config = _setup(**{option: value})
    train(model_b, tok, data, data, config, tmp_path / "b")
    # Same function: the logits agree. (Weights are not compared one by one: the gradient of the
    # key bias is zero up to rounding, and Adam turns that rounding noise into steps that
    # differ between runs while leaving the attention unchanged.)
    x, _ = data.batch(4, torch.Generator().manual_seed(5))
    torch.testing.assert_close(model_a.eval()(x), model_b.eval()(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(_losses(tmp_path / "a"), _losses(tmp_path / "b"), rtol=1e-5)
    assert model_b.gradient_checkpointing is False  # switched off again after training


def test_batch_that_does_not_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a multiple of grad_accum_steps=3"):
        TrainConfig(batch_size=8, grad_accum_steps=3)
    with pytest.raises(ValueError, match="precision must be fp32 or bf16"):
        TrainConfig(precision="fp16")


def test_torchrun_cli_trains_and_resumes_exactly(tmp_path):
    common = [*TINY_TRAIN_FLAGS, "--batch-size", "4", "--eval-every", "2", "--save-every", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        argv += ["--nproc_per_node=2", "-m", "nexttoken", "train", *args]
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)

    one = torchrun(*common, "--out", str(tmp_path / "one"), "--steps", "4")
    assert one.returncode == 0, one.stderr[-2000:]
    assert "on 2 processes" in one.stdout and one.stdout.count("done:") == 1
    half = torchrun(*common, "--out", str(tmp_path / "two"), "--steps", "2")
    assert half.returncode == 0, half.stderr[-2000:]
    rest = torchrun(*common, "--out", str(tmp_path / "two"), "--steps", "4", "--resume")
    assert rest.returncode == 0, rest.stderr[-2000:]
    a = load_file(str(tmp_path / "one" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name
