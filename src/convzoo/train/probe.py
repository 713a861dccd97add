"""Linear probe: how well a logistic regression reads the classes off a network's frozen pooled features
(the yardstick of self-supervised recipes: RotNet S76, Noise As Targets S86)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from convzoo.data.base import load_dataset

__all__ = ["pooled_features", "linear_probe"]


@torch.no_grad()
def pooled_features(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """``(N, D)`` pre-logit features (``forward_features`` then ``forward_head(pre_logits=True)``) of a convzoo
    classifier for ``(N, C, H, W)`` images, in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(device)
        out.append(model.forward_head(model.forward_features(x), pre_logits=True).float().cpu())
    model.train(was_training)
    return torch.cat(out)


def linear_probe(model: nn.Module, data: str = "digits", seed: int = 0) -> float:
    """Test accuracy of an L2-regularised logistic regression (scikit-learn, C = 1) fitted on the standardised
    pooled features of ``data``'s train split and scored on its test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train, test = load_dataset(data, "train"), load_dataset(data, "test")
    train_x, test_x = pooled_features(model, train.images).numpy(), pooled_features(model, test.images).numpy()
    scaler = StandardScaler().fit(train_x)
    classifier = LogisticRegression(max_iter=2000, random_state=seed)
    classifier.fit(scaler.transform(train_x), train.labels.numpy())
    return float(np.mean(classifier.predict(scaler.transform(test_x)) == test.labels.numpy()))
