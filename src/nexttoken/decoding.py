"""The one-token step of decoding, with as few operations per token as the model allows.

A small model spends most of a decoding step not computing but dispatching: each PyTorch
operation costs microseconds of overhead whatever its size, and a 4-layer, width-128 model's
matrix products take about as long. :class:`Decoder` takes a snapshot of a :class:`GPT`'s
weights as flat lists (transposed views, no copies) and runs the step with plain tensor
functions: no module calls, no attribute lookups through ``nn.Module``, keys and values
written to the cache with one copy per layer. With one row (batch-1 decoding) the activations
stay vectors and each linear layer is one matrix-vector product (``addmv``).

Sample paths of one prompt share its keys and values: with a ``prefix`` cache (the prompts,
one row each) the step attends over a shared prompt with one matrix product for all of its
rows and over each row's own new tokens separately, instead of copying the prompt into every
row.

``generate`` builds one ``Decoder`` per call; it reads the weights when it is built, so build
a new one after moving the model (``.to``) or replacing its parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F

from .activations import gelu_tanh
from .model import apply_rope

if TYPE_CHECKING:
    from .model import GPT, KVCache

__all__ = ["Decoder"]


def _activation(name: str, one_row: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The MLP's activation; for a one-row vector GPT-2's tanh GELU keeps PyTorch's kernel (its
    one call costs less there than the sigmoid form's four, see :mod:`nexttoken.activations`)."""
    if name == "gelu_new":
        return (lambda h: F.gelu(h, approximate="tanh")) if one_row else gelu_tanh
    return F.gelu if name == "gelu" else F.relu


def _norm(config: Any) -> tuple[Callable[..., torch.Tensor], Callable[[Any], tuple[Any, ...]]]:
    """The norm function of ``config`` and a function giving a norm module's arguments to it."""
    eps, shape = config.layer_norm_epsilon, (config.n_embd,)
    if config.norm == "rmsnorm":
        return torch.rms_norm, lambda norm: (shape, norm.weight, eps)
    return torch.layer_norm, lambda norm: (shape, norm.weight, getattr(norm, "bias", None), eps)


def _linear(m: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight transposed, (in, out), for ``addmm``, and the bias."""
    return m.weight.t(), m.bias


def _linear_mv(m: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight as stored, (out, in), and its bias (zeros when it has none, so that every
    product is one ``addmv``; adding 0 changes no value)."""
    bias = m.bias if m.bias is not None else m.weight.new_zeros(m.weight.shape[0])
    return m.weight, bias


class Decoder:
    """A causal :class:`GPT`'s weights laid out for decoding steps (see the module docstring)."""

    def __init__(self, model: GPT):
        config = model.config
        if not config.causal:
            raise ValueError(
                "decoding needs a causal model (objective='gpt'); this one is a masked LM"
            )
        t = model.transformer
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.head_size = config.n_embd // config.n_head
        self.scale = (
            config.attn_scale if config.attn_scale is not None else 1.0 / math.sqrt(self.head_size)
        )
        self.pre = config.norm_position == "pre"
        self.act = _activation(config.activation)
        self.act_one = _activation(config.activation, one_row=True)
        self.wte = t.wte.weight
        self.embed_scale = model.embed_scale
        self.wpe = t.wpe.weight if t.wpe is not None else model.pos_table
        self.rope = (
            (model.rope_cos, model.rope_sin)
            if model.rope_cos is not None and model.rope_sin is not None
            else None
        )
        # Norms are called directly with each norm's stored arguments (no wrapper per call)
        self.norm_fn, norm_args = _norm(config)
        self.layers = []
        # The same weights for the one-row step, flat: norm 1's arguments, (w, b) of the q/k/v
        # and output projections, norm 2's arguments, (w, b) of the two MLP layers
        self.layers_mv: list[tuple[Any, ...]] = []
        for block in t.h:
            attn, mlp = cast(Any, block.attn), cast(Any, block.mlp)
            self.layers.append(
                (
                    norm_args(block.ln_1),
                    _linear(attn.c_attn),
                    _linear(attn.c_proj),
                    norm_args(block.ln_2),
                    _linear(mlp.c_fc),
                    _linear(mlp.c_proj),
                )
            )
            self.layers_mv.append(
                (
                    norm_args(block.ln_1),
                    *_linear_mv(attn.c_attn),
                    *_linear_mv(attn.c_proj),
                    norm_args(block.ln_2),
                    *_linear_mv(mlp.c_fc),
                    *_linear_mv(mlp.c_proj),
                )
            )
        self.ln_f_args = norm_args(t.ln_f) if self.pre else None
        self.head = model.lm_head.weight.t()
        self.head_mv = model.lm_head.weight
        self.output_mult = model.output_mult

    def step(
        self,
        ids: torch.Tensor,
        input_pos: int | torch.Tensor,
        cache: KVCache,
        length: int | None = None,
        *,
        slot: int | torch.Tensor | None = None,
        prefix: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` of ids ``(B, T)`` at positions ``input_pos`` ``(T,)`` (an int
        ``p``: positions ``p .. p+T-1``, the eager decoding form).

        Their keys and values are written to ``cache`` at indices ``slot`` (default: the
        positions; an int ``s`` means ``s .. s+T-1``, written with a plain copy, the faster
        form for eager decoding; a tensor keeps the shapes of a compiled step fixed).
        Attention reads the cache's first ``length`` entries; without ``length`` it reads all
        of them with the unwritten ones masked (fixed shapes, for ``torch.compile``).

        With a ``prefix`` (a cache of U rows filled to its ``max_len`` with prompts; rows
        ``u*R .. u*R+R-1`` of ``ids`` continue prompt ``u``, ``R = B/U``) the rows attend over
        their prompt, then over their own ``cache`` entries; ``T`` must then be 1.
        """
        B, T = ids.shape
        slot = input_pos if slot is None else slot
        if (
            B * T == 1
            and prefix is None
            and length is not None
            and isinstance(input_pos, int)
            and isinstance(slot, int)
        ):
            return self._step_one(ids, input_pos, cache, length, slot)
        x, rope = self._embed(ids, input_pos)
        visible = None
        if prefix is not None:
            if T != 1:
                raise ValueError("a step over a shared prefix takes one token per row")
            if B % prefix.kv[0].shape[1]:
                raise ValueError(
                    f"{B} rows cannot continue {prefix.kv[0].shape[1]} prompts in equal groups"
                )
        elif length is None or T > 1:
            # (T, keys) additive mask, built once per step
            keys = cache.max_len if length is None else length
            where = cache.positions[slot : slot + T] if isinstance(slot, int) else slot
            visible = torch.zeros(T, keys, dtype=x.dtype, device=x.device).masked_fill_(
                cache.positions[None, :keys] > where[:, None], float("-inf")
            )
        for i, weights in enumerate(self.layers):
            x = self._layer(i, weights, x, (B, T), rope, cache, length, slot, prefix, visible)
        if self.ln_f_args is not None:
            x = self.norm_fn(x, *self.ln_f_args)
        logits = x.mm(self.head)
        if self.output_mult != 1.0:
            logits = logits * self.output_mult
        return logits.view(B, T, -1)

    def _embed(
        self, ids: torch.Tensor, input_pos: int | torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Token (+ learned or sinusoidal position) embeddings ``(B*T, C)``, and the rotary
        tables of the positions for a RoPE model (else None)."""
        B, T = ids.shape
        N, C = B * T, self.n_embd
        x = self.wte.index_select(0, ids.reshape(N))  # (N, C)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        rope = None
        if isinstance(input_pos, int):
            if self.wpe is not None:
                pos_emb = self.wpe.narrow(0, input_pos, T)  # (T, C)
            elif self.rope is not None:
                rope = (self.rope[0].narrow(0, input_pos, T), self.rope[1].narrow(0, input_pos, T))
        elif self.wpe is not None:
            pos_emb = self.wpe.index_select(0, input_pos)
        elif self.rope is not None:
            rope = (self.rope[0][input_pos], self.rope[1][input_pos])
        if self.wpe is not None:
            x = x + pos_emb if T == 1 else (x.view(B, T, C) + pos_emb).view(N, C)
        return x, rope

    def _layer(
        self,
        i: int,
        weights: tuple[Any, ...],
        x: torch.Tensor,
        shape: tuple[int, int],
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: KVCache,
        length: int | None,
        slot: int | torch.Tensor,
        prefix: KVCache | None,
        visible: torch.Tensor | None,
    ) -> torch.Tensor:
        """Block ``i`` of :meth:`step` on activations ``x`` ``(B*T, C)``."""
        ln_1, (w_qkv, b_qkv), (w_o, b_o), ln_2, (w_fc, b_fc), (w_p, b_p) = weights
        (B, T), C, H, D = shape, self.n_embd, self.n_head, self.head_size
        N = B * T
        norm, pre = self.norm_fn, self.pre
        h = norm(x, *ln_1) if pre else x
        qkv = torch.addmm(b_qkv, h, w_qkv) if b_qkv is not None else h.mm(w_qkv)
        if N == 1:  # one row, one token: already in (3, B, H, T, D) order
            qkv = qkv.view(3, 1, H, 1, D)
        else:
            qkv = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
        if rope is None:
            q, new = qkv[0], qkv[1:]
        else:
            q, new = apply_rope(qkv[0], *rope), torch.stack((apply_rope(qkv[1], *rope), qkv[2]))
        if isinstance(slot, int):
            cache.kv[i].narrow(3, slot, T).copy_(new)
        else:
            cache.kv[i].index_copy_(3, slot, new)
        k, v = cache.k[i], cache.v[i]
        if length is not None:
            k, v = k.narrow(2, 0, length), v.narrow(2, 0, length)
        if prefix is not None:
            y = _attend_with_prefix(q, prefix.k[i], prefix.v[i], k, v, self.scale)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, scale=self.scale)
            y = y.transpose(1, 2) if T > 1 else y  # (B, T, H, D); for T = 1 the same order
        a = torch.addmm(b_o, y.reshape(N, C), w_o) if b_o is not None else y.reshape(N, C).mm(w_o)
        x = x + a if pre else norm(x + a, *ln_1)
        h = norm(x, *ln_2) if pre else x
        h = self.act(torch.addmm(b_fc, h, w_fc) if b_fc is not None else h.mm(w_fc))
        m = torch.addmm(b_p, h, w_p) if b_p is not None else h.mm(w_p)
        return x + m if pre else norm(x + m, *ln_2)

    def _step_one(
        self, ids: torch.Tensor, pos: int, cache: KVCache, length: int, slot: int
    ) -> torch.Tensor:
        """:meth:`step` for one row and one token at an int position (batch-1 decoding): the
        activations stay vectors ``(C,)`` and each linear layer is one matrix-vector product with
        its bias (``addmv``), which costs less per call than a one-row ``addmm`` (no bias
        broadcast, no transposed operand). The same arithmetic as :meth:`step` otherwise; the
        loop is written flat because at this size Python's own overhead shows."""
        C, H, D = self.n_embd, self.n_head, self.head_size
        x = self.wte.index_select(0, ids.view(1)).view(C)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        rope = None
        if self.wpe is not None:
            x = x + self.wpe[pos]
        elif self.rope is not None:
            rope = (self.rope[0].narrow(0, pos, 1), self.rope[1].narrow(0, pos, 1))
        norm, act, pre, scale = self.norm_fn, self.act_one, self.pre, self.scale
        addmv, attend = torch.addmv, F.scaled_dot_product_attention
        kvs, ks, vs = cache.kv, cache.k, cache.v
        for i, (n1, w_qkv, b_qkv, w_o, b_o, n2, w_fc, b_fc, w_p, b_p) in enumerate(self.layers_mv):
            qkv = addmv(b_qkv, w_qkv, norm(x, *n1) if pre else x).view(3, 1, H, 1, D)
            if rope is None:
                q, new = qkv[0], qkv[1:]
            else:
                q, new = apply_rope(qkv[0], *rope), torch.stack((apply_rope(qkv[1], *rope), qkv[2]))
            kvs[i].narrow(3, slot, 1).copy_(new)
            y = attend(q, ks[i].narrow(2, 0, length), vs[i].narrow(2, 0, length), scale=scale)
            # bias + product, then + x: the sums of step's x + addmm(bias, ...), in its order
            if pre:
                x = addmv(b_o, w_o, y.view(C)).add_(x)
                x = addmv(b_p, w_p, act(addmv(b_fc, w_fc, norm(x, *n2)))).add_(x)
            else:
                x = norm(addmv(b_o, w_o, y.view(C)).add_(x), *n1)
                x = norm(addmv(b_p, w_p, act(addmv(b_fc, w_fc, x))).add_(x), *n2)
        if self.ln_f_args is not None:
            x = norm(x, *self.ln_f_args)
        logits = self.head_mv.mv(x)
        if self.output_mult != 1.0:
            logits = logits * self.output_mult
        return logits.view(1, 1, -1)


def _attend_with_prefix(
    q: torch.Tensor,
    prefix_k: torch.Tensor,
    prefix_v: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """Attention of one query per row ``q`` ``(B, H, 1, D)`` over the keys and values of shared
    prefixes, ``(U, H, P, D)`` each (rows ``u*R .. u*R+R-1`` continue prefix ``u``, ``R = B/U``),
    followed by the row's own ``(B, H, S, D)`` -> ``(B, H, D)``.

    The prefix scores of a prefix's R rows come from one product per head,
    ``(R, D) @ (D, P)``; one softmax over both parts keeps it exact. The scores are laid out as
    the prefix products give them, ``(U, H, R, P + S)``, so that only the rows' own part (S <=
    the new tokens, the smaller one) is reordered, never the prompt's."""
    B, H, _, D = q.shape
    U, _, P, _ = prefix_k.shape
    R = B // U
    q = q * scale
    grouped = q.view(U, R, H, D).transpose(1, 2)  # (U, H, R, D)
    scores_p = torch.matmul(grouped, prefix_k.transpose(2, 3))  # (U, H, R, P)
    scores_s = torch.matmul(q, k.transpose(2, 3)).view(U, R, H, -1).transpose(1, 2)  # (U, H, R, S)
    probs = torch.cat((scores_p, scores_s), dim=-1).softmax(-1)  # (U, H, R, P + S)
    y = torch.matmul(probs[..., :P], prefix_v)  # (U, H, R, D)
    own = probs[..., P:].transpose(1, 2).reshape(B, H, 1, -1)  # (B, H, 1, S)
    return y.transpose(1, 2).reshape(B, H, D) + torch.matmul(own, v).view(B, H, D)
