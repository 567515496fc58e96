import warnings

import pytest
import torch

from nexttoken import GPT, generate, stream
from nexttoken.decoding import Decoder

from .conftest import tiny_config

# Model variants whose decoding steps are checked against the forward
STEP_VARIANTS = [
    dict(positions="learned"),
    dict(positions="sinusoidal"),
    dict(positions="rope"),
    dict(norm_position="post", activation="gelu"),
    dict(norm="rmsnorm", bias=False, activation="relu", positions="none"),
]


def _model(**overrides):
    torch.manual_seed(0)
    return GPT(tiny_config(**overrides)).eval()


@torch.no_grad()
def _perturb_vectors(model):
    """Biases and norm gains start at 0 and 1: move them, so that a step that drops or misplaces
    one of them gives other numbers than the forward."""
    for p in model.parameters():
        if p.ndim == 1:
            p.add_(torch.randn_like(p), alpha=0.3)


@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_cached_equals_uncached_token_for_token_across_window_slides(positions):
    model = _model(positions=positions)
    ids = torch.randint(3, 35, (3, 10))
    # 60 new tokens with a 32-token window: the window slides several times.
    kw = dict(temperature=0.8, top_k=20, seed=5)
    fast = generate(model, ids, 60, use_cache=True, **kw)
    slow = generate(model, ids, 60, use_cache=False, **kw)
    assert torch.equal(fast, slow)
    greedy_fast = generate(model, ids, 60, greedy=True)
    greedy_slow = generate(model, ids, 60, greedy=True, use_cache=False)
    assert torch.equal(greedy_fast, greedy_slow)
    # Sample paths of one prompt: its keys and values are shared (a batch-1 prefix cache) until
    # the window slides, then every row gets its own cache.
    paths = ids[:1].expand(4, -1)
    fast = generate(model, paths, 60, use_cache=True, **kw)
    slow = generate(model, paths, 60, use_cache=False, **kw)
    assert torch.equal(fast, slow)
    assert len({tuple(row.tolist()) for row in fast}) == 4  # the paths differ
    # ... also when the prompt fills the window (no room for a shared prefix)
    full = torch.randint(3, 35, (1, model.config.context_length)).expand(3, -1)
    kw_full = dict(kw, seed=6)
    assert torch.equal(
        generate(model, full, 20, **kw_full), generate(model, full, 20, use_cache=False, **kw_full)
    )


def test_greedy_is_argmax_of_the_full_forward():
    model = _model()
    ids = torch.randint(0, 35, (2, 5))
    out = generate(model, ids, 8, greedy=True)
    assert out.shape == (2, 13) and torch.equal(out[:, :5], ids)
    for t in range(5, 13):
        assert torch.equal(out[:, t], model(out[:, :t])[:, -1].argmax(-1))


def test_shared_prompt_prefill_equals_separate_rows():
    model = _model()
    prompt = torch.randint(0, 35, (1, 12))
    together = generate(model, prompt.repeat(4, 1), 15, seed=2)
    # The same draws with a cache that was filled row by row (different prompts force that path).
    g = torch.Generator().manual_seed(2)
    rows = torch.cat([prompt.repeat(3, 1), torch.randint(0, 35, (1, 12))])
    separate = generate(model, rows, 15, generator=g)
    assert torch.equal(together[:3], separate[:3])


def test_race_drawn_for_many_steps_equals_one_draw_per_step():
    # generate draws the sampler's uniforms for many steps at once; on a CPU generator that is
    # the same stream of numbers as calling sample() once per step.
    from nexttoken.sampling import sample

    model = _model()
    ids = torch.randint(3, 35, (2, 6))
    out = generate(model, ids, 12, seed=4, temperature=0.9)
    g = torch.Generator().manual_seed(4)
    seq = ids
    with torch.no_grad():
        for _ in range(12):
            nxt = sample(model(seq)[:, -1], temperature=0.9, generator=g)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
    assert torch.equal(out, seq)


def test_generation_stops_once_every_row_has_produced_eos():
    model = _model()
    ids = torch.randint(3, 35, (2, 6))
    full = generate(model, ids, 20, seed=3)
    both = set(full[0, 6:].tolist()) & set(full[1, 6:].tolist())
    assert both, "the test needs a token both rows produce"
    eos = min(both)
    first = [int(torch.nonzero(full[r, 6:] == eos)[0]) for r in range(2)]
    out = generate(model, ids, 20, seed=3, eos_id=eos)
    end = 6 + max(first) + 1  # the step at which the later row produces it
    assert end < 26 and torch.equal(out, full[:, :end]) and out.is_contiguous()
    steps = list(stream(model, ids, 20, seed=3, eos_id=eos))
    assert torch.equal(torch.stack(steps, dim=1), out[:, 6:])


def test_same_seed_same_samples_different_seed_different():
    model = _model()
    ids = torch.randint(0, 35, (4, 6))
    a = generate(model, ids, 20, seed=1)
    assert torch.equal(a, generate(model, ids, 20, seed=1))
    assert not torch.equal(a, generate(model, ids, 20, seed=2))


def test_top_k_one_equals_greedy_in_the_loop():
    model = _model()
    ids = torch.randint(0, 35, (2, 6))
    assert torch.equal(
        generate(model, ids, 20, top_k=1, seed=0), generate(model, ids, 20, greedy=True)
    )


def test_last_token_only_uses_just_the_previous_token():
    model = _model()
    ids = torch.randint(0, 35, (1, 6))
    out = generate(model, ids, 10, greedy=True, last_token_only=True)
    for t in range(6, 16):
        assert out[0, t] == model(out[:, t - 1 : t])[0, -1].argmax()


def test_long_prompt_is_cropped_with_one_warning():
    model = _model()
    ids = torch.randint(0, 35, (1, 50))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = generate(model, ids, 5, greedy=True)
    assert out.shape == (1, 55)
    assert len(caught) == 1 and "context window of 32" in str(caught[0].message)
    expected = generate(model, ids[:, -32:], 5, greedy=True)
    assert torch.equal(out[:, 50:], expected[:, 32:])


def test_suppressed_ids_never_appear():
    model = _model()
    out = generate(
        model, torch.randint(0, 35, (8, 4)), 30, seed=0, temperature=2.0, suppress_ids=[0, 1, 2]
    )
    assert not torch.isin(out[:, 4:], torch.tensor([0, 1, 2])).any()


def test_stream_yields_each_step():
    model = _model()
    steps = list(stream(model, torch.randint(0, 35, (2, 4)), 7, greedy=True))
    assert len(steps) == 7 and all(s.shape == (2,) for s in steps)


def test_bad_inputs_are_clear():
    model = _model()
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 35\)"):
        generate(model, torch.tensor([[1, 99]]), 3)
    with pytest.raises(ValueError, match="empty"):
        generate(model, torch.zeros(1, 0, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="masked LM"):
        generate(_model(objective="mlm"), torch.tensor([[1, 2]]), 3)


@pytest.mark.parametrize("overrides", STEP_VARIANTS)
def test_fixed_shape_decode_step_matches_the_cached_forward(overrides):
    model = _model(parametrization="mup", mup_base_width=8, **overrides)
    _perturb_vectors(model)
    ids = torch.randint(3, 35, (2, 12))
    cache_a, cache_b = model.new_cache(2), model.new_cache(2)
    model(ids[:, :8], cache=cache_a, pos=0)
    model(ids[:, :8], cache=cache_b, pos=0)
    for t in range(8, 12):
        a = model(ids[:, t : t + 1], cache=cache_a, pos=t)
        pos = torch.tensor([t])
        if t % 2:  # fixed shapes: the whole cache, masked
            b = Decoder(model).step(ids[:, t : t + 1], pos, cache_b)
        elif t == 8:  # an int position: written with a plain copy
            b = Decoder(model).step(ids[:, t : t + 1], t, cache_b, length=t + 1)
        else:  # the filled part only
            b = Decoder(model).step(ids[:, t : t + 1], pos, cache_b, length=t + 1)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # several positions at once (T > 1) with a causal mask over the filled part
    a = model(ids[:, 8:12], cache=cache_a, pos=8)
    b = Decoder(model).step(ids[:, 8:12], torch.arange(8, 12), cache_b, length=12)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    b = Decoder(model).step(ids[:, 8:12], 8, cache_b, length=12)  # positions 8 .. 11
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides", STEP_VARIANTS)
def test_one_row_step_matches_the_cached_forward_and_the_batched_step(overrides):
    # One row, one token, an int position: the matrix-vector form of the step.
    model = _model(parametrization="mup", mup_base_width=8, **overrides)
    _perturb_vectors(model)
    ids = torch.randint(3, 35, (1, 12))
    cache_a, cache_b, cache_c = model.new_cache(1), model.new_cache(1), model.new_cache(2)
    with torch.no_grad():
        model(ids[:, :8], cache=cache_a, pos=0)
        model(ids[:, :8], cache=cache_b, pos=0)
        model(ids[:, :8].expand(2, -1), cache=cache_c, pos=0)
        for t in range(8, 12):
            a = model(ids[:, t : t + 1], cache=cache_a, pos=t)
            b = Decoder(model).step(ids[:, t : t + 1], t, cache_b, length=t + 1)
            c = Decoder(model).step(ids[:, t : t + 1].expand(2, -1), t, cache_c, length=t + 1)
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(c, b.expand(2, -1, -1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache_b.kv[0][:, :, :, :12], cache_a.kv[0][:, :, :, :12])
    # ... and inside generate, across window slides: the same tokens as without a cache
    kw = dict(temperature=0.8, top_k=20, seed=5)
    fast = generate(model, ids[:, :10], 60, **kw)
    assert torch.equal(fast, generate(model, ids[:, :10], 60, use_cache=False, **kw))


@pytest.mark.parametrize("positions", ["learned", "rope"])
@torch.no_grad()
def test_step_over_a_shared_prefix_matches_the_cached_forward(positions):
    from nexttoken.decoding import Decoder

    model = _model(positions=positions, norm_position="post")
    _perturb_vectors(model)
    prompts = torch.randint(3, 35, (2, 8))
    new = torch.randint(3, 35, (6, 4))  # rows 0-2 continue prompt 0, rows 3-5 prompt 1
    full = model(torch.cat([prompts.repeat_interleave(3, dim=0), new], dim=1))
    prefix, cache = model.new_cache(2, max_len=8), model.new_cache(6, max_len=24)
    model(prompts, cache=prefix, pos=0)
    decoder = Decoder(model)
    for j in range(4):
        pos = torch.tensor([8 + j]) if j % 2 else 8 + j  # tensor and int positions
        slot = torch.tensor([j]) if j % 2 else j
        logits = decoder.step(new[:, j : j + 1], pos, cache, j + 1, slot=slot, prefix=prefix)
        torch.testing.assert_close(logits[:, 0], full[:, 8 + j], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="one token per row"):
        decoder.step(new[:, :2], torch.tensor([8, 9]), cache, 2, prefix=prefix)
    with pytest.raises(ValueError, match="equal groups"):
        decoder.step(new[:5, :1], 8, model.new_cache(5, max_len=4), 1, prefix=prefix)


@pytest.mark.parametrize("order", ["grouped", "interleaved"])
def test_several_prompts_with_paths_equal_the_uncached_path(order):
    # grouped (p0 p0 p0 p1 p1 p1, as forecast batches series x paths): prompts shared through a
    # prefix cache; interleaved (p0 p1 p0 p1 ...): each prompt copied to its rows.
    model = _model()
    prompts = torch.randint(3, 35, (2, 10))
    ids = prompts.repeat_interleave(3, dim=0) if order == "grouped" else prompts.repeat(3, 1)
    kw = dict(temperature=0.9, seed=8)
    fast = generate(model, ids, 40, **kw)  # 50 > the 32-token window: slides too
    assert torch.equal(fast, generate(model, ids, 40, use_cache=False, **kw))


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("prompt_len", [32, 40, 31, 20])
def test_a_slide_inside_the_prompt_keeps_it_shared(monkeypatch, positions, prompt_len):
    """Prompts that fill the 32-token window (32), overflow it (40) or slide after 2 new tokens
    (31): when the window moves and still starts inside the prompt, that part is prefilled once
    per prompt and the rows' own tokens go through prefix steps; with 13 own tokens against 11
    of the prompt (20) every row recomputes its window instead. Every step's logits equal the
    uncached path's, for several prompts x paths and for calls batched with row generators."""
    import sys

    gen = sys.modules["nexttoken.generate"]  # (the package's ``generate`` is the function)
    model = _model(positions=positions)
    _perturb_vectors(model)
    slides: list[int] = []
    original = gen._Loop._slide_with_prefix

    def counted(self, n):
        slides.append(n)
        return original(self, n)

    monkeypatch.setattr(gen._Loop, "_slide_with_prefix", counted)
    seen: list[torch.Tensor] = []  # the logits every step samples from
    choose = gen._Loop.choose

    def recorded(self, logits, n):
        seen.append(logits.clone())
        return choose(self, logits, n)

    monkeypatch.setattr(gen._Loop, "choose", recorded)
    prompts = torch.randint(3, 35, (3, prompt_len))
    ids = prompts.repeat_interleave(4, dim=0)
    kw = dict(temperature=0.9, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 40-token prompt's cropping notice
        fast = generate(model, ids, 20, **kw)
        assert bool(slides) == (prompt_len != 20), slides
        fast_logits, seen[:] = list(seen), []
        assert torch.equal(fast, generate(model, ids, 20, use_cache=False, **kw))
        for a, b in zip(fast_logits, seen, strict=True):  # every step, not only the tokens
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        rows = [(4, torch.Generator().manual_seed(i)) for i in range(3)]
        batched = generate(model, ids, 20, row_generators=rows)
        rows = [(4, torch.Generator().manual_seed(i)) for i in range(3)]
        assert torch.equal(batched, generate(model, ids, 20, row_generators=rows, use_cache=False))
    assert len({tuple(r.tolist()) for r in fast[:4]}) > 1  # a prompt's paths differ


def test_compiled_step_path_gives_the_same_tokens(monkeypatch):
    # The loop's compile=True branch, with the step left uncompiled (compiling takes a minute
    # on CPU; benchmarks/generate.py --compile measures the compiled one).
    import importlib

    g = importlib.import_module("nexttoken.generate")  # the package's `generate` is the function

    monkeypatch.setattr(g, "_compiled_step", lambda model, decoder: decoder.step)
    model = _model()
    ids = torch.randint(3, 35, (3, 10))
    kw = dict(temperature=0.9, seed=3)
    assert torch.equal(generate(model, ids, 60, compile=True, **kw), generate(model, ids, 60, **kw))
    same = ids[:1].expand(4, -1)  # shared prefill of one prompt, then the step path
    assert torch.equal(
        generate(model, same, 30, compile=True, **kw), generate(model, same, 30, **kw)
    )


def test_a_training_model_decodes_in_eval_mode_and_is_given_back_training():
    model = _model(dropout=0.5)
    ids = torch.randint(3, 35, (2, 6))
    expected = generate(model.eval(), ids, 8, greedy=True)
    model.train()
    assert torch.equal(generate(model, ids, 8, greedy=True), expected)  # no dropout applied
    assert all(m.training for m in model.modules())
    model.eval()
    assert torch.equal(generate(model, ids, 8, greedy=True), expected)
    assert not any(m.training for m in model.modules())


def test_outputs_are_ordinary_tensors_a_caller_can_write_to():
    # generate works on inference tensors inside; what it hands out must not be one
    model = _model()
    ids = torch.randint(3, 35, (2, 6))
    for out in (
        generate(model, ids, 5, seed=0),
        generate(model, ids, 5, seed=0, eos_id=3),
        next(iter(stream(model, ids, 5, seed=0))),
    ):
        assert not out.is_inference()
        out[..., 0] = 1  # in place, outside inference mode


def test_cuda_graph_falls_back_to_the_fixed_shape_step_off_gpus():
    """Without CUDA, cuda_graph=True runs the graph's fixed-shape step (whole cache, tensor
    index) eagerly: the very tokens of the default path, sliding window and sample paths too."""
    model = _model()
    ids = torch.randint(3, 35, (3, 10))
    kw = dict(temperature=0.9, seed=5)
    assert torch.equal(
        generate(model, ids, 60, cuda_graph=True, **kw), generate(model, ids, 60, **kw)
    )
    same = ids[:1].expand(5, -1)
    assert torch.equal(
        generate(model, same, 30, cuda_graph=True, **kw), generate(model, same, 30, **kw)
    )
    greedy = generate(model, ids[:1], 50, greedy=True)
    assert torch.equal(generate(model, ids[:1], 50, greedy=True, cuda_graph=True), greedy)


def test_bf16_weights_decode():
    model = _model().to(torch.bfloat16)
    ids = torch.randint(3, 35, (2, 8))
    out = generate(model, ids, 20, seed=0)
    assert out.shape == (2, 28) and out.min() >= 0 and out.max() < model.config.vocab_size
    # the cache holds bf16 keys and values, as the weights are
    assert torch.equal(generate(model, ids, 20, greedy=True), generate(model, ids, 20, greedy=True))
