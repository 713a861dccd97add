"""S83 activation maximisation: the regularised ascent raises the chosen unit's activation."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_model
from convzoo.interpret.activation_max import activation_maximisation


def test_ascent_raises_the_unit_and_keeps_the_model_untouched():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = activation_maximisation(model, (3, 16, 16), channel=2, layer="stages.1", steps=12, lr=0.1)
    assert result.image.shape == (3, 16, 16) and torch.isfinite(result.image).all()
    assert result.objective[1] > result.objective[0] + 0.01
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    logit = activation_maximisation(model, (3, 16, 16), channel=4, steps=8, lr=0.1, jitter=0)
    assert logit.objective[1] > logit.objective[0]
    with pytest.raises(ValueError, match="unknown layer"):
        activation_maximisation(model, (3, 16, 16), layer="nope", steps=1)
