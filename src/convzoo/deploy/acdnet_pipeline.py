"""ACDNet's compression pipeline (S44): structured filter pruning, fine-tuning, then int8 — each step measured.

The paper turns ACDNet (4.74 M parameters) into Micro-ACDNet (0.131 M, Table 11) by pruning whole filters, ranked
by their magnitude, fine-tuning after pruning, and quantising to 8 bits for a microcontroller. Here:

1. **prune** (:func:`prune_acdnet`): each of conv1 … conv11 keeps the fraction ``keep`` (``sfeb_keep`` for the
   SFEB's conv1, conv2) of its filters with the largest L2 norm — the ranking of
   ``torch.nn.utils.prune.ln_structured(n=2, dim=0)``, whose mask is read — and the network is rebuilt at the
   smaller widths with the kept filters, their BN statistics and the matching input channels of the next conv
   (so the pruned model is a dense, smaller ACDNet, not a masked one);
2. **fine-tune**: ``epochs`` of AdamW with a cosine schedule on the training split;
3. **int8**: :func:`convzoo.deploy.quantize` (FX, per-channel int8 weights, calibrated uint8 activations, BN folded).

Every step records parameters, the serialised size, MACs (counted on the float form by
:func:`convzoo.profile.count_macs`; the int8 model performs the fine-tuned model's MACs in int8) and test accuracy.

Departure: the paper ranks filters by a hybrid of magnitude and first-order Taylor scores and prunes iteratively
with fine-tuning in between; this pipeline prunes once by magnitude and fine-tunes once.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int, check_number
from convzoo.deploy.quantize import model_size_bytes, quantize
from convzoo.models.acdnet import ACDNet
from convzoo.profile import count_macs
from convzoo.train.evaluate import evaluate

__all__ = ["CompressionReport", "CompressionStep", "compress_acdnet", "prune_acdnet", "kept_filters"]


@dataclass(frozen=True)
class CompressionStep:
    """One stage of the pipeline: its name, parameters, bytes on disk, MACs per clip and test accuracy."""

    name: str
    params: int
    size_bytes: int
    macs: int
    accuracy: float


@dataclass
class CompressionReport:
    """The pipeline's steps in order (``trained``, ``pruned``, ``fine-tuned``, ``int8``) and the kept widths."""

    steps: list[CompressionStep] = field(default_factory=list)
    channels: tuple[int, ...] = ()

    def step(self, name: str) -> CompressionStep:
        return next(s for s in self.steps if s.name == name)

    def ratios(self) -> dict[str, float]:
        """Size and MACs of the trained net over the int8 one, and accuracy points lost."""
        first, last = self.steps[0], self.steps[-1]
        return {
            "size_reduction": first.size_bytes / last.size_bytes,
            "macs_reduction": first.macs / last.macs,
            "accuracy_points_lost": 100 * (first.accuracy - last.accuracy),
        }

    def table(self) -> str:
        rows = ["| step | params | size (KiB) | MMACs | accuracy |", "|---|---:|---:|---:|---:|"]
        for s in self.steps:
            rows.append(
                f"| {s.name} | {s.params:,} | {s.size_bytes / 1024:.1f} | {s.macs / 1e6:.2f} | {100 * s.accuracy:.2f} |"
            )
        r = self.ratios()
        rows.append(
            f"\n{r['size_reduction']:.1f}× smaller, {r['macs_reduction']:.1f}× fewer MACs, "
            f"{r['accuracy_points_lost']:+.2f} accuracy points lost; kept widths {list(self.channels)}"
        )
        return "\n".join(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [asdict(s) for s in self.steps], "channels": list(self.channels), **self.ratios()}


def _convs_and_norms(model: ACDNet) -> tuple[list[nn.Conv2d], list[nn.BatchNorm2d]]:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]  # conv1 … conv12, in order
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    return convs, norms


def kept_filters(conv: nn.Conv2d, keep: float) -> torch.Tensor:
    """Indices (ascending) of the ``round(keep · out_channels)`` filters of ``conv`` with the largest L2 norm, read
    from the mask of ``torch.nn.utils.prune.ln_structured`` (applied to a copy; ``conv`` is left as it is)."""
    count = max(1, round(keep * conv.out_channels))
    probe = copy.deepcopy(conv)
    prune.ln_structured(probe, "weight", amount=conv.out_channels - count, n=2, dim=0)
    return probe.weight_mask.flatten(1).any(1).nonzero().flatten()


def prune_acdnet(model: ACDNet, keep: float = 0.2, sfeb_keep: float | None = None) -> ACDNet:
    """A dense ACDNet holding ``model``'s largest-norm filters: ``keep`` of each TFEB conv's (conv3 … conv11),
    ``sfeb_keep`` (default ``keep``) of conv1's and conv2's; conv12 and the linear layer keep all classes."""
    check_number(keep, "keep", "prune_acdnet", high=1.0)
    sfeb_keep = keep if sfeb_keep is None else check_number(sfeb_keep, "sfeb_keep", "prune_acdnet", high=1.0)
    convs, norms = _convs_and_norms(model)
    kept = [kept_filters(conv, sfeb_keep if i < 2 else keep) for i, conv in enumerate(convs[:11])]
    kept.append(torch.arange(convs[11].out_channels))
    config = model.config
    pruned = ACDNet(type(config)(**{**asdict(config), "channels": tuple(len(k) for k in kept[:11])}))
    new_convs, new_norms = _convs_and_norms(pruned)
    # conv1 and conv3 read one channel (the waveform, the SFEB image); every other conv reads the previous one
    inputs = [None, kept[0], None, *kept[2:11]]
    with torch.no_grad():
        for i in range(12):
            weight = convs[i].weight[kept[i]]
            if inputs[i] is not None:
                weight = weight[:, inputs[i]]
            new_convs[i].weight.copy_(weight)
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new_norms[i], name).copy_(getattr(norms[i], name)[kept[i]])
            new_norms[i].num_batches_tracked.copy_(norms[i].num_batches_tracked)
        old_fc, new_fc = model.tfeb[-1], pruned.tfeb[-1]
        new_fc.load_state_dict(old_fc.state_dict())
    return pruned.train(model.training)


def _fine_tune(model: nn.Module, train_set: Dataset, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    total = max(1, epochs * len(loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    model.train()
    for _ in range(epochs):
        for waves, labels in loader:
            loss = F.cross_entropy(model(waves), labels, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


def _step(name: str, model: nn.Module, counted: nn.Module, example: torch.Tensor, test_set: Dataset) -> CompressionStep:
    params = sum(p.numel() for p in counted.parameters())
    _, accuracy = evaluate(model, test_set, batch_size=64)
    return CompressionStep(name, params, model_size_bytes(model), count_macs(counted.eval(), example), accuracy)


def compress_acdnet(
    model: ACDNet,
    train_set: Dataset,
    test_set: Dataset,
    *,
    keep: float = 0.2,
    sfeb_keep: float | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 1e-3,
    calib_batches: int = 8,
    seed: int = 0,
) -> tuple[nn.Module, CompressionReport]:
    """Prune a trained ``model`` to ``keep`` of its filters, fine-tune ``epochs`` on ``train_set``, quantise to
    int8; returns the int8 model and the :class:`CompressionReport` measured on ``test_set``."""
    if not isinstance(model, ACDNet):
        raise TypeError(f"compress_acdnet: model must be an ACDNet, got {type(model).__name__}")
    check_int(epochs, "epochs", "compress_acdnet", low=0)
    check_int(calib_batches, "calib_batches", "compress_acdnet")
    example = train_set[0][0].unsqueeze(0)  # (1, 1, T)
    model = copy.deepcopy(model).eval()
    report = CompressionReport()
    report.steps.append(_step("trained", model, model, example, test_set))
    pruned = prune_acdnet(model, keep, sfeb_keep).eval()
    report.channels = tuple(pruned.config.channels)
    report.steps.append(_step("pruned", pruned, pruned, example, test_set))
    torch.manual_seed(seed)
    _fine_tune(pruned, train_set, epochs, batch_size, lr, seed)
    report.steps.append(_step("fine-tuned", pruned, pruned, example, test_set))
    calib = DataLoader(train_set, batch_size=batch_size, shuffle=False)
    int8 = quantize(pruned, calib, calib_batches=calib_batches)
    report.steps.append(_step("int8", int8, pruned, example, test_set))
    return int8, report
