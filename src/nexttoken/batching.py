"""Concurrent requests to one model, decoded together.

A classroom's thirty pages asking one model for next-token tables and forecasts at once would
otherwise queue one request behind another. A :class:`Batcher` collects the calls that reach
it from many threads while its model works on earlier ones (and, with a ``window``, for that
long after the first call) and runs them as one batch on its own worker thread:

- next-token distributions of any prompt lengths in one forward pass (prompts padded on the
  right: a causal model's positions never see the tokens after them, so each row's last
  logits are its own), each with its own softmax;
- :func:`nexttoken.generate` calls with the same prompt length, number of new tokens and
  decoding settings as one batch of rows, prefill and every decode step stacked, each call's
  rows sampling from its own generator (``row_generators``): a call gets the very random
  numbers, so the very tokens, it would get alone. ``nexttoken.forecast`` runs its sampling
  through it (``generate_fn``), so concurrent forecasts share their decode steps too;
- identical calls in a batch (the same ids, settings and generator state) computed once, each
  caller getting its own copy (:func:`_distinct`).

Rows computed in a bigger batch can round differently in the last bit of a float (a matrix
product of 400 rows is not always summed in the order of one of 20), so probabilities agree to
about 1e-7 and a sampled token could differ only where two candidates tie to that precision.
A call alone in its window runs exactly the unbatched code.

A batcher's worker thread can run all of its model's work: :meth:`Batcher.call` runs any
function there, alone, in arrival order (the server loads each model and answers its other
routes that way). PyTorch's CPU kernels use an OpenMP thread team per calling thread; once two
threads have each run a parallel kernel, the runtime has more threads than cores to manage and
stops letting idle ones spin, so every small kernel pays to wake its team: a 20-path forecast
of ``signals-small`` took 105 ms on a second thread against 85 ms on the thread that had run
the first kernel (2-core CPU, torch 2.13).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from .analysis import next_token_probs
from .generate import generate
from .model import GPT

__all__ = ["Batcher", "MERGEABLE"]

#: Keywords of ``generate`` under which calls may share a batch (others run alone).
MERGEABLE = frozenset(
    {"greedy", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "suppress_ids"}
)


@dataclass
class _Job:
    kind: str
    key: Hashable
    rows: int
    payload: dict[str, Any]
    future: Future = field(default_factory=Future)


class Batcher:
    """Runs one model's calls, those that arrive within ``window`` seconds of each other as
    one batch (at most ``max_rows`` rows and ``max_calls`` calls), on a worker thread that
    holds ``lock`` while the model works (other users of the model take the same lock).
    ``max_calls=1`` runs the calls one at a time, in arrival order: no batching. ``model`` may
    be set after the batcher is made (to load it on the worker thread with :meth:`call`).

    Waiting for the callers who are coming back: when more calls were outstanding at once
    during the last batch (queued or running) than are queued now, the batcher waits for them
    up to ``patience`` times the last batch's duration (at most ``max_wait`` seconds), then
    runs what it has. Clients that send their next request when an answer comes (a class's
    pages, a load test) otherwise split into two alternating batches, each paying a batch's
    fixed cost (at the 124M shape, reading every weight once). A lone caller never waits:
    it is the only one outstanding. Only calls that can share a batch count (``next`` and
    ``generate``; :meth:`call`'s functions run alone, and waiting for them gains nothing)."""

    def __init__(
        self,
        model: GPT | None,
        *,
        window: float = 0.0,
        max_rows: int = 4096,
        max_calls: int = 256,
        lock: threading.Lock | None = None,
        patience: float = 0.1,
        max_wait: float = 0.05,
    ):
        if window < 0:
            raise ValueError(f"the batching window must be >= 0 seconds (got {window})")
        if patience < 0 or max_wait < 0:
            raise ValueError(f"patience and max_wait must be >= 0 (got {patience}, {max_wait})")
        self.model = model
        self.window = float(window)
        self.patience, self.max_wait = float(patience), float(max_wait)
        self.max_rows = int(max_rows)
        self.max_calls = int(max_calls)
        if self.max_rows < 1 or self.max_calls < 1:
            raise ValueError("max_rows and max_calls must be at least 1")
        self.lock = lock or threading.Lock()
        self._cv = threading.Condition()
        self._queue: list[_Job] = []
        self._running = 0
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.requests = 0
        self.largest = 0
        self.waited = 0.0  # seconds waited before taking batches (the window, expected callers)
        self.patient = 0  # batches that waited for expected callers
        self.shared = 0  # calls answered by an identical call's result
        self._peak = 0  # most calls outstanding at once since the last batch was taken
        self._last_seconds = 0.0  # how long the last batch ran
        self._current: list[_Job] = []  # the batch being run (answered ones are done)

    # --- what callers use -------------------------------------------------------------------

    def next_probs(self, ids: torch.Tensor | list[int]) -> torch.Tensor:
        """``analysis.next_token_probs(model, ids)``: the next-token distribution ``(vocab,)``."""
        ids = [int(i) for i in torch.as_tensor(ids).reshape(-1).tolist()]
        return self._submit(_Job("next", "next", 1, {"ids": ids}))

    def generate(
        self, model: GPT, ids: torch.Tensor, max_new_tokens: int, **settings: Any
    ) -> torch.Tensor:
        """:func:`nexttoken.generate` with the same arguments (``model`` must be this batcher's)."""
        if model is not self.model:
            raise ValueError("this batcher decodes for another model")
        ids = torch.as_tensor(ids, dtype=torch.long)
        generator = settings.pop("generator", None)
        seed = settings.pop("seed", None)
        if generator is None and seed is not None:
            device = next(model.parameters()).device
            generator = torch.Generator(device=device).manual_seed(seed)
        mergeable = set(settings) <= MERGEABLE and ids.ndim == 2
        key: Hashable = (
            ("generate", ids.shape[-1], int(max_new_tokens), _frozen(settings))
            if mergeable
            else ("alone", id(ids))
        )
        job = _Job(
            "generate",
            key,
            int(ids.shape[0]) if ids.ndim == 2 else 1,
            {"ids": ids, "n": max_new_tokens, "settings": settings, "generator": generator},
        )
        return self._submit(job)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on the worker thread, alone and in arrival order with the
        batches (without the lock: ``fn`` takes it if it needs it); its result, or its exception
        raised here. A call from the worker thread itself runs at once."""
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        job = _Job("call", ("call", object()), 0, {"fn": lambda: fn(*args, **kwargs)})
        return self._submit(job)

    def status(self) -> dict[str, Any]:
        with self._cv:
            return {
                "queued": len(self._queue),
                "running": self._running,
                "batches": self.batches,
                "requests": self.requests,
                "largest_batch": self.largest,
                "window_ms": self.window * 1000,
                "max_calls": self.max_calls,
                "waited_ms": round(self.waited * 1000, 1),
                "shared": self.shared,
            }

    # --- the worker -------------------------------------------------------------------------

    def _submit(self, job: _Job) -> Any:
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="nexttoken-batcher", daemon=True
                )
                self._thread.start()
            self._queue.append(job)
            if job.kind != "call":  # calls run alone: waiting for them gains nothing
                running = sum(1 for j in self._current if not j.future.done())
                self._peak = max(self._peak, _batchable(self._queue) + running)
            self._cv.notify_all()
        return job.future.result()

    def _take(self) -> list[_Job]:
        """Wait for a job, then for the window to pass (or ``max_rows`` rows), and for the
        callers expected back (see the class); take them all."""
        with self._cv:
            while not self._queue:
                self._cv.wait()
            start = time.monotonic()
            batching = self.max_calls > 1
            window_end = start + (self.window if batching else 0.0)
            expect = min(self._peak, self.max_calls) if batching else 1
            patience_end = start + min(self.max_wait, self.patience * self._last_seconds)
            patient = False
            while (
                sum(j.rows for j in self._queue) < self.max_rows
                and len(self._queue) < self.max_calls
            ):
                now = time.monotonic()
                if now < window_end:
                    self._cv.wait(window_end - now)
                elif _batchable(self._queue) < expect and now < patience_end:
                    patient = True
                    self._cv.wait(patience_end - now)
                else:
                    break
            self.waited += time.monotonic() - start
            self.patient += patient
            jobs: list[_Job] = []
            rows = 0
            while (
                self._queue
                and len(jobs) < self.max_calls
                and (not jobs or rows + self._queue[0].rows <= self.max_rows)
            ):
                rows += self._queue[0].rows
                jobs.append(self._queue.pop(0))
            self._running = len(jobs)
            self._current = [j for j in jobs if j.kind != "call"]
            self._peak = len(self._current) + _batchable(self._queue)
            return jobs

    def _work(self) -> None:
        while True:
            jobs = self._take()
            groups: dict[Hashable, list[_Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            began = time.monotonic()
            try:
                for group in groups.values():
                    self._run(group)
            finally:
                with self._cv:
                    self._last_seconds = time.monotonic() - began
                    self._running = 0
                    self._current = []  # every call answered; their results not kept
                    self.batches += len(groups)
                    self.requests += len(jobs)
                    self.largest = max([self.largest] + [len(g) for g in groups.values()])

    def _run(self, group: list[_Job]) -> None:
        if group[0].kind == "call":  # alone (its key is its own)
            job = group[0]
            try:
                job.future.set_result(job.payload["fn"]())
            except BaseException as e:  # the caller gets it; the worker goes on
                job.future.set_exception(e)
            return
        run: Callable[[list[_Job]], list[Any]] = (
            self._run_next if group[0].kind == "next" else self._run_generate
        )
        calls, source = _distinct(group)
        try:
            results = self._locked(run, calls)
        except BaseException as e:  # every caller gets the error, the worker goes on
            if len(group) > 1:  # one bad call must not fail the others: run each alone
                for job in group:
                    self._run([job])
                return
            group[0].future.set_exception(e)
            return
        self.shared += len(group) - len(calls)
        for job, k in zip(group, source):
            if calls[k] is job:
                job.future.set_result(results[k])
                continue
            # the same call as calls[k]: its own copy, and its generator left where calls[k]'s
            # is, as if it had drawn the same numbers itself
            generator = job.payload.get("generator")
            if generator is not None:
                generator.set_state(calls[k].payload["generator"].get_state())
            job.future.set_result(results[k].clone())

    def _locked(self, run: Callable[[list[_Job]], list[Any]], group: list[_Job]) -> list[Any]:
        with self.lock, torch.inference_mode():
            return run(group)

    def _run_next(self, group: list[_Job]) -> list[torch.Tensor]:
        model = self.model
        assert model is not None, "the batcher's model is not set"
        if len(group) == 1:
            return [next_token_probs(model, torch.tensor(group[0].payload["ids"]))]
        window = model.config.context_length
        rows = [j.payload["ids"][-window:] for j in group]
        lengths = torch.tensor([len(r) for r in rows])
        ids = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        device = next(model.parameters()).device
        # padding sits after each prompt; the last block runs each row's last position only
        last = model._hidden(ids.to(device), None, 0, only=(lengths - 1).to(device))  # (B, 1, C)
        logits = model._logits(last)[:, 0]  # (B, vocab)
        return list(logits.double().softmax(-1).cpu())

    def _run_generate(self, group: list[_Job]) -> list[torch.Tensor]:
        assert self.model is not None, "the batcher's model is not set"
        first = group[0].payload
        if len(group) == 1:
            return [
                generate(
                    self.model,
                    first["ids"],
                    first["n"],
                    generator=first["generator"],
                    **first["settings"],
                )
            ]
        ids = torch.cat([j.payload["ids"] for j in group])
        out = generate(
            self.model,
            ids,
            first["n"],
            row_generators=[(j.rows, j.payload["generator"]) for j in group],
            **first["settings"],
        )
        return list(out.split([j.rows for j in group]))


def _batchable(jobs: list[_Job]) -> int:
    """How many of ``jobs`` can share a batch (all but :meth:`Batcher.call`'s)."""
    return sum(1 for j in jobs if j.kind != "call")


def _distinct(group: list[_Job]) -> tuple[list[_Job], list[int]]:
    """The calls of a group that need computing, and for each job the index of the call that
    answers it. Calls that must give the same answer are computed once: next-token tables of the
    same ids, and ``generate`` calls of the same ids (the group's settings are the same) whose
    generators, distinct objects, are in the same state (30 pages forecasting the default
    oscillator with seed 0). Unseeded calls are each their own: they must differ."""
    calls: list[_Job] = []
    source: list[int] = []
    seen: dict[Hashable, int] = {}
    for job in group:
        key: Hashable = None
        if job.kind == "next":
            key = tuple(job.payload["ids"])
        elif job.payload.get("generator") is not None:
            ids, generator = job.payload["ids"], job.payload["generator"]
            key = (
                tuple(ids.shape),
                ids.cpu().numpy().tobytes(),
                generator.device.type,
                generator.get_state().numpy().tobytes(),
            )
        k = seen.get(key) if key is not None else None
        if k is not None and (
            job.kind == "next" or job.payload["generator"] is not calls[k].payload["generator"]
        ):
            source.append(k)
            continue
        if key is not None and k is None:
            seen[key] = len(calls)
        source.append(len(calls))
        calls.append(job)
    return calls, source


def _frozen(settings: dict[str, Any]) -> Hashable:
    """The settings as a hashable key (lists, e.g. ``suppress_ids``, become tuples)."""
    return tuple(
        sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in settings.items())
    )
