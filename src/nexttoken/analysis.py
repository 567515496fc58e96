"""Looking inside next-token prediction: top-k tables, entropy, per-step distributions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .model import GPT

__all__ = [
    "TokenRow",
    "NextTokenTable",
    "FrequencyTable",
    "next_token_probs",
    "top_tokens",
    "entropy",
    "step_distributions",
    "sample_frequencies",
]


@dataclass
class TokenRow:
    rank: int
    id: int
    token: str
    probability: float
    cumulative: float


@dataclass
class NextTokenTable:
    """The top of p(t_i | t_1..t_{i-1}): the lecture's "See you" table."""

    prompt_ids: list[int]
    rows: list[TokenRow]
    entropy: float
    """Entropy of the whole next-token distribution, in nats."""
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Total probability of the rows shown."""
        return self.rows[-1].cumulative if self.rows else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_ids": self.prompt_ids,
            "top": [
                {"rank": r.rank, "id": r.id, "token": r.token, "probability": r.probability}
                for r in self.rows
            ],
            "total": self.total,
        }

    def format(self) -> str:
        width = max([len("token")] + [len(r.token) for r in self.rows])
        id_w = max([2] + [len(str(r.id)) for r in self.rows])
        lines = [
            f"{'rank':>4}  {'token':<{width}}  {'id':>{id_w}}  {'probability':>11}  {'cumulative':>10}"
        ]
        lines.append("-" * len(lines[0]))
        for r in self.rows:
            lines.append(
                f"{r.rank:>4}  {r.token:<{width}}  {r.id:>{id_w}}  {r.probability:>11.4f}  {r.cumulative:>10.4f}"
            )
        lines.append("-" * len(lines[0]))
        lines.append(f"total probability of the {len(self.rows)} tokens shown: {self.total:.4f}")
        lines.append(f"entropy of the full distribution: {self.entropy:.3f} nats")
        return "\n".join(lines)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy in nats along the last axis (0 log 0 = 0)."""
    logp = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * logp).sum(-1)


@torch.no_grad()
def next_token_probs(model: GPT, ids: torch.Tensor) -> torch.Tensor:
    """p(t_i | t_1..t_{i-1}) for the token after ``ids`` ``(T,)`` -> ``(vocab,)`` (float64).

    Only the last position goes through the output layer (``GPT.last_logits``): with GPT-2's
    50,257 tokens that layer is a third of a 32-token prompt's work."""
    window = model.config.context_length
    ids = ids[-window:]
    device = next(model.parameters()).device
    logits = model.last_logits(ids[None].to(device))[0, -1]
    return logits.double().softmax(-1).cpu()


def top_tokens(
    probs: torch.Tensor, prompt_ids: list[int], token_str: Callable[[int], str], top_k: int = 10
) -> NextTokenTable:
    """The ``top_k`` most probable tokens of a distribution ``(vocab,)`` as a table."""
    k = min(top_k, probs.numel())
    values, indices = torch.topk(probs, k)
    rows, cum = [], 0.0
    for rank, (p, i) in enumerate(zip(values.tolist(), indices.tolist()), start=1):
        cum += p
        rows.append(TokenRow(rank, int(i), token_str(int(i)), float(p), cum))
    return NextTokenTable(list(prompt_ids), rows, float(entropy(probs)))


@torch.no_grad()
def step_distributions(model: GPT, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Teacher-forced next-token distributions along a path ``ids`` ``(T,)``.

    Returns ``(T - prompt_len, vocab)``: row j is the distribution the model gave for token
    ``prompt_len + j`` having seen everything before it (the last window of it).
    """
    window = model.config.context_length
    device = next(model.parameters()).device
    rows = []
    n = ids.numel()
    pos = prompt_len
    while pos < n:
        start = max(0, pos - window)
        # One forward scores every target whose context fits in [start, start + window).
        end = min(n, start + window + 1)
        logits = model(ids[start : end - 1][None].to(device))[0]  # predicts tokens start+1 .. end-1
        probs = logits.double().softmax(-1).cpu()
        take = range(pos, end)
        rows.append(probs[[t - start - 1 for t in take]])
        pos = end
    return torch.cat(rows) if rows else torch.empty(0, model.config.vocab_size, dtype=torch.float64)


@dataclass
class FrequencyTable:
    """How often sampling drew each of the top tokens, next to its probability."""

    n: int
    rows: list[tuple[TokenRow, int]]
    other_probability: float
    other_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "top": [
                {
                    "rank": r.rank,
                    "id": r.id,
                    "token": r.token,
                    "probability": r.probability,
                    "count": c,
                    "frequency": c / self.n,
                }
                for r, c in self.rows
            ],
            "other": {
                "probability": self.other_probability,
                "count": self.other_count,
                "frequency": self.other_count / self.n,
            },
        }

    def format(self) -> str:
        width = max([len("token")] + [len(r.token) for r, _ in self.rows] + [len("(all others)")])
        head = (
            f"{'rank':>4}  {'token':<{width}}  {'probability':>11}  {'drawn':>7}  {'frequency':>9}"
        )
        lines = [head, "-" * len(head)]
        for r, c in self.rows:
            lines.append(
                f"{r.rank:>4}  {r.token:<{width}}  {r.probability:>11.4f}  {c:>7}  {c / self.n:>9.4f}"
            )
        lines.append(
            f"{'':>4}  {'(all others)':<{width}}  {self.other_probability:>11.4f}  {self.other_count:>7}  "
            f"{self.other_count / self.n:>9.4f}"
        )
        lines.append("-" * len(head))
        lines.append(f"{self.n} draws from the full distribution (temperature 1, no filtering)")
        return "\n".join(lines)


def sample_frequencies(
    probs: torch.Tensor,
    n: int,
    token_str: Callable[[int], str],
    top_k: int = 10,
    seed: int | None = None,
) -> FrequencyTable:
    """Draw ``n`` tokens from ``probs`` ``(vocab,)`` and count the top ``top_k`` and the rest."""
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    draws = torch.multinomial(probs.float(), n, replacement=True, generator=gen)
    counts = torch.bincount(draws, minlength=probs.numel())
    table = top_tokens(probs, [], token_str, top_k)
    rows = [(r, int(counts[r.id])) for r in table.rows]
    shown = sum(c for _, c in rows)
    return FrequencyTable(n, rows, max(0.0, 1.0 - table.total), n - shown)
