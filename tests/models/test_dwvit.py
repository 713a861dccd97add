"""Depth-wise ViT (S98): attention equals a per-channel dynamic kernel applied by loops; DeiT-S layout; training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convzoo.models import create_model
from convzoo.models.counting import count_params
from convzoo.models.dwvit import DepthwiseDynamicAttention
from tests.models._deploys import check_onnx_export, check_profile_and_optimize, check_steps_lower_the_loss


def _loop_reference(attn: DepthwiseDynamicAttention, x):
    """Per sample, channel c and output position i: kernel_j = softmax_j(q_i·k_j / √d) over c's head, then Σ_j."""
    c = attn.dim
    d = attn.head_dim
    w, b = attn.qkv.weight, attn.qkv.bias
    outputs = []
    for sample in x:
        q, k, v = (sample @ w[i * c : (i + 1) * c].T + b[i * c : (i + 1) * c] for i in range(3))  # (L, C) each
        y = torch.zeros_like(sample)
        for ch in range(c):
            head = slice(ch // d * d, ch // d * d + d)
            for i in range(sample.shape[0]):
                logits = [(q[i, head] @ k[j, head]).item() / math.sqrt(d) for j in range(sample.shape[0])]
                top = max(logits)
                e = [math.exp(value - top) for value in logits]
                kernel = [value / sum(e) for value in e]  # the dynamic kernel of channel ch at position i
                y[i, ch] = sum(kernel[j] * v[j, ch] for j in range(sample.shape[0]))
        outputs.append(y @ attn.proj.weight.T + attn.proj.bias)
    return torch.stack(outputs)


@pytest.mark.parametrize("heads", [None, 2])
def test_attention_is_a_depthwise_dynamic_convolution(heads):
    torch.manual_seed(0)
    attn = DepthwiseDynamicAttention(6, heads).double()
    for linear in (attn.qkv, attn.proj):
        nn.init.normal_(linear.bias)
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        reference = _loop_reference(attn, x)
        torch.testing.assert_close(attn(x), reference, rtol=0, atol=1e-12)
        torch.testing.assert_close(attn.forward_as_convolution(x), reference, rtol=0, atol=1e-12)
        kernels = attn.dynamic_kernels(x)
    assert kernels.shape == (2, 6, 5, 5)
    torch.testing.assert_close(kernels.sum(-1), torch.ones(2, 6, 5, dtype=torch.float64))
    if heads is None:  # depth-wise: channels do not share kernels
        assert not torch.allclose(kernels[:, 0], kernels[:, 1])
    else:  # grouped: the channels of one head share its kernel
        torch.testing.assert_close(kernels[:, 0], kernels[:, 2])


def test_dwvit_small_is_deit_s_with_depthwise_attention():
    with torch.device("meta"):
        model = create_model("dwvit_small")
        tokens = model.forward_features(torch.empty(2, 3, 224, 224))
    assert count_params(model) == 22_050_664  # DeiT-S (timm deit_small_patch16_224)
    assert tokens.shape == (2, 197, 384)
    blocks = model.stages[0].blocks
    assert len(blocks) == 12
    assert all(b.attn.num_heads == 384 and b.attn.head_dim == 1 for b in blocks)
    assert blocks[-1].drop_path.p == pytest.approx(0.1)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = create_model("dwvit_small", num_classes=4, img_size=32, patch_size=8, dim=32, depth=2, drop_path_rate=0.0)
    check_steps_lower_the_loss(model, 6, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))


def test_other_input_sizes_resize_the_position_embedding():
    model = create_model("dwvit_small", num_classes=3, img_size=32, patch_size=8, dim=16, depth=1)
    assert model(torch.randn(1, 3, 48, 40)).shape == (1, 3)
    assert model.forward_stages(torch.randn(1, 3, 48, 40))[0].shape == (1, 16, 6, 5)


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"dwvit_small: dwvit: heads must divide the width 384, got 5"):
        create_model("dwvit_small", heads=5)
    with pytest.raises(ValueError, match=r"dwvit_small: takes no op="):
        create_model("dwvit_small", op="conv")
    with pytest.raises(ValueError, match=r"dwvit_small: dwvit: img_size must be a positive multiple of patch_size"):
        create_model("dwvit_small", img_size=200)


def _small_eval():
    torch.manual_seed(0)
    return create_model("dwvit_small", num_classes=5, img_size=32, patch_size=8, dim=32, depth=2).eval(), torch.randn(
        2, 3, 32, 32
    )


def test_profile_and_optimize():
    check_profile_and_optimize(*_small_eval())


@pytest.mark.slow
@pytest.mark.peer
def test_export_onnx_matches(tmp_path):
    check_onnx_export(*_small_eval(), tmp_path / "model.onnx")
