"""GPT (causal) and MaskedLM (bidirectional) transformers over one set of blocks.

Parameter names follow GPT-2 (``transformer.wte``, ``transformer.wpe``, ``transformer.h.{i}``
with ``ln_1``, ``attn.c_attn``, ``attn.c_proj``, ``ln_2``, ``mlp.c_fc``, ``mlp.c_proj``, then
``transformer.ln_f`` and ``lm_head``), so a GPT-2 checkpoint loads key for key (``hf.py``).
``forward(ids)`` returns logits for every position; ``forward(ids, targets)`` returns the
mean training loss instead, computed inside the model (see :mod:`nexttoken.loss`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .activations import gelu_tanh
from .loss import linear_cross_entropy

__all__ = ["GPTConfig", "GPT", "KVCache", "sinusoidal_positions", "apply_rope"]

#: Below this many logits (positions x vocabulary) the loss is computed from the whole logits
#: tensor; from it on, in chunks that never hold them all (:mod:`nexttoken.loss`).
FUSED_LOSS_ELEMENTS = 1 << 24

_CHOICES = {
    "norm": ("layernorm", "rmsnorm"),
    "norm_position": ("pre", "post"),
    "positions": ("learned", "sinusoidal", "rope", "none"),
    "activation": ("gelu", "gelu_new", "relu"),
    "objective": ("gpt", "mlm"),
    "parametrization": ("standard", "mup"),
}


@dataclass
class GPTConfig:
    """Architecture of a GPT or MaskedLM."""

    vocab_size: int
    """Number of token ids (the one-hot width of the lecture)."""
    context_length: int = 256
    """The context window: the most positions the model attends over."""
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    """Biases in linear layers and norms (GPT-2 has them)."""
    norm: str = "layernorm"
    """``layernorm`` or ``rmsnorm``."""
    norm_position: str = "pre"
    """``pre`` (GPT-2: normalize the input of each sub-layer) or ``post`` (original Transformer)."""
    positions: str = "learned"
    """``learned`` (GPT-2), ``sinusoidal`` (fixed), ``rope`` (rotary) or ``none``. With
    ``sinusoidal`` the token embeddings are multiplied by sqrt(n_embd) before the table is added,
    as in Vaswani et al. (2017): otherwise the unit-size table drowns the 0.02-size embeddings."""
    activation: str = "gelu_new"
    """``gelu_new`` is GPT-2's tanh approximation of ``gelu``."""
    layer_norm_epsilon: float = 1e-5
    tie_word_embeddings: bool = True
    rope_base: float = 10000.0
    objective: str = "gpt"
    """``gpt``: causal attention, predict the next token. ``mlm``: bidirectional, predict masked tokens."""
    parametrization: str = "standard"
    """``standard`` (GPT-2) or ``mup`` (maximal update parametrization, Yang et al. 2022): hidden
    weights initialised with variance / width multiplier and trained with learning rate / width
    multiplier under Adam, logits scaled by 1 / width multiplier, attention scores by 1/d instead of
    1/sqrt(d). At ``n_embd == mup_base_width`` it is the standard model; tune the learning rate there
    and keep it as the width grows."""
    mup_base_width: int | None = None
    """The width at which muP equals the standard parametrization (None: ``n_embd``)."""

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}"
                )
        for name in ("vocab_size", "context_length", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer (got {getattr(self, name)})")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                "pick n_embd as a multiple of n_head"
            )
        if self.positions == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary positions need an even head size (n_embd / n_head)")
        if self.mup_base_width is not None and int(self.mup_base_width) < 1:
            raise ValueError(
                f"mup_base_width must be a positive integer (got {self.mup_base_width})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {self.dropout})")

    @property
    def causal(self) -> bool:
        return self.objective == "gpt"

    @property
    def width_mult(self) -> float:
        """muP's width multiplier ``n_embd / mup_base_width`` (1 for the standard parametrization)."""
        if self.parametrization != "mup" or self.mup_base_width is None:
            return 1.0
        return self.n_embd / self.mup_base_width

    @property
    def attn_scale(self) -> float:
        """Factor on q.k: 1/sqrt(d_head) (standard) or sqrt(base d_head)/d_head (muP, ~1/d)."""
        hs = self.n_embd / self.n_head
        if self.parametrization != "mup":
            return 1.0 / math.sqrt(hs)
        base_hs = hs / self.width_mult
        return math.sqrt(base_hs) / hs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"unknown model config keys {sorted(unknown)}; the checkpoint is from a newer nexttoken?"
            )
        return cls(**d)


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/dim)), PE[p, 2i+1] = cos(p / 10000^(2i/dim)); ``(length, dim)``."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    inv = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv[: dim // 2])
    return pe.float()


def _rope_tables(length: int, head_size: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float64) / head_size))
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv  # (T, hs/2)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]) of ``x`` ``(B, nh, T, hs)`` by the angles of ``cos``/``sin`` ``(T, hs/2)``."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class KVCache:
    """Preallocated keys and values of every layer: ``kv[layer]`` ``(2, B, nh, max_len, hs)``,
    with ``k[layer]`` and ``v[layer]`` ``(B, nh, max_len, hs)`` its two halves (views), so that
    one ``index_copy_`` writes both (and the batch and head dimensions of each half stay
    mergeable: a batched product over them needs no copy).

    ``update`` writes the new positions in place and returns views up to the last written
    position: no tensor is reallocated while decoding.
    """

    def __init__(
        self,
        n_layer: int,
        batch: int,
        n_head: int,
        max_len: int,
        head_size: int,
        dtype: torch.dtype,
        device: Any,
    ):
        shape = (2, batch, n_head, max_len, head_size)
        # zeros, not empty: a fixed-shape step multiplies the unwritten tail by 0 attention
        self.kv = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.k = [kv[0] for kv in self.kv]
        self.v = [kv[1] for kv in self.kv]
        self.max_len = max_len
        self.positions = torch.arange(max_len, device=device)
        self.rows: torch.Tensor | None = None
        """When set, a forward with fewer rows than the cache fills cache row i from input row rows[i]
        (one prefill of each distinct prompt serves all its sample paths)."""

    def update(
        self, layer: int, pos: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = pos + k.shape[2]
        if self.rows is not None and k.shape[0] != self.k[layer].shape[0]:
            k, v = k[self.rows], v[self.rows]
        self.k[layer][:, :, pos:end] = k
        self.v[layer][:, :, pos:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


def _norm(config: GPTConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return nn.RMSNorm(config.n_embd, eps=config.layer_norm_epsilon)
    return nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)


def _through_cache(
    cache: KVCache | None, layer: int, pos: int, k: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Write keys and values ``(B, nh, T, hs)`` at ``pos`` into ``cache`` (if any) and return
    what attention reads: the cache's ``pos + T`` entries, or at pos 0 the fresh ones, which are
    all there is and may have fewer rows than the cache (distinct prompts only, see
    ``KVCache.rows``)."""
    if cache is None:
        return k, v
    ck, cv = cache.update(layer, pos, k, v)
    return (ck, cv) if pos > 0 else (k, v)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.scale = config.attn_scale
        self.causal = config.causal
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: KVCache | None,
        layer: int,
        pos: int,
        only: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if only is not None:
            return self._attend_from(x, rope, cache, layer, pos, only)
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        k, v = _through_cache(cache, layer, pos, k, v)
        mask = None
        is_causal = False
        if self.causal and T > 1:
            if k.shape[2] == T:
                is_causal = True
            else:  # a chunk after cached positions: query i sees keys 0 .. pos + i
                qpos = torch.arange(pos, pos + T, device=x.device)[:, None]
                mask = qpos >= torch.arange(k.shape[2], device=x.device)[None, :]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=is_causal,
            dropout_p=self.dropout if self.training else 0.0,
            scale=self.scale,
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))

    def _attend_from(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: KVCache | None,
        layer: int,
        pos: int,
        only: torch.Tensor,
    ) -> torch.Tensor:
        """The attention output ``(B, 1, C)`` of one position per row, ``only`` ``(B,)``
        (indices into ``x``'s T positions): keys and values for all T positions (written to
        the cache as usual), the query, attention and output projection for that one only."""
        B, T, C = x.shape
        H = self.n_head
        w, b = self.c_attn.weight, self.c_attn.bias
        rows = torch.arange(B, device=x.device)
        q = F.linear(x[rows, only], w[:C], None if b is None else b[:C])  # (B, C)
        k, v = F.linear(x, w[C:], None if b is None else b[C:]).split(C, dim=2)
        q = q.view(B, H, 1, C // H)
        k = k.view(B, T, H, C // H).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q = apply_rope(q, cos[only][:, None, None], sin[only][:, None, None])
            k = apply_rope(k, cos, sin)
        k, v = _through_cache(cache, layer, pos, k, v)
        mask = None
        if self.causal and bool((only != T - 1).any()):
            # row i's query at position pos + only[i] sees keys 0 .. pos + only[i]
            keys = torch.arange(k.shape[2], device=x.device)
            mask = (keys[None, :] <= (pos + only)[:, None])[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            scale=self.scale,
        )  # (B, nh, 1, hs)
        return self.resid_dropout(self.c_proj(y.reshape(B, 1, C)))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)
        self.activation = config.activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self._act(self.c_fc(x))))

    def _act(self, h: torch.Tensor) -> torch.Tensor:
        if self.activation == "gelu_new":
            return gelu_tanh(h)  # F.gelu(h, approximate="tanh"), faster on CPUs
        if self.activation == "gelu":
            return F.gelu(h)
        return F.relu(h)


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.pre = config.norm_position == "pre"
        self.ln_1 = _norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = _norm(config)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: KVCache | None,
        layer: int,
        pos: int,
        only: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, T, C)`` -> ``(B, T, C)``; with ``only`` ``(B,)``, the output ``(B, 1, C)``
        of that one position per row (every position's keys and values still computed)."""
        res = x if only is None else x[torch.arange(x.shape[0], device=x.device), only][:, None]
        if self.pre:
            x = res + self.attn(self.ln_1(x), rope, cache, layer, pos, only)
            return x + self.mlp(self.ln_2(x))
        x = self.ln_1(res + self.attn(x, rope, cache, layer, pos, only))
        return self.ln_2(x + self.mlp(x))


class Transformer(nn.Module):
    """Embeddings and blocks, named as GPT-2's ``transformer`` module."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = (
            nn.Embedding(config.context_length, config.n_embd)
            if config.positions == "learned"
            else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = _norm(config) if config.norm_position == "pre" else nn.Identity()


class GPT(nn.Module):
    """Decoder-only transformer (``objective="gpt"``) or bidirectional encoder (``"mlm"``).

    ``forward(ids)`` maps ids ``(B, T)`` to logits ``(B, T, vocab_size)``, one distribution
    per position: with ``objective="gpt"`` position t predicts token t+1 from tokens 0..t.
    """

    pos_table: torch.Tensor | None
    rope_cos: torch.Tensor | None
    rope_sin: torch.Tensor | None

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        hs = config.n_embd // config.n_head
        rope = (
            _rope_tables(config.context_length, hs, config.rope_base)
            if config.positions == "rope"
            else (None, None)
        )
        table = (
            sinusoidal_positions(config.context_length, config.n_embd)
            if config.positions == "sinusoidal"
            else None
        )
        # Fixed tables, rebuilt from the config: not saved with the weights.
        self.register_buffer("pos_table", table, persistent=False)
        self.register_buffer("rope_cos", rope[0], persistent=False)
        self.register_buffer("rope_sin", rope[1], persistent=False)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        self.output_mult = 1.0 / config.width_mult
        self.embed_scale = math.sqrt(config.n_embd) if config.positions == "sinusoidal" else 1.0
        self.gradient_checkpointing = False
        """When training, recompute each block in the backward pass instead of storing its
        activations (less memory, about one more forward of compute)."""
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) at init.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
        # muP: hidden (width x width) matrices get variance / width multiplier, i.e. 1/fan_in
        # scaling; embeddings keep std 0.02 at every width. Scaled in place, so the standard
        # parametrization draws exactly the same numbers as before muP existed.
        if config.width_mult != 1.0:
            with torch.no_grad():
                for name, p in self.named_parameters():
                    if name.endswith(("c_attn.weight", "c_fc.weight", "c_proj.weight")):
                        p.mul_(1.0 / math.sqrt(config.width_mult))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def optim_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW parameter groups: weight decay on matrices only, and each group's ``lr_mult``.

        Under muP the hidden matrices (both dimensions grow with width) train with learning rate
        ``lr / width_mult``; embeddings, the (tied) output layer, biases and norms keep ``lr``.
        """
        m = self.config.width_mult
        hidden = ("c_attn.weight", "c_fc.weight", "c_proj.weight")
        groups: dict[tuple[float, float], list[nn.Parameter]] = {}
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            mult = 1.0 / m if name.endswith(hidden) else 1.0
            # key -1: no decay (vectors); decayed matrices sort first, as before muP
            groups.setdefault((weight_decay if p.dim() >= 2 else -1.0, mult), []).append(p)
        order = sorted(groups, key=lambda k: (k[0] < 0, -k[1]))
        return [
            {"params": groups[k], "weight_decay": max(k[0], 0.0), "lr_mult": k[1]} for k in order
        ]

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and self.transformer.wpe is not None:
            n -= self.transformer.wpe.weight.numel()
        return n

    def new_cache(self, batch: int, max_len: int | None = None) -> KVCache:
        c = self.config
        p = next(self.parameters())
        return KVCache(
            c.n_layer,
            batch,
            c.n_head,
            c.context_length if max_len is None else max_len,
            c.n_embd // c.n_head,
            p.dtype,
            p.device,
        )

    def forward(
        self,
        ids: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        pos: int = 0,
    ) -> torch.Tensor:
        """Ids ``(B, T)`` at positions ``pos .. pos+T-1`` -> logits ``(B, T, vocab_size)``.

        With ``targets`` ``(B, T)`` (``-100`` where there is none) it returns their mean
        cross-entropy instead, computed here so that ``torch.compile`` sees it, and for large
        vocabularies without ever holding every logit (:mod:`nexttoken.loss`).
        With a ``cache``, keys and values of earlier positions come from it and those of
        these positions are written to it.
        """
        h = self._hidden(ids, cache, pos)
        if targets is None:
            return self._logits(h)
        return self.loss_from_hidden(h, targets)

    def loss_from_hidden(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the logits of the last block's output ``h`` at ``targets``."""
        x = self.transformer.ln_f(h)
        weight = self._head_weight()
        V = self.config.vocab_size
        if x.shape[0] * x.shape[1] * weight.shape[0] < FUSED_LOSS_ELEMENTS:
            logits = F.linear(x, weight)[..., :V] if weight.shape[0] > V else F.linear(x, weight)
            if self.output_mult != 1.0:
                logits = logits * self.output_mult
            logits = logits.flatten(0, 1)
            return F.cross_entropy(
                logits.to(torch.promote_types(logits.dtype, torch.float32)),
                targets.flatten(),
                ignore_index=-100,
            )
        return linear_cross_entropy(x, weight, targets, vocab=V, scale=self.output_mult)

    def _head_weight(self) -> torch.Tensor:
        """The output layer's weight, padded with zero rows to a multiple of 64 on a GPU when the
        vocabulary is large and not one already (GPT-2's 50,257 -> 50,304: matrix products of
        such widths run much faster there). The padding exists only inside the computation:
        parameters, checkpoints and every output keep ``vocab_size``."""
        w = self.lm_head.weight
        V = w.shape[0]
        if w.is_cuda and V >= 1024 and V % 64:
            return F.pad(w, (0, 0, 0, -V % 64))
        return w

    def last_logits(
        self, ids: torch.Tensor, *, cache: KVCache | None = None, pos: int = 0
    ) -> torch.Tensor:
        """:meth:`forward`'s logits of the last position only, ``(B, 1, vocab_size)``: what
        decoding needs after a prompt. The output layer runs for one position instead of T
        (with GPT-2's 50,257 tokens it is about a third of a prompt's cost)."""
        last = torch.full((ids.shape[0],), ids.shape[1] - 1, device=ids.device)
        return self._logits(self._hidden(ids, cache, pos, only=last))

    def _hidden(
        self,
        ids: torch.Tensor,
        cache: KVCache | None,
        pos: int,
        *,
        only: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The last block's output ``(B, T, C)`` (before the final norm).

        With ``only`` ``(B,)``, position indices into ``ids``, the output ``(B, 1, C)`` at
        those positions: the last block computes every position's keys and values but its
        query, attention output and MLP for those positions alone (10 of a block's 12 d^2
        multiply-adds per token are skipped for the others)."""
        B, T = ids.shape
        end = pos + T
        if end > self.config.context_length:
            raise ValueError(
                f"positions up to {end} exceed the context window of {self.config.context_length}; "
                "crop the input to its last context_length tokens"
            )
        if cache is not None and not self.config.causal:
            raise ValueError("a KV cache only makes sense for a causal model (objective='gpt')")
        t = self.transformer
        x = t.wte(ids)  # (B, T, C)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        rope = None
        if t.wpe is not None:
            x = x + t.wpe(torch.arange(pos, end, device=ids.device))
        elif self.pos_table is not None:
            x = x + self.pos_table[pos:end]
        elif self.rope_cos is not None and self.rope_sin is not None:
            rope = (self.rope_cos[pos:end], self.rope_sin[pos:end])
        x = t.drop(x)
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        last_block = len(t.h) - 1
        for i, block in enumerate(t.h):
            where = only if i == last_block else None
            if recompute and cache is None:
                x = checkpoint(block, x, rope, None, i, pos, where, use_reentrant=False)
            else:
                x = block(x, rope, cache, i, pos, where)
        return x

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        weight = self._head_weight()
        logits = F.linear(self.transformer.ln_f(x), weight)  # (B, T, vocab_size [+ padding])
        if weight.shape[0] > self.config.vocab_size:
            logits = logits[..., : self.config.vocab_size]
        return logits * self.output_mult if self.output_mult != 1.0 else logits
