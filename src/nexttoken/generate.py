"""The autoregressive loop: prefill once, then one position per new token with a static KV cache.

The context window
------------------
Each new token is predicted from at most ``context_length`` tokens. A prompt longer than
the window is cropped to its last window (with one warning). When a sequence outgrows the
window, the window jumps forward so that it keeps the last ``context_length - slide`` tokens
(``slide`` defaults to a quarter of the window) and the cache is rebuilt from those in one
pass; the uncached path (``use_cache=False``) follows the same rule, so both give the same
tokens. With ``last_token_only=True`` each token is predicted from the previous token alone,
at position 0: the lecture's p(t_i | t_{i-1}) question.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from .decoding import Decoder
from .model import GPT, KVCache
from .sampling import apply_repetition_penalty, check_sampling_args, gumbel_noise, sample

__all__ = ["generate", "stream"]


# Uniforms drawn per call for the sampling race: up to this many (256 KiB), covering as many
# steps as fit. A CPU generator gives the same numbers as one draw per step.
_NOISE_NUMBERS = 1 << 16


def _prompt_groups(
    rows: torch.Tensor, n_prompts: int, run: int | None = None
) -> torch.Tensor | None:
    """If the rows come in equal runs of one prompt each (prompt index ``rows``), the prompt of
    each run in order; otherwise None. The runs are ``run`` rows long when given (the groups of
    ``row_generators``: calls batched together, two of which may share a prompt), else
    ``B / n_prompts`` (one run per distinct prompt)."""
    B = rows.shape[0]
    R = run if run is not None else B // max(1, n_prompts)
    if R < 1 or B % R:
        return None
    runs = rows.view(B // R, R)
    if not bool((runs == runs[:, :1]).all()):
        return None
    return runs[:, 0]


def _window_start(n: int, start: int, window: int, keep: int) -> int:
    """Where the window begins when predicting token ``n`` (``n`` tokens so far)."""
    return n - keep if n - start > window else start


class _Loop:
    """The state of one :func:`_run`: the sequence being written, the window, the caches and
    the sampling settings, with one method per part of a step."""

    def __init__(
        self,
        model: GPT,
        ids: torch.Tensor,
        max_new_tokens: int,
        *,
        greedy: bool,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        min_p: float | None,
        repetition_penalty: float | None,
        seed: int | None,
        generator: torch.Generator | None,
        last_token_only: bool,
        suppress_ids: Sequence[int] | None,
        use_cache: bool,
        slide: int | None,
        eos_id: int | None,
        compile: bool,
        cuda_graph: bool = False,
        row_generators: Sequence[tuple[int, torch.Generator | None]] | None = None,
    ):
        _check_args(model, ids, max_new_tokens)
        check_sampling_args(temperature, top_k, top_p, min_p, repetition_penalty)
        self.model, self.last_token_only = model, last_token_only
        self.compile = compile
        # both take the fixed-shape step (the whole cache, written at a tensor index)
        self.static = compile or cuda_graph
        self.cuda_graph = cuda_graph
        self.use_cache, self.eos_id = use_cache, eos_id
        self.window = window = model.config.context_length
        slide = max(1, window // 4) if slide is None else slide
        if not 1 <= slide <= window:
            raise ValueError(
                f"slide must be between 1 and the context window ({window}); got {slide}"
            )
        self.keep = window - slide
        self.temperature = 0.0 if greedy else temperature
        self.top_k, self.top_p, self.min_p = top_k, top_p, min_p
        self.repetition_penalty = repetition_penalty
        self.device = device = next(model.parameters()).device
        if generator is None and seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
        self.generator = generator
        groups = [(ids.shape[0], generator)] if row_generators is None else list(row_generators)
        if sum(rows for rows, _ in groups) != ids.shape[0] or any(r < 1 for r, _ in groups):
            raise ValueError(
                f"row_generators must cover the {ids.shape[0]} rows in groups of at least one row "
                f"(got {[r for r, _ in groups]})"
            )
        # Each group of rows draws its race numbers from its own generator, in blocks sized as
        # if it ran alone: rows batched with others get the very numbers they would alone.
        self.groups = [_Noise(rows, gen) for rows, gen in groups]
        self.bias = None
        if suppress_ids:
            self.bias = torch.zeros(model.config.vocab_size, device=device)
            self.bias[list(suppress_ids)] = float("-inf")
        self.B, self.T0 = B, T0 = ids.shape
        self.end = T0 + max_new_tokens
        with torch.inference_mode():  # internal, like the caches; callers get normal tensors
            self.seq = torch.empty(B, self.end, dtype=torch.long, device=device)
            self.seq[:, :T0] = ids.to(device)
        self.start = 0
        if T0 > window and not last_token_only:
            warnings.warn(
                f"the prompt has {T0} tokens, more than the context window of {window}; "
                f"the model sees only its last {window}",
                stacklevel=4,
            )
            self.start = T0 - window
        self.switch = self.was_training = False

    def enter(self) -> None:
        """Put the model in eval mode, build the decoder and the caches."""
        model = self.model
        self.was_training = model.training
        # eval() and train() walk every module: skip them for a model already in eval mode
        self.switch = any(m.training for m in model.modules())
        if self.switch:
            model.eval()
        with torch.no_grad():  # the decoder's views of the weights, without autograd
            decoder = Decoder(model)
        # One-token steps go through the decoder (fewer ops than forward); compiled on request,
        # and on a GPU captured in a CUDA graph on request.
        self.decode = _compiled_step(model, decoder) if self.compile else decoder.step
        self.graphed: _GraphedStep | None = None
        # The caches never leave the loop: made as inference tensors, their views and in-place
        # writes skip autograd's version and view tracking (~4% of a small step).
        with torch.inference_mode():
            self._make_caches()

    def exit(self) -> None:
        if self.switch:
            self.model.train(self.was_training)

    def _make_caches(self) -> None:
        """Sample paths repeat their prompt: prefill each distinct prompt once. When the rows
        come in equal groups of one prompt each (one prompt x paths, or forecast's series x
        paths), the prompts' keys and values stay in a prefix cache, one row per prompt, that
        each group attends over; when the window slides while part of the prompt is still in
        it, that part becomes the new prefix (see :meth:`_slide_with_prefix`). Otherwise each
        prompt's keys and values are copied to its rows."""
        model, B, T0, start = self.model, self.B, self.T0, self.start
        if B == 1:
            unique = self.seq[:, start:T0]
            rows = torch.zeros(1, dtype=torch.long, device=self.device)
        else:
            unique, rows = torch.unique(self.seq[:, start:T0], dim=0, return_inverse=True)
        self.shared_prefill = self.use_cache and not self.last_token_only and unique.shape[0] < B
        self.cache: KVCache | None = None
        self.prefix: KVCache | None = None
        self.pos_buf = torch.zeros(1, dtype=torch.long, device=self.device)
        self.cached_upto = 0  # tokens of seq[start:] already in the cache (and prefix)
        self.run_rows = 0  # rows per prompt group when the prefix path is taken, else 0
        if self.use_cache and not self.last_token_only:
            P = T0 - start
            sizes = {g.rows for g in self.groups}
            run = sizes.pop() if len(self.groups) > 1 and len(sizes) == 1 else None
            groups = None
            if self.shared_prefill:
                groups = _prompt_groups(rows, unique.shape[0])
                if groups is None and run is not None:
                    groups = _prompt_groups(rows, unique.shape[0], run)
            if groups is not None and not self.static:
                unique = unique[groups]  # in the order of the rows' groups
                self.run_rows = B // unique.shape[0]
                self.prefix = model.new_cache(unique.shape[0], max_len=P)
                # each row's own tokens: the new ones, until the window slides; zeroing a
                # window's worth for 400 rows cost 15% (a prompt that fills the window slides
                # at its first new token: no own cache until then)
                self.cache = model.new_cache(B, max_len=min(self.window - P, self.end - T0))
            elif self.cuda_graph and self.device.type == "cuda":
                self.graphed = _graphed_step(model, self.decode, B)
                self.cache = self.graphed.cache  # static: the graph reads and writes it
            else:
                self.cache = model.new_cache(B)
                if self.shared_prefill:
                    self.cache.rows = rows
        self.unique, self.rows = unique, rows

    def logits(self, n: int) -> torch.Tensor:
        """The next-token logits ``(B, vocab)`` for position ``n`` (``n`` tokens so far)."""
        model, seq = self.model, self.seq
        if self.last_token_only:
            return model.last_logits(seq[:, n - 1 : n])[:, -1]
        if self.cache is None:
            self.start = _window_start(n, self.start, self.window, self.keep)
            return model.last_logits(seq[:, self.start : n])[:, -1]
        logits = self._cached_logits(n)
        self.cached_upto = n - self.start
        return logits

    def _cached_logits(self, n: int) -> torch.Tensor:
        model, seq, cache, T0 = self.model, self.seq, self.cache, self.T0
        assert cache is not None
        new_start = _window_start(n, self.start, self.window, self.keep)
        if new_start != self.start:
            self.start, self.cached_upto = new_start, 0
            # part of the prompt is still shared: worth a prefix when the rows' own tokens,
            # which then go one step at a time, are few next to it (a 512-step context slides
            # at its first new token: 1 against 384)
            if self.run_rows and new_start < T0 and 8 * (n - T0) <= T0 - new_start:
                return self._slide_with_prefix(n)
            if self.prefix is not None:  # the rows no longer share their window
                self.prefix, self.cache = None, model.new_cache(self.B)
                cache = self.cache
        prefix, upto = self.prefix, self.cached_upto
        if prefix is not None and n == T0:
            logits = model.last_logits(self.unique, cache=prefix, pos=0)[:, -1]
            return logits.repeat_interleave(self.B // self.unique.shape[0], dim=0)
        if self.shared_prefill and n == T0:
            return model.last_logits(self.unique, cache=cache, pos=0)[:, -1][self.rows]
        if n - self.start - upto != 1:
            return model.last_logits(seq[:, self.start + upto : n], cache=cache, pos=upto)[:, -1]
        last = seq.narrow(1, n - 1, 1)
        if prefix is not None:
            s = upto - prefix.max_len  # this token's entry in `cache`
            return self.decode(last, upto, cache, s + 1, slot=s, prefix=prefix)[:, -1]
        if self.graphed is not None:  # the captured step, replayed
            return self.graphed(last, upto)[:, -1]
        if self.static:  # fixed shapes: the whole cache, written at a tensor index
            self.pos_buf.fill_(upto)
            return self.decode(last, self.pos_buf, cache)[:, -1]
        # attend over the filled part of the cache only
        return self.decode(last, upto, cache, upto + 1)[:, -1]

    def _slide_with_prefix(self, n: int) -> torch.Tensor:
        """The window has just moved to ``self.start`` and still begins inside the prompt: that
        part of it, the same for every row of a group, is prefilled once per group as the new
        prefix, and each row's own tokens since the prompt (``n - T0``) go through prefix steps
        into its own cache. Instead of every row recomputing the whole window (a forecast of
        100 series x 20 paths from 512-step contexts spent 60% of its time there). Taken when
        the own tokens are at most an eighth of the shared part: each costs a sequential step,
        and with many of them one batched pass over every row's window is cheaper (estimated
        from the small model's costs: ~11 us a prefilled token, ~1 ms + ~36 us a row per step;
        the break-even lies between a seventh and half of the shared part, by the rows)."""
        model, seq, T0, R = self.model, self.seq, self.T0, self.run_rows
        shared = T0 - self.start
        self.prefix = model.new_cache(self.B // R, max_len=shared)
        self.cache = model.new_cache(self.B, max_len=min(self.window - shared, self.end - T0))
        tails = seq[::R, self.start : T0]  # the first row of each group: the group's prompt
        model.last_logits(tails, cache=self.prefix, pos=0)
        logits = torch.empty(0)
        for j in range(T0, n):  # the rows' own tokens, one prefix step each
            upto = j - self.start
            s = upto - shared
            logits = self.decode(
                seq.narrow(1, j, 1), upto, self.cache, s + 1, slot=s, prefix=self.prefix
            )
        return logits[:, -1]

    def choose(self, logits: torch.Tensor, n: int) -> torch.Tensor:
        """The tokens ``(B,)`` drawn from ``logits`` under the loop's settings."""
        logits = logits.float()
        if self.bias is not None:
            logits = logits + self.bias
        if self.repetition_penalty is not None:
            logits = apply_repetition_penalty(logits, self.seq[:, :n], self.repetition_penalty)
        gumbel = None
        if self.temperature > 0:  # the race's random numbers, drawn for many steps at once
            vocab = logits.shape[-1]
            parts = [g.next(self.end - n, vocab, self.device) for g in self.groups]
            gumbel = parts[0] if len(parts) == 1 else torch.cat(parts)
        return sample(
            logits,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            min_p=self.min_p,
            generator=self.generator,
            gumbel=gumbel,
        )

    def finished(self, n: int) -> bool:
        """Whether every row has produced the end-of-sequence id (after writing column n)."""
        eos = self.eos_id
        return eos is not None and bool((self.seq[:, self.T0 : n + 1] == eos).any(-1).all())


class _Noise:
    """The sampling race's random numbers (as Gumbel noise) for ``rows`` rows from one
    generator: drawn for as many steps as fit in :data:`_NOISE_NUMBERS` at a time, one step's
    ``(rows, vocab)`` handed out per call."""

    def __init__(self, rows: int, generator: torch.Generator | None):
        self.rows, self.generator = rows, generator
        self.block: torch.Tensor | None = None
        self.next_row = 0

    def next(self, steps_left: int, vocab: int, device: torch.device) -> torch.Tensor:
        if self.block is None or self.next_row == self.block.shape[0]:
            k = min(steps_left, max(1, _NOISE_NUMBERS // (self.rows * vocab)))
            self.block = gumbel_noise((k, self.rows, vocab), self.generator, device)
            self.next_row = 0
        self.next_row += 1
        return self.block[self.next_row - 1]


def _check_args(model: GPT, ids: torch.Tensor, max_new_tokens: int) -> None:
    if ids.ndim != 2:
        raise ValueError(f"ids must be shaped (batch, T); got shape {tuple(ids.shape)}")
    if ids.shape[1] == 0:
        raise ValueError("the prompt is empty; give at least one token")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0 (got {max_new_tokens})")
    if not model.config.causal:
        raise ValueError("generate needs a causal model (objective='gpt'); this one is a masked LM")
    vocab = model.config.vocab_size
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(
            f"token ids must be in [0, {vocab}); got ids from {int(ids.min())} to {int(ids.max())}"
        )


def _run(
    model: GPT, ids: torch.Tensor, max_new_tokens: int, **settings: Any
) -> Iterator[tuple[torch.Tensor, int]]:
    """The loop behind :func:`stream` and :func:`generate`: writes each new token into the
    sequence ``seq`` ``(B, T0 + max_new_tokens)`` and yields ``(seq, n)`` after writing column n.

    ``seq`` is an inference tensor (made and written under ``torch.inference_mode``): callers
    hand out clones of it, made outside that mode, which are normal tensors."""
    loop = _Loop(model, ids, max_new_tokens, **settings)
    # generate() holds inference mode over the whole loop; stream() cannot (its caller's code
    # runs between steps), so there each step enters it
    step_mode: Any = (
        contextlib.nullcontext() if torch.is_inference_mode_enabled() else torch.inference_mode()
    )
    try:
        loop.enter()
        for n in range(loop.T0, loop.end):
            # inference mode: no autograd bookkeeping per op (about 10% of a small model's step)
            with step_mode:
                loop.seq.select(1, n).copy_(loop.choose(loop.logits(n), n))
            yield loop.seq, n
            if loop.finished(n):
                return
    finally:
        loop.exit()


def stream(
    model: GPT,
    ids: torch.Tensor,
    max_new_tokens: int,
    *,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    last_token_only: bool = False,
    suppress_ids: Sequence[int] | None = None,
    use_cache: bool = True,
    slide: int | None = None,
    eos_id: int | None = None,
    compile: bool = False,
    cuda_graph: bool = False,
    row_generators: Sequence[tuple[int, torch.Generator | None]] | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the new tokens one step at a time, each ``(B,)``; see :func:`generate`."""
    settings = dict(locals())  # the keywords, passed on as given
    del settings["model"], settings["ids"], settings["max_new_tokens"]
    for seq, n in _run(model, ids, max_new_tokens, **settings):
        yield seq[:, n].clone()


def _compiled_step(model: GPT, decoder: Decoder) -> Any:
    """A decoder's step through ``torch.compile`` (fixed shapes: recompiles per batch size).

    The compiled function is kept on the model, so later calls reuse it; it takes the
    weights of the decoder it is called with (Dynamo guards on them)."""
    step = getattr(model, "_compiled_decode_step", None)
    if step is None:
        step = torch.compile(Decoder.step, dynamic=False)
        model._compiled_decode_step = step  # type: ignore[assignment]
    return lambda *args, **kwargs: step(decoder, *args, **kwargs)


class _GraphedStep:
    """The fixed-shape one-token step over a static KV cache, captured in a CUDA graph and
    replayed for every later token (the gpt-fast recipe): one launch per token instead of
    one per operation. Inputs are copied into the graph's own buffers before each replay."""

    def __init__(self, decode: Any, cache: KVCache, batch: int, device: torch.device):
        self.decode, self.cache = decode, cache
        self.ids = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.graph: Any = None
        self.out: torch.Tensor | None = None

    def __call__(self, last: torch.Tensor, pos: int) -> torch.Tensor:
        self.ids.copy_(last)
        self.pos.fill_(pos)
        if self.graph is None:
            # Warm up on a side stream, then capture, with this step's own inputs: the warm-up
            # writes the same keys and values this step writes anyway.
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.decode(self.ids, self.pos, self.cache)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = self.decode(self.ids, self.pos, self.cache)
        self.graph.replay()
        assert self.out is not None
        return self.out


def _graphed_step(model: GPT, decode: Any, batch: int) -> _GraphedStep:
    """The model's captured step for ``batch`` rows, made on first use and kept on the model
    (with its static cache) for later calls; made anew when the weights moved."""
    weight = model.transformer.wte.weight
    key = (batch, weight.dtype, weight.device, weight.data_ptr())
    store: dict[Any, _GraphedStep] = model.__dict__.setdefault("_graphed_steps", {})
    if key not in store:
        store.clear()  # one batch size at a time: each holds a whole KV cache
        store[key] = _GraphedStep(decode, model.new_cache(batch), batch, weight.device)
    return store[key]


def generate(
    model: GPT,
    ids: torch.Tensor,
    max_new_tokens: int,
    *,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    last_token_only: bool = False,
    suppress_ids: Sequence[int] | None = None,
    use_cache: bool = True,
    slide: int | None = None,
    eos_id: int | None = None,
    compile: bool = False,
    cuda_graph: bool = False,
    row_generators: Sequence[tuple[int, torch.Generator | None]] | None = None,
) -> torch.Tensor:
    """Continue each row of ``ids`` ``(batch, T)`` by ``max_new_tokens`` -> ``(batch, T + N)``.

    Parameters
    ----------
    greedy : take the argmax at every step (same as ``temperature=0``).
    temperature, top_k, top_p, min_p : sampling settings (:mod:`nexttoken.sampling`).
    repetition_penalty : CTRL's penalty on tokens already in the sequence (1 = none).
    seed, generator : a seed (or a ``torch.Generator``) makes sampling repeatable.
    last_token_only : predict each token from the previous token alone.
    suppress_ids : ids never to produce (a signal model's PAD/EOS/MASK).
    use_cache : reuse keys and values of earlier positions (same tokens, much faster).
    slide : how far the window jumps when a sequence outgrows it.
    eos_id : stop once every row has produced this id (the output is then shorter).
    compile : run each one-token step through ``torch.compile`` (fixed-shape cache; the first
        call per batch size compiles, 3-5 s for the small benchmark model on a 2-core CPU, and
        later calls reuse it). Meant for GPUs:
        on a CPU it was slower than the default eager step (docs/performance.md), and it gives
        up the shared-prompt cache of sample paths.
    cuda_graph : on a CUDA device, capture the fixed-shape one-token step (compiled too with
        ``compile=True``, as gpt-fast does) in a CUDA graph over a static KV cache, once per
        batch size, and replay it for every token. The graph and its cache stay on the model
        for later calls of that batch size (one at a time: they share the cache). Same tokens
        as the eager step. Elsewhere it runs the same fixed-shape step without a graph.
    row_generators : ``(rows, generator)`` pairs, in row order, covering every row: each group
        of rows samples from its own generator (instead of ``seed``/``generator``), drawing the
        same numbers it would draw alone. Requests batched together (``nexttoken serve``) each
        keep their own seed this way.
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    settings = dict(locals())  # the keywords, passed on as given
    del settings["model"], settings["ids"], settings["max_new_tokens"]
    out, end = None, ids.shape[-1]
    with torch.inference_mode():
        for seq, n in _run(model, ids, max_new_tokens, **settings):
            out, end = seq, n + 1
    if out is None:  # no new tokens
        return ids.to(next(model.parameters()).device).clone()
    # a clone made here, outside inference mode, is a normal tensor (one copy of the ids)
    return out.clone() if end == out.shape[1] else out[:, :end].clone()
