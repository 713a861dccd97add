"""ConvShareViT (S77): shared-weight depth-wise convs equal linear layers with tied (Toeplitz) weights; the valid,
full-width model equals DeiT with those weights; DeiT-Ti count; training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.layers.attention import TransformerBlock
from convzoo.models import create_model
from convzoo.models.convshare_vit import SharedDepthwiseConv
from convzoo.models.counting import count_params
from convzoo.models.dwvit import TokenViT
from tests.models._deploys import check_onnx_export, check_profile_and_optimize, check_steps_lower_the_loss


def _tied_matrix(layer: SharedDepthwiseConv):
    """The (C_out, C_in) matrix the paper's shared conv stands for, written out entry by entry."""
    w = layer.weight[:, 0]  # (kernels, k)
    kernels, k = w.shape
    c_in, stride, pad = layer.in_features, layer.stride, layer.pad
    length = layer.out_features // kernels
    matrix = torch.zeros(layer.out_features, c_in, dtype=w.dtype)
    bias = torch.zeros(layer.out_features, dtype=w.dtype)
    for o in range(kernels):
        for t in range(length):
            bias[o * length + t] = layer.bias[o]
            for j in range(k):
                column = t * stride + j - pad
                if 0 <= column < c_in:
                    matrix[o * length + t, column] = w[o, j]
    return matrix, bias


@pytest.mark.parametrize(
    ("c_in", "c_out", "padding", "kernel_size"),
    [(6, 4, "valid", None), (6, 8, "valid", 3), (5, 10, "same", 3), (8, 2, "same", 3), (4, 4, "same", 1)],
)
def test_shared_conv_equals_a_linear_layer_with_tied_weights(c_in, c_out, padding, kernel_size):
    torch.manual_seed(0)
    layer = SharedDepthwiseConv(c_in, c_out, padding=padding, kernel_size=kernel_size).double()
    nn.init.normal_(layer.weight)
    nn.init.normal_(layer.bias)
    x = torch.randn(2, 3, c_in, dtype=torch.float64)
    matrix, bias = _tied_matrix(layer)
    with torch.no_grad():
        got = layer(x)
        assert got.shape == (2, 3, c_out)
        torch.testing.assert_close(got, x @ matrix.T + bias, rtol=0, atol=1e-12)
        weight, b = layer.equivalent_linear()
        torch.testing.assert_close(weight, matrix, rtol=0, atol=0)
        torch.testing.assert_close(b, bias, rtol=0, atol=0)


def test_full_width_valid_kernels_are_exactly_a_linear_layer():
    layer = SharedDepthwiseConv(6, 4).double()
    linear = nn.Linear(6, 4).double()
    with torch.no_grad():
        linear.weight.copy_(layer.weight[:, 0])
        linear.bias.copy_(torch.randn(4))
        layer.bias.copy_(linear.bias)
        x = torch.randn(3, 6, dtype=torch.float64)
        torch.testing.assert_close(layer(x), linear(x), rtol=0, atol=1e-14)
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in linear.parameters())


def test_valid_model_equals_deit_with_the_same_weights():
    torch.manual_seed(0)
    kwargs = {"img_size": 16, "patch_size": 8, "dim": 12, "depth": 2, "heads": 3, "drop_path_rate": 0.0}
    model = create_model("convshare_vit_tiny", num_classes=5, **kwargs).double().eval()
    deit = TokenViT(
        "deit",
        img_size=16,
        patch_size=8,
        dim=12,
        blocks=lambda: [TransformerBlock(12, 3) for _ in range(2)],
        num_classes=5,
        in_chans=3,
    ).double()
    shared = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, SharedDepthwiseConv)}
    state = {n: v[:, 0] if n in shared else v for n, v in model.state_dict().items()}  # (out, 1, in) → (out, in)
    deit.load_state_dict(state)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), deit.eval()(x), rtol=0, atol=1e-12)


def test_convshare_vit_tiny_is_deit_ti_sized():
    with torch.device("meta"):
        model = create_model("convshare_vit_tiny")
        tokens = model.forward_features(torch.empty(1, 3, 224, 224))
    assert count_params(model) == 5_717_416  # DeiT-Ti (timm deit_tiny_patch16_224)
    assert tokens.shape == (1, 197, 192)
    assert not any(isinstance(m, nn.Linear) for m in model.stages.modules())  # every block linear is a shared conv
    shared = [m for m in model.modules() if isinstance(m, SharedDepthwiseConv)]
    assert len(shared) == 4 * 12


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(padding):
    torch.manual_seed(0)
    kernel = None if padding == "valid" else 3
    model = create_model(
        "convshare_vit_tiny", num_classes=4, img_size=32, patch_size=8, dim=24, depth=2, heads=3,
        padding=padding, kernel_size=kernel, drop_path_rate=0.0,
    )  # fmt: skip
    check_steps_lower_the_loss(model, 8, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"convshare_vit: padding must be one of 'valid', 'same', got 'full'"):
        SharedDepthwiseConv(4, 4, padding="full")
    with pytest.raises(ValueError, match=r"gives 4 outputs per kernel, which must divide out_features 6"):
        SharedDepthwiseConv(6, 6, kernel_size=3)
    with pytest.raises(ValueError, match=r"convshare_vit: same padding needs an odd kernel_size, got None"):
        SharedDepthwiseConv(4, 4, padding="same")
    with pytest.raises(ValueError, match=r"needs out_features 6 to be a multiple or a divisor of in_features 4"):
        SharedDepthwiseConv(4, 6, padding="same", kernel_size=3)
    with pytest.raises(ValueError, match=r"convshare_vit: expected 4 input features, got 5"):
        SharedDepthwiseConv(4, 4)(torch.randn(1, 2, 5))
    with pytest.raises(ValueError, match=r"convshare_vit_tiny: convshare_vit: heads must divide dim 192, got 5"):
        create_model("convshare_vit_tiny", heads=5)


def _small_eval():
    torch.manual_seed(0)
    return create_model(
        "convshare_vit_tiny", num_classes=5, img_size=32, patch_size=8, dim=24, depth=2
    ).eval(), torch.randn(2, 3, 32, 32)


def test_profile_and_optimize():
    check_profile_and_optimize(*_small_eval())


@pytest.mark.slow
@pytest.mark.peer
def test_export_onnx_matches(tmp_path):
    check_onnx_export(*_small_eval(), tmp_path / "model.onnx")
