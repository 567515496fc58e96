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
from .model import GPT
from .sampling import apply_repetition_penalty, check_sampling_args, race_noise, sample

__all__ = ["generate", "stream"]


# Uniforms drawn per call for the sampling race: up to this many (256 KiB), covering as many
# steps as fit. A CPU generator gives the same numbers as one draw per step.
_NOISE_NUMBERS = 1 << 16


def _prompt_groups(rows: torch.Tensor, n_prompts: int) -> torch.Tensor | None:
    """If the rows come in ``n_prompts`` equal runs of one prompt each (prompt index ``rows``),
    the prompt of each run in order; otherwise None."""
    B = rows.shape[0]
    if B % n_prompts:
        return None
    first = rows[:: B // n_prompts]
    if not torch.equal(rows, first.repeat_interleave(B // n_prompts)):
        return None
    return first if first.unique().shape[0] == n_prompts else None


def _window_start(n: int, start: int, window: int, keep: int) -> int:
    """Where the window begins when predicting token ``n`` (``n`` tokens so far)."""
    return n - keep if n - start > window else start


def _run(
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
) -> Iterator[tuple[torch.Tensor, int]]:
    """The loop behind :func:`stream` and :func:`generate`: writes each new token into the
    sequence ``seq`` ``(B, T0 + max_new_tokens)`` and yields ``(seq, n)`` after writing column n.

    ``seq`` is an inference tensor (made and written under ``torch.inference_mode``): callers
    hand out clones of it, made outside that mode, which are normal tensors."""
    if ids.ndim != 2:
        raise ValueError(f"ids must be shaped (batch, T); got shape {tuple(ids.shape)}")
    if ids.shape[1] == 0:
        raise ValueError("the prompt is empty; give at least one token")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0 (got {max_new_tokens})")
    check_sampling_args(temperature, top_k, top_p, min_p, repetition_penalty)
    config = model.config
    if not config.causal:
        raise ValueError("generate needs a causal model (objective='gpt'); this one is a masked LM")
    vocab = config.vocab_size
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(
            f"token ids must be in [0, {vocab}); got ids from {int(ids.min())} to {int(ids.max())}"
        )
    window = config.context_length
    slide = max(1, window // 4) if slide is None else slide
    if not 1 <= slide <= window:
        raise ValueError(f"slide must be between 1 and the context window ({window}); got {slide}")
    keep = window - slide
    if greedy:
        temperature = 0.0
    device = next(model.parameters()).device
    if generator is None and seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    bias = None
    if suppress_ids:
        bias = torch.zeros(vocab, device=device)
        bias[list(suppress_ids)] = float("-inf")

    B, T0 = ids.shape
    with torch.inference_mode():  # internal, like the caches; callers get normal tensors
        seq = torch.empty(B, T0 + max_new_tokens, dtype=torch.long, device=device)
        seq[:, :T0] = ids.to(device)
    start = 0
    if T0 > window and not last_token_only:
        warnings.warn(
            f"the prompt has {T0} tokens, more than the context window of {window}; "
            f"the model sees only its last {window}",
            stacklevel=3,
        )
        start = T0 - window
    # Sample paths repeat their prompt: prefill each distinct prompt once. When the rows come in
    # equal groups of one prompt each (one prompt x paths, or forecast's series x paths), the
    # prompts' keys and values stay in a prefix cache, one row per prompt, that each group
    # attends over (until the window slides); otherwise each prompt's are copied to its rows.
    if B == 1:
        unique, rows = seq[:, start:T0], torch.zeros(1, dtype=torch.long, device=device)
    else:
        unique, rows = torch.unique(seq[:, start:T0], dim=0, return_inverse=True)
    shared_prefill = use_cache and not last_token_only and unique.shape[0] < B
    was_training = model.training
    # eval() and train() walk every module: skip them for a model already in eval mode
    switch = any(m.training for m in model.modules())
    if switch:
        model.eval()
    with torch.no_grad():  # the decoder's views of the weights, without autograd
        decoder = Decoder(model)
    # generate() holds inference mode over the whole loop; stream() cannot (its caller's code
    # runs between steps), so there each step enters it
    step_mode: Any = (
        contextlib.nullcontext() if torch.is_inference_mode_enabled() else torch.inference_mode()
    )
    # One-token steps go through the decoder (fewer ops than forward); compiled on request.
    step = _compiled_step(model, decoder) if compile else decoder.step
    prefix = None
    noise: torch.Tensor | None = None
    noise_row = 0
    try:
        cache = None
        # The caches never leave this function: made as inference tensors, their views and
        # in-place writes skip autograd's version and view tracking (~4% of a small step).
        with torch.inference_mode():
            pos_buf = torch.zeros(1, dtype=torch.long, device=device)
            if use_cache and not last_token_only:
                P = T0 - start
                groups = _prompt_groups(rows, unique.shape[0]) if shared_prefill else None
                if groups is not None and not compile and P < window:
                    unique = unique[groups]  # in the order of the rows' groups
                    prefix = model.new_cache(unique.shape[0], max_len=P)
                    cache = model.new_cache(B, max_len=window - P)
                else:
                    cache = model.new_cache(B)
                    if shared_prefill:
                        cache.rows = rows
        cached_upto = 0  # tokens of seq[start:] already in the cache (and prefix)
        for n in range(T0, T0 + max_new_tokens):
            # inference mode: no autograd bookkeeping per op (about 10% of a small model's step)
            with step_mode:
                if last_token_only:
                    logits = model.last_logits(seq[:, n - 1 : n])[:, -1]
                elif cache is None:
                    start = _window_start(n, start, window, keep)
                    logits = model.last_logits(seq[:, start:n])[:, -1]
                else:
                    new_start = _window_start(n, start, window, keep)
                    if new_start != start:
                        start, cached_upto = new_start, 0
                        if prefix is not None:  # the rows no longer share their window
                            prefix, cache = None, model.new_cache(B)
                    if prefix is not None and n == T0:
                        logits = model.last_logits(unique, cache=prefix, pos=0)[:, -1]
                        logits = logits.repeat_interleave(B // unique.shape[0], dim=0)
                    elif shared_prefill and n == T0:
                        logits = model.last_logits(unique, cache=cache, pos=0)[:, -1][rows]
                    elif n - start - cached_upto == 1:
                        last = seq.narrow(1, n - 1, 1)
                        if prefix is not None:
                            s = cached_upto - prefix.max_len  # this token's entry in `cache`
                            logits = step(last, cached_upto, cache, s + 1, slot=s, prefix=prefix)
                        elif compile:  # fixed shapes: the whole cache, written at a tensor index
                            pos_buf.fill_(cached_upto)
                            logits = step(last, pos_buf, cache)
                        else:  # attend over the filled part of the cache only
                            logits = step(last, cached_upto, cache, cached_upto + 1)
                        logits = logits[:, -1]
                    else:
                        logits = model.last_logits(
                            seq[:, start + cached_upto : n], cache=cache, pos=cached_upto
                        )[:, -1]
                    cached_upto = n - start
                logits = logits.float()
                if bias is not None:
                    logits = logits + bias
                if repetition_penalty is not None:
                    logits = apply_repetition_penalty(logits, seq[:, :n], repetition_penalty)
                log_u = None
                if temperature > 0:  # the race's random numbers, drawn for many steps at once
                    if noise is None or noise_row == noise.shape[0]:
                        k = min(T0 + max_new_tokens - n, max(1, _NOISE_NUMBERS // (B * vocab)))
                        noise, noise_row = race_noise((k, B, vocab), generator, device), 0
                    log_u, noise_row = noise[noise_row], noise_row + 1
                seq[:, n] = sample(
                    logits,
                    temperature=temperature,
                    top_k=top_k,
                    top_p=top_p,
                    min_p=min_p,
                    generator=generator,
                    log_u=log_u,
                )
            yield seq, n
            if eos_id is not None and bool((seq[:, T0 : n + 1] == eos_id).any(-1).all()):
                return
    finally:
        if switch:
            model.train(was_training)


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
