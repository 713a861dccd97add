"""S112 CKA: CKA(X, X) = 1, invariance to orthogonal transforms and isotropic scaling, and the layer heat map."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_model
from convzoo.interpret.cka import cka, cka_matrix, linear_cka, rbf_cka


@pytest.fixture
def features():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(40, 12, generator=generator, dtype=torch.float64), torch.randn(40, 7, generator=generator)


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_identity_orthogonal_and_scale_invariance(features, kernel):
    x, y = features
    q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64))
    assert cka(x, x, kernel) == pytest.approx(1.0, abs=1e-12)
    assert cka(x, x @ q, kernel) == pytest.approx(1.0, abs=1e-10)
    assert cka(x, 7.5 * x, kernel) == pytest.approx(1.0, abs=1e-10)
    base = cka(x, y, kernel)
    assert base < 0.9
    assert cka(x @ q * 3.0, y, kernel) == pytest.approx(base, abs=1e-10)
    assert cka(x, y, kernel) == pytest.approx(cka(y, x, kernel), abs=1e-12)


def test_linear_cka_forms_agree_and_translation_invariance(features):
    x, _ = features
    z = torch.tanh(x[:, :5]) + 0.1 * x[:, 5:10]
    gram_form = linear_cka(x[:8], z[:8])  # n ≤ features: the n×n Gram form
    feature_form = linear_cka(x, z)  # n > features: the feature-space form
    from convzoo.interpret.cka import _alignment

    assert feature_form == pytest.approx(
        _alignment((x - x.mean(0)) @ (x - x.mean(0)).T, (z - z.mean(0)) @ (z - z.mean(0)).T)
    )
    assert 0 < gram_form <= 1
    assert linear_cka(x + 5.0, z) == pytest.approx(feature_form, abs=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="same samples, got 3 and 4"):
        linear_cka(torch.randn(3, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="kernel must be one of"):
        cka(torch.randn(3, 2), torch.randn(3, 2), "poly")
    with pytest.raises(ValueError, match="sigma_fraction"):
        rbf_cka(torch.randn(3, 2), torch.randn(3, 2), sigma_fraction=0)


def test_layer_matrix_of_a_model_with_itself_has_a_unit_diagonal():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    other = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    inputs = torch.randn(16, 3, 16, 16)
    matrix, rows, cols = cka_matrix(model, model, inputs)
    assert rows == cols == ["stages.0", "stages.1", "stages.2"]
    torch.testing.assert_close(matrix.diagonal(), torch.ones(3, dtype=matrix.dtype))
    torch.testing.assert_close(matrix, matrix.T)
    across, _, _ = cka_matrix(model, other, inputs, kernel="rbf")
    assert across.shape == (3, 3) and ((across > 0) & (across < 1)).all()
    with pytest.raises(ValueError, match="unknown layer 'stage.0'; did you mean 'stages.0'"):
        cka_matrix(model, other, inputs, layers_a=["stage.0"])
