"""The project's one accuracy loop: mean cross-entropy and accuracy of a classifier on a dataset."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(
    model: nn.Module | Callable[[Tensor], Tensor],
    dataset: Dataset,
    batch_size: int = 256,
    device: str = "cpu",
    *,
    fixed_batch: bool = False,
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (in eval mode) on ``dataset``: the project's one accuracy loop.

    ``model`` is a module or any callable from images ``(B, C, H, W)`` to logits ``(B, classes)`` (a TorchScript
    file, an onnxruntime session). ``fixed_batch=True`` feeds it batches of exactly ``batch_size``, the last one
    padded with copies of its first image and the padding's logits dropped: traced, frozen and lowered deploy forms
    are specialised to their batch size.
    """
    was_training = isinstance(model, nn.Module) and model.training
    if was_training:  # a module already in eval mode is left alone (exported programs refuse .eval())
        model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        images, labels = images.to(device), labels.to(device)  # (b, C, H, W), (b,) with b ≤ batch_size
        count = labels.numel()
        if fixed_batch and count < batch_size:
            images = torch.cat([images, images[:1].expand(batch_size - count, *images.shape[1:])])
        logits = model(images)[:count]  # (b, classes)
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += count
    if was_training:
        model.train()
    return loss_sum / max(seen, 1), correct / max(seen, 1)
