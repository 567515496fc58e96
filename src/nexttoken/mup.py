"""muP's coordinate check: do activations keep their size as the model gets wider?

Under the maximal update parametrization (``GPTConfig(parametrization="mup")``) the typical
size of every activation coordinate, at init and after a few Adam steps, stays the same
whatever the width; under the standard parametrization the logits (and the updates of the
hidden layers) grow with width, which is why the best learning rate moves when a standard
model is widened. ``coordinate_check`` measures it on a fixed batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from .model import GPT, GPTConfig
from .train import lm_loss

__all__ = ["CoordinateCheck", "coordinate_check"]


@dataclass
class CoordinateCheck:
    """Mean absolute activation per (width, step, probe).

    ``sizes[w]`` is ``(steps + 1, len(probes))``: row 0 at init, row t after t optimizer steps.
    """

    widths: list[int]
    probes: list[str]
    sizes: dict[int, list[list[float]]]

    def growth(self, probe: str, step: int) -> float:
        """Size at the widest model over the size at the narrowest, for one probe and step."""
        j = self.probes.index(probe)
        return self.sizes[self.widths[-1]][step][j] / self.sizes[self.widths[0]][step][j]


def coordinate_check(
    base: GPTConfig,
    widths: list[int],
    *,
    steps: int = 4,
    lr: float = 1e-2,
    batch_size: int = 8,
    seed: int = 0,
) -> CoordinateCheck:
    """Train a copy of ``base`` at each width for ``steps`` Adam steps on one fixed batch.

    The probes are the token embedding output, each block's output (the residual stream) and
    the logits; each is recorded as the mean absolute value of its coordinates.
    """
    widths = sorted(widths)
    gen = torch.Generator().manual_seed(seed)
    T = base.context_length
    ids = torch.randint(0, base.vocab_size, (batch_size, T + 1), generator=gen)
    x, y = ids[:, :-1], ids[:, 1:]
    probes = ["embedding"] + [f"block {i}" for i in range(base.n_layer)] + ["logits"]
    sizes: dict[int, list[list[float]]] = {}
    for width in widths:
        config = replace(base, n_embd=width)
        torch.manual_seed(seed)
        model = GPT(config)
        # Adam without weight decay or clipping: the check is about the parametrization alone.
        opt = torch.optim.Adam(
            [
                {"params": g["params"], "lr": lr * g["lr_mult"]}
                for g in model.optim_groups(weight_decay=0.0)
            ]
        )
        seen: list[float] = []
        hooks = [model.transformer.wte.register_forward_hook(_recorder(seen))]
        hooks += [b.register_forward_hook(_recorder(seen)) for b in model.transformer.h]
        rows = []
        for step in range(steps + 1):
            seen.clear()
            logits = model(x)
            rows.append([*seen, logits.detach().abs().mean().item()])
            if step == steps:
                break
            opt.zero_grad()
            lm_loss(logits, y).backward()
            opt.step()
        for h in hooks:
            h.remove()
        sizes[width] = rows
    return CoordinateCheck(widths, probes, sizes)


def _recorder(out: list[float]) -> Any:
    def hook(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
        out.append(output.detach().abs().mean().item())

    return hook
