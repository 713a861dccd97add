"""SparK (S81): masked positions never leak into visible features (changed masked inputs leave every stage's
visible output bit-identical, train and eval mode; a dense backbone does leak), masked BatchNorm equals a
reference over the visible rows, the loss equals a per-patch loop over masked patches, the mask keeps the asked
count, and the encoder's weights load into the classifier."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.spark import ActiveMask, MaskedBatchNorm2d, SparK, SparseEncoder, patchify, random_active


def _backbone():
    torch.manual_seed(0)
    return create_model("resnet20", num_classes=10, in_chans=1)


def _pixels(active: torch.Tensor, patch: int) -> torch.Tensor:
    return active.repeat_interleave(patch, 2).repeat_interleave(patch, 3)


@pytest.mark.parametrize("training", [True, False])
def test_masked_positions_never_leak_into_visible_features(training):
    encoder = SparseEncoder(_backbone()).train(training)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 1, 32, 32, generator=g)
    active = random_active(3, (8, 8), 0.6, generator=g)
    changed = torch.where(_pixels(active, 4), x, 10 * torch.randn(x.shape, generator=g))
    before = [f.clone() for f in encoder(x, active)]
    after = encoder(changed, active)
    for stage, (a, b) in enumerate(zip(before, after, strict=True)):
        assert torch.equal(a, b), f"stage {stage} changed"
        visible = _pixels(active, a.shape[-1] // 8)
        assert bool((a * ~visible == 0).all())  # masked positions hold zeros
        assert bool((a * visible != 0).any())
    dense = _backbone().train(training)  # the same inputs through the dense backbone do leak
    assert not torch.equal(dense.forward_stages(x)[-1], dense.forward_stages(changed)[-1])


def test_masked_batchnorm_uses_visible_statistics():
    bn = MaskedBatchNorm2d(3).double()
    bn.mask = ActiveMask()
    bn.mask.active = random_active(2, (2, 2), 0.5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.normal_()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    out = bn(x)
    visible = _pixels(bn.mask.active, 2)[:, 0]  # (B, H, W)
    for c in range(3):
        values = [float(x[b, c, i, j]) for b in range(2) for i in range(4) for j in range(4) if visible[b, i, j]]
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        expected = (x[:, c] - mean) / (var + bn.eps) ** 0.5 * bn.weight[c] + bn.bias[c]
        torch.testing.assert_close(out[:, c], torch.where(visible, expected, 0.0), rtol=0, atol=1e-12)
        unbiased = var * len(values) / (len(values) - 1)
        assert float(bn.running_var[c]) == pytest.approx(0.9 + 0.1 * unbiased)
        assert float(bn.running_mean[c]) == pytest.approx(0.1 * mean)


def test_loss_is_the_normalised_error_on_masked_patches():
    model = SparK(_backbone()).double()
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 1, 32, 32, generator=g, dtype=torch.float64)
    active = random_active(2, (8, 8), 0.6, generator=g)
    model.eval()
    with torch.no_grad():
        loss = model(x, active)
        prediction = model._decode(x, active)
    total, count = 0.0, 0
    for b in range(2):
        for i in range(8):
            for j in range(8):
                if active[b, 0, i, j]:
                    continue
                target = x[b, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4]
                target = (target - target.mean()) / (target.var() + 1e-6) ** 0.5
                total += float(F.mse_loss(prediction[b, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4], target))
                count += 1
    assert float(loss) == pytest.approx(total / count, rel=1e-10)
    assert patchify(x, 4).shape == (2, 64, 16)
    rebuilt = model.reconstruct(x, active)
    assert torch.equal(rebuilt * _pixels(active, 4), x * _pixels(active, 4))


def test_random_active_and_encoder_weights():
    active = random_active(5, (8, 8), 0.6)
    assert active.flatten(1).sum(1).tolist() == [round(64 * 0.4)] * 5
    model = SparK(_backbone())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(2, 1, 32, 32)).backward()
    optimizer.step()
    classifier = _backbone()
    result = classifier.load_state_dict(model.encoder_state_dict(), strict=False)
    assert result.unexpected_keys == [] and set(result.missing_keys) == {"head.fc.weight", "head.fc.bias"}
    assert torch.equal(classifier.stem[0].weight, model.encoder.backbone.stem[0].weight)
    assert not torch.equal(classifier.stem[0].weight, _backbone().stem[0].weight)  # trained: the encoder holds a copy


def test_errors():
    model = SparK(_backbone())
    with pytest.raises(ValueError, match="input sides must be multiples of 4, got \\(30, 32\\)"):
        model(torch.randn(1, 1, 30, 32))
    with pytest.raises(ValueError, match="mask_ratio must be a number in"):
        SparK(_backbone(), mask_ratio=1.0)
    with pytest.raises(TypeError, match="must be a convzoo classifier"):
        SparseEncoder(torch.nn.Conv2d(1, 1, 3))
