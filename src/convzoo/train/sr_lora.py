"""DSCLoRA fine-tuning (S29): ConvLoRA adapters over a trained base, supervised by a teacher through distillation.

The ``sr`` task uses these when given ``--option base=CKPT`` and ``--option teacher=CKPT``:

- :func:`load_base` starts a network from a trained ``sr`` checkpoint's weights. Under each ConvLoRA adapter the
  frozen kernel ``W_PT`` is the base's kernel of the same name, so with the adapters' ``B`` at zero the network starts
  equal to the base, and training moves only the adapters (``W = W_PT + (α/r)·BA``).
- :func:`dsclora_loss` is the paper's objective ``λ1·L_rec + λ2·L_TS + λ3·L_AD``: L1 to the HR image, L1 to the
  teacher's output, and the spatial-affinity distance between the student's and the teacher's block outputs
  (:func:`~convzoo.models.span.spatial_affinity_loss`, channel-count free, so a 26-channel student matches a
  48-channel SPAN teacher block by block). ``λ1 = 1``; ``λ2`` and ``λ3`` are the options ``teacher_weight`` and
  ``affinity_weight`` (default 1 each: the text available does not state the paper's values).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.layers.lora import LoRAConv
from convzoo.models.span import SPAN, spatial_affinity_loss

__all__ = ["block_outputs", "dsclora_loss", "load_base", "read_sr_checkpoint"]


def read_sr_checkpoint(path: str, role: str, architecture: dict[str, Any]) -> nn.Module:
    """The model of the ``sr`` checkpoint at ``path`` (eval mode), refused unless it upscales by the same scale and
    with the same bicubic residual as ``architecture``; ``role`` ("base", "teacher") names it in errors."""
    from convzoo.train.checkpoint import build_from_checkpoint

    if not Path(path).exists():
        raise FileNotFoundError(f"train --task sr: no {role} checkpoint at {path!r}")
    model, checkpoint = build_from_checkpoint(path)
    saved = checkpoint.architecture
    if checkpoint.task != "sr":
        raise ValueError(f"train --task sr: the {role} {path!r} is a {checkpoint.task!r} checkpoint, not an sr one")
    for key, default in (("scale", None), ("residual", False)):
        if saved.get(key, default) != architecture.get(key, default):
            raise ValueError(
                f"train --task sr: the {role} {path!r} was trained with {key}={saved.get(key, default)!r}, "
                f"but this run has {key}={architecture.get(key, default)!r}"
            )
    return model


def load_base(model: nn.Module, base: nn.Module) -> None:
    """Copy every weight of ``base`` into ``model``: the same names, except that the kernel under a ConvLoRA adapter
    ``<name>.conv.*`` takes the base's ``<name>.*``. The adapters keep their start (``B = 0``), so ``model`` then
    computes what ``base`` computes. Raises naming the first weights that do not pair up or differ in shape."""
    adapters = [name for name, module in model.named_modules() if isinstance(module, LoRAConv)]
    if any(isinstance(module, LoRAConv) for module in base.modules()):
        raise ValueError("train --task sr: the base checkpoint has LoRA adapters; the base must be a plain network")
    theirs = base.state_dict()
    mine = model.state_dict()
    mapped: dict[str, Tensor] = {}
    used: set[str] = set()
    for key, value in mine.items():
        if key.rsplit(".", 1)[-1].startswith("lora_"):
            continue  # the adapters start as they were built
        source = key
        for name in adapters:
            if key.startswith(f"{name}.conv."):
                source = f"{name}.{key.removeprefix(f'{name}.conv.')}"
        if source not in theirs:
            raise ValueError(f"train --task sr: the base has no weight {source!r} for {key!r} of the model")
        if theirs[source].shape != value.shape:
            raise ValueError(
                f"train --task sr: the base's {source!r} is {tuple(theirs[source].shape)}, the model's {key!r} is "
                f"{tuple(value.shape)} (is the base built with the same width and blocks?)"
            )
        mapped[key] = theirs[source]
        used.add(source)
    unused = sorted(set(theirs) - used)
    if unused:
        raise ValueError(f"train --task sr: the base has weights the model lacks: {unused[:5]}")
    with torch.no_grad():
        for key, value in mapped.items():
            mine[key].copy_(value)


@contextmanager
def block_outputs(model: nn.Module) -> Iterator[list[Tensor]]:
    """Within the block, each forward of ``model`` appends the outputs of its SPAN blocks (``(N, C, H, W)`` each)
    to the yielded list; ``model`` may be wrapped (bicubic residual, DDP)."""
    spans = [m for m in model.modules() if isinstance(m, SPAN)]
    if len(spans) != 1:
        raise ValueError(
            f"train --task sr: distillation compares SPAN blocks (span, dsclora); {type(model).__name__} holds "
            f"{len(spans)} SPAN networks"
        )
    captured: list[Tensor] = []
    hooks = [block.register_forward_hook(lambda m, i, out: captured.append(out[0])) for block in spans[0].blocks]
    try:
        yield captured
    finally:
        for hook in hooks:
            hook.remove()


def dsclora_loss(
    student: nn.Module,
    teacher: nn.Module,
    lr: Tensor,
    hr: Tensor,
    teacher_weight: float,
    affinity_weight: float,
) -> tuple[Tensor, dict[str, float]]:
    """``L1(S(lr), hr) + teacher_weight·L1(S(lr), T(lr)) + affinity_weight·L_AD`` for ``(B, 3, h, w)`` LR and
    ``(B, 3, sh, sw)`` HR batches, and its three terms (floats). The teacher runs without gradients."""
    with torch.no_grad(), block_outputs(teacher) as teacher_blocks:
        target = teacher(lr).float()  # (B, 3, sh, sw)
    with block_outputs(student) as student_blocks:
        sr = student(lr).float()  # (B, 3, sh, sw)
    if len(student_blocks) != len(teacher_blocks):
        raise ValueError(
            f"train --task sr: the student has {len(student_blocks)} SPAN blocks and the teacher "
            f"{len(teacher_blocks)}; the affinity loss pairs them one to one"
        )
    reconstruction = F.l1_loss(sr, hr)
    to_teacher = F.l1_loss(sr, target)
    affinity = spatial_affinity_loss(student_blocks, teacher_blocks)
    loss = reconstruction + teacher_weight * to_teacher + affinity_weight * affinity
    return loss, {"l1": reconstruction.item(), "teacher_l1": to_teacher.item(), "affinity": affinity.item()}
