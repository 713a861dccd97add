"""Activation maximisation (S83 featurevis, the "input modification" family): an image that excites one unit.

Gradient ascent on the input of ``objective = mean activation of channel c of a layer`` (or of logit ``c``)
with the usual regularisers: random jitter (a roll of up to ``jitter`` pixels) and random rescaling each step
(robustness to small transforms), L2 decay of the image and total variation (smoothness).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.interpret.attribution import find_module
from convzoo.registry import ANALYSES

__all__ = ["MaximisedImage", "activation_maximisation"]


@dataclass(frozen=True)
class MaximisedImage:
    image: Tensor  # (C, H, W)
    objective: list[float]  # the objective (un-regularised, un-jittered image) before and after


def _objective(model: nn.Module, image: Tensor, module: nn.Module | None, channel: int) -> Tensor:
    if module is None:
        return model(image).reshape(image.shape[0], -1)[:, channel].mean()
    captured: list[Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        model(image)
    finally:
        handle.remove()
    return captured[0][:, channel].mean()


@ANALYSES.register(
    "activation_maximisation",
    kind="analysis",
    papers=("featurevis",),
    summary="gradient ascent on the input with jitter, scale, L2 and TV regularisers (S83)",
)
def activation_maximisation(
    model: nn.Module,
    shape: tuple[int, ...],
    channel: int = 0,
    layer: str | None = None,
    *,
    steps: int = 64,
    lr: float = 0.05,
    jitter: int = 4,
    scales: tuple[float, ...] = (1.0, 0.975, 1.025, 0.95, 1.05),
    l2: float = 1e-4,
    tv: float = 1e-3,
    seed: int = 0,
    progress: bool = False,
) -> MaximisedImage:
    """An input of ``shape`` ``(C, H, W)`` maximising channel ``channel`` of ``layer`` (logit ``channel`` if None)."""
    check_int(steps, "steps", "activation_maximisation")
    check_int(jitter, "jitter", "activation_maximisation", low=0)
    check_number(lr, "lr", "activation_maximisation")
    module = None if layer is None else find_module(model, layer)
    generator = torch.Generator().manual_seed(seed)
    image = (0.01 * torch.randn(1, *shape, generator=generator)).requires_grad_(True)
    optimiser = torch.optim.Adam([image], lr=lr)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    model.eval()
    with torch.no_grad():
        start = float(_objective(model, image.detach(), module, channel))
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="activation maximisation", unit="step")
    try:
        for _ in iterator:
            dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
            scale = scales[int(torch.randint(len(scales), (1,), generator=generator))]
            moved = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
            if scale != 1.0:
                moved = F.interpolate(moved, scale_factor=scale, mode="bilinear", align_corners=False)
            variation = (image.diff(dim=-1).abs().mean() + image.diff(dim=-2).abs().mean()) if tv else 0.0
            loss = -_objective(model, moved, module, channel) + l2 * image.pow(2).sum() + tv * variation
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    with torch.no_grad():
        end = float(_objective(model, image.detach(), module, channel))
    return MaximisedImage(image.detach()[0], [start, end])
