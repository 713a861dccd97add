"""What both int8 stacks of :mod:`convzoo.deploy.quantize` share: the report, calibration batches, QAT steps.

FX (:mod:`convzoo.deploy.quantize`) and PT2E (:mod:`convzoo.deploy.quantize_pt2e`) each import this module;
neither imports the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["LAYOUT_MODULES", "LAYOUT_OPS", "QuantizeReport", "batches", "fine_tune"]

# modules that only move or relabel data: running them on float tensors costs nothing worth reporting
LAYOUT_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
# fmt: off
LAYOUT_OPS = frozenset({
    "view", "reshape", "_unsafe_view", "flatten", "permute", "movedim", "transpose", "t", "contiguous", "clone",
    "unsqueeze", "squeeze", "expand", "alias", "detach", "dropout", "slice", "select", "split", "split_with_sizes",
    "chunk", "unbind", "unflatten", "sym_size", "_assert_tensor_metadata", "_assert_scalar",
})  # aten ops that only move or relabel data
# fmt: on


@dataclass
class QuantizeReport:
    """What :func:`quantize` did: the stack, how the int8 model executes, and each module class kept in float.

    ``float_kept`` maps a class name to why it runs in float; ``float_modules`` to the module paths concerned
    (``""``: the top-level module's own code).
    """

    backend: str
    mode: str
    executed: str
    float_kept: dict[str, str] = field(default_factory=dict)
    float_modules: dict[str, list[str]] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"int8 {self.mode} ({self.backend}): {self.executed}"]
        if self.float_kept:
            lines += ["", "| kept in float | modules | why |", "|---|---|---|"]
            for cls, why in self.float_kept.items():
                names = self.float_modules.get(cls, [])
                more = f", … ({len(names)})" if len(names) > 4 else ""
                shown = ", ".join(n or "(top level)" for n in names[:4]) + more
                lines.append(f"| {cls} | {shown} | {why} |")
        return "\n".join(lines) + "\n"

    def _keep(self, cls: str, name: str, why: str) -> None:
        self.float_kept.setdefault(cls, why)
        self.float_modules.setdefault(cls, []).append(name)


def batches(loader: Iterable, limit: int) -> Iterable[Tensor]:
    """The first ``limit`` input batches of ``loader`` (the input of ``(input, label)`` pairs)."""
    for index, batch in enumerate(loader):
        if index >= limit:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def fine_tune(model: nn.Module, calib_loader: Iterable, epochs: int, lr: float) -> None:
    """QAT: SGD on cross-entropy over the loader's ``(input, label)`` pairs, fake quantisation in the forward."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        for batch in calib_loader:
            if not isinstance(batch, (tuple, list)):
                raise ValueError("quantize: qat needs (input, label) batches from calib_loader")
            loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
