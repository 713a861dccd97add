"""Linear probe: how well a logistic regression reads the classes off a network's frozen pooled features
(the yardstick of self-supervised recipes: RotNet S76, Noise As Targets S86)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from convzoo.data.base import load_dataset

__all__ = ["pooled_features", "linear_probe"]


@torch.no_grad()
def pooled_features(model: nn.Module, images: Tensor, batch_size: int = 256, stage: int | None = None) -> Tensor:
    """``(N, D)`` features of a convzoo classifier for ``(N, C, H, W)`` images, in eval mode: the pre-logit ones
    (``forward_features`` then ``forward_head(pre_logits=True)``), or with ``stage`` the global average of that
    stage's output (``forward_stages(x)[stage]``)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        if stage is None:
            out.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
        else:
            out.append(model.forward_stages(x)[stage].mean((2, 3)).float().cpu())  # (n, C_stage)
    model.train(was_training)
    return torch.cat(out)


def linear_probe(model: nn.Module, data: str = "digits", seed: int = 0, stage: int | None = None) -> float:
    """Test accuracy of an L2-regularised logistic regression (scikit-learn, C = 1) fitted on the standardised
    pooled features (of ``stage``, see :func:`pooled_features`) of ``data``'s train split, scored on its test
    split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train, test = load_dataset(data, "train"), load_dataset(data, "test")
    train_x = pooled_features(model, train.images, stage=stage).numpy()
    test_x = pooled_features(model, test.images, stage=stage).numpy()
    scaler = StandardScaler().fit(train_x)
    classifier = LogisticRegression(max_iter=2000, random_state=seed)
    classifier.fit(scaler.transform(train_x), train.labels.numpy())
    return float(np.mean(classifier.predict(scaler.transform(test_x)) == test.labels.numpy()))
