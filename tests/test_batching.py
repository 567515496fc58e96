"""Concurrent calls decoded together: each gets exactly what it would get alone."""

import threading
import time

import numpy as np
import pytest
import torch

from nexttoken import GPT, GPTConfig, LanguageModel, SignalTokenizer, forecast, generate
from nexttoken.analysis import next_token_probs
from nexttoken.batching import Batcher


def _model(vocab=40, context=64, seed=0):
    torch.manual_seed(seed)
    return GPT(
        GPTConfig(vocab_size=vocab, context_length=context, n_layer=2, n_head=2, n_embd=32)
    ).eval()


def _together(fns):
    """Call every function at once from its own thread; their results in order."""
    out = [None] * len(fns)
    barrier = threading.Barrier(len(fns))

    def run(i):
        barrier.wait()
        out[i] = fns[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_row_generators_give_each_group_the_tokens_it_gets_alone():
    model = _model()
    prompts = torch.randint(0, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    rows = [2, 5, 1]
    ids = torch.cat([p.repeat(r, 1) for p, r in zip(prompts, rows)])
    settings = dict(temperature=0.9, top_k=20, top_p=0.95)
    gens = [torch.Generator().manual_seed(s) for s in (11, 12, 13)]
    together = generate(model, ids, 70, row_generators=list(zip(rows, gens)), **settings)
    start = 0
    for p, r, s in zip(prompts, rows, (11, 12, 13)):
        alone = generate(model, p.repeat(r, 1), 70, seed=s, **settings)
        assert torch.equal(together[start : start + r], alone)
        start += r
    with pytest.raises(ValueError, match="cover the 8 rows"):
        generate(model, ids, 3, row_generators=[(2, None), (5, None)])


def test_concurrent_generate_calls_run_as_one_batch_and_match_alone():
    model = _model()
    batcher = Batcher(model, window=0.2)
    prompts = [
        torch.randint(0, 40, (4, 12), generator=torch.Generator().manual_seed(i)) for i in range(6)
    ]
    fns = [
        (lambda p=p, i=i: batcher.generate(model, p, 20, seed=100 + i, temperature=0.8, top_k=10))
        for i, p in enumerate(prompts)
    ]
    results = _together(fns)
    for i, (p, got) in enumerate(zip(prompts, results)):
        assert torch.equal(got, generate(model, p, 20, seed=100 + i, temperature=0.8, top_k=10))
    status = batcher.status()
    assert status["requests"] == 6 and status["largest_batch"] >= 2  # they did share a batch
    assert status["queued"] == 0 and status["running"] == 0


def test_settings_that_differ_are_not_merged_and_still_right():
    model = _model()
    batcher = Batcher(model, window=0.2)
    p = torch.randint(0, 40, (1, 8), generator=torch.Generator().manual_seed(3))
    fns = [
        lambda: batcher.generate(model, p, 5, seed=1, temperature=0.5),
        lambda: batcher.generate(model, p, 5, seed=1, temperature=1.5),
        lambda: batcher.generate(model, p, 5, greedy=True),
        lambda: batcher.generate(model, p, 5, seed=2, last_token_only=True),
    ]
    got = _together(fns)
    assert torch.equal(got[0], generate(model, p, 5, seed=1, temperature=0.5))
    assert torch.equal(got[1], generate(model, p, 5, seed=1, temperature=1.5))
    assert torch.equal(got[2], generate(model, p, 5, greedy=True))
    assert torch.equal(got[3], generate(model, p, 5, seed=2, last_token_only=True))


def test_next_distributions_of_prompts_of_any_length_in_one_forward():
    model = _model()
    batcher = Batcher(model, window=0.2)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(0, 40, size=n).tolist() for n in (3, 17, 64, 1, 90)]
    got = _together([lambda p=p: batcher.next_probs(p) for p in prompts])
    for p, probs in zip(prompts, got):
        alone = next_token_probs(model, torch.tensor(p))
        assert probs.shape == alone.shape and probs.dtype == torch.float64
        torch.testing.assert_close(probs, alone, rtol=1e-5, atol=1e-9)
        assert int(probs.argmax()) == int(alone.argmax())
    assert batcher.status()["largest_batch"] >= 2
    # a call alone in its window runs the unbatched code: exactly equal
    assert torch.equal(
        batcher.next_probs(prompts[1]), next_token_probs(model, torch.tensor(prompts[1]))
    )


def test_a_bad_call_fails_alone_and_the_others_go_on():
    model = _model()
    batcher = Batcher(model, window=0.2)
    good = torch.randint(0, 40, (2, 6), generator=torch.Generator().manual_seed(0))
    bad = good.clone()
    bad[0, 0] = 999  # outside the vocabulary
    results = {}

    def call(name, ids):
        try:
            results[name] = batcher.generate(model, ids, 4, seed=5)
        except ValueError as e:
            results[name] = e

    _together([lambda: call("good", good), lambda: call("bad", bad)])
    assert torch.equal(results["good"], generate(model, good, 4, seed=5))
    assert isinstance(results["bad"], ValueError) and "token ids must be in" in str(results["bad"])


def test_concurrent_forecasts_through_the_batcher_equal_forecasts_alone():
    tok = SignalTokenizer(n_bins=32, low=-3, high=3)
    model = _model(vocab=tok.vocab_size, context=48)
    lm = LanguageModel(model, tok)
    batcher = Batcher(model, window=0.2)
    t = np.arange(40)
    contexts = [
        np.sin(2 * np.pi * t / p) * a + b
        for p, a, b in ((7, 1, 0), (9, 2, 1), (13, 0.5, -2), (5, 3, 4))
    ]
    kw = dict(horizon=12, num_samples=6, trend="none")
    got = _together(
        [
            lambda c=c, i=i: forecast(lm, c, seed=i, generate_fn=batcher.generate, **kw)
            for i, c in enumerate(contexts)
        ]
    )
    for i, (c, f) in enumerate(zip(contexts, got)):
        alone = forecast(lm, c, seed=i, **kw)
        np.testing.assert_array_equal(f.ids, alone.ids)
        np.testing.assert_array_equal(f.samples, alone.samples)
    assert batcher.status()["largest_batch"] >= 2


def test_calls_run_on_the_worker_thread_in_order_and_raise_their_errors():
    model = _model()
    batcher = Batcher(model, window=0.2)
    worker = batcher.call(lambda: threading.current_thread())
    assert worker is not threading.current_thread()
    names = _together([lambda: batcher.call(lambda: threading.current_thread())] * 4)
    assert names == [worker] * 4
    # a call from the worker itself runs at once (no deadlock)
    assert batcher.call(lambda: batcher.call(lambda: 7)) == 7
    with pytest.raises(ZeroDivisionError):
        batcher.call(lambda: 1 / 0)
    assert batcher.call(lambda a, b=0: a + b, 2, b=3) == 5  # the worker survived the error
    # batches run there too, and a call in their midst waits its turn
    p = torch.randint(0, 40, (3, 9), generator=torch.Generator().manual_seed(0))
    seen = []
    real = batcher._locked

    def spy(run, group):
        seen.append(threading.current_thread())
        return real(run, group)

    batcher._locked = spy
    got = _together(
        [lambda: batcher.generate(model, p, 12, seed=1), lambda: batcher.call(lambda: "ok")]
    )
    assert torch.equal(got[0], generate(model, p, 12, seed=1)) and got[1] == "ok"
    assert seen == [worker]


def test_a_batcher_can_load_its_model_on_its_own_thread():
    batcher = Batcher(None)
    model = batcher.call(_model)
    batcher.model = model
    p = torch.randint(0, 40, (2, 5), generator=torch.Generator().manual_seed(4))
    assert torch.equal(batcher.generate(model, p, 6, seed=3), generate(model, p, 6, seed=3))
    assert batcher.status()["requests"] == 2  # the load and the generate


def _rounds(batcher, model, clients, rounds, stagger=0.0):
    """``clients`` threads, each sending ``rounds`` generate calls one after another (client
    ``c`` sends its next ``c * stagger`` seconds after its answer comes); every answer compared
    with the same call alone."""
    prompts = [
        torch.randint(0, 40, (2, 6), generator=torch.Generator().manual_seed(c))
        for c in range(clients)
    ]
    got = {}

    def client(c):
        outs = []
        for r in range(rounds):
            if r:
                time.sleep(c * stagger)
            outs.append(batcher.generate(model, prompts[c], 5, seed=100 * c + r))
        return outs

    for c, outs in enumerate(_together([lambda c=c: client(c) for c in range(clients)])):
        for r, out in enumerate(outs):
            got[c, r] = out
            assert torch.equal(out, generate(model, prompts[c], 5, seed=100 * c + r))
    return got


def test_callers_who_come_back_are_waited_for_and_share_one_batch():
    model = _model()
    # generous patience: the test must not depend on how fast threads are scheduled
    batcher = Batcher(model, patience=200.0, max_wait=2.0)
    # the clients come back 0, 15, 30 and 45 ms after their answers: a batch taken when the
    # first is back holds one call unless the batcher waits for the others
    _rounds(batcher, model, clients=4, rounds=6, stagger=0.015)
    assert batcher.largest == 4
    assert batcher.batches <= 6 + 2, batcher.status()
    # every round after the class is known waited (the first two may not: nothing expected yet)
    assert batcher.patient >= 6 - 2, batcher.status()


def test_without_patience_the_batches_split_and_a_lone_caller_never_waits():
    model = _model()
    impatient = Batcher(model, patience=0.0)
    _rounds(impatient, model, clients=4, rounds=6, stagger=0.015)
    assert impatient.patient == 0
    # the same staggered clients as above, now in more batches than the patient bound
    assert impatient.batches > 6 + 2, impatient.status()
    alone = Batcher(model, patience=50.0, max_wait=2.0)
    _rounds(alone, model, clients=1, rounds=5)
    assert alone.patient == 0 and alone.batches == 5 and alone.status()["waited_ms"] < 1000
    with pytest.raises(ValueError, match="patience"):
        Batcher(model, patience=-1.0)


def test_identical_calls_are_computed_once_and_each_gets_what_it_gets_alone(monkeypatch):
    import nexttoken.batching as batching

    model = _model()
    batcher = Batcher(model, window=0.2)
    rows_run = []
    real_generate = batching.generate

    def counting(m, ids, n, **kw):
        rows_run.append(ids.shape[0])
        return real_generate(m, ids, n, **kw)

    monkeypatch.setattr(batching, "generate", counting)
    p = torch.randint(0, 40, (3, 8), generator=torch.Generator().manual_seed(5))
    q = torch.randint(0, 40, (3, 8), generator=torch.Generator().manual_seed(6))
    gens = [torch.Generator().manual_seed(s) for s in (1, 1, 1, 2)]
    calls = [(p, gens[0]), (p, gens[1]), (q, gens[2]), (p, gens[3]), (p, None), (p, None)]
    got = _together([lambda c=c: batcher.generate(model, c[0], 9, generator=c[1]) for c in calls])
    # p with seed 1 twice is one call; the unseeded two must differ, so each is its own
    assert sum(rows_run) == 3 * 5 and batcher.status()["shared"] == 1
    for (ids, gen), out, seed in zip(calls, got, (1, 1, 1, 2, None, None)):
        if seed is None:
            continue
        alone_gen = torch.Generator().manual_seed(seed)
        assert torch.equal(out, generate(model, ids, 9, generator=alone_gen))
        # the shared call's generator is left where drawing alone leaves it
        assert torch.equal(gen.get_state(), alone_gen.get_state())
    assert got[0] is not got[1] and torch.equal(got[0], got[1])


def test_one_generator_object_sent_twice_is_not_shared():
    model = _model()
    batcher = Batcher(model, window=0.2)
    p = torch.randint(0, 40, (2, 6), generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(3)
    outs = _together([lambda: batcher.generate(model, p, 5, generator=g)] * 2)
    assert batcher.status()["shared"] == 0
    assert not torch.equal(outs[0], outs[1])  # the second call drew the generator's next numbers


def test_identical_prompts_share_one_next_token_row():
    model = _model()
    batcher = Batcher(model, window=0.2)
    prompts = [[1, 2, 3], [1, 2, 3], [4, 5], [1, 2, 3]]
    got = _together([lambda p=p: batcher.next_probs(p) for p in prompts])
    assert batcher.status()["shared"] == 2
    for p, probs in zip(prompts, got):
        torch.testing.assert_close(probs, next_token_probs(model, torch.tensor(p)))


def test_functions_that_run_alone_are_not_waited_for():
    batcher = Batcher(_model(), patience=50.0, max_wait=2.0)
    _together([lambda: [batcher.call(lambda: sum(range(1000))) for _ in range(5)]] * 4)
    assert batcher.patient == 0 and batcher.status()["requests"] == 20
