"""ParCNetV2 (S109): the official ParCNetV2-T count derived by hand, the centred-L2 norm against a per-pixel loop, a
block against its formula written with plain convs, per-stage layout and shapes, op= and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.counting import meta_param_count
from convzoo.models.parcnetv2 import CentredL2Norm, ParCNetV2Config, _block
from convzoo.ops.oversized import Oversized

# official parcnetv2_tiny (XuRuihan/ParCNetV2 models/parcnetv2.py)
DEPTHS, DIMS, KERNELS = (3, 3, 12, 3), (64, 128, 320, 512), (111, 55, 27, 13)


def _block_params(c: int, k: int, res_scale: bool) -> int:
    mixer = (c * 2 * c + 2 * c) + 2 * c * k + c * 7 * 7 + c * c  # PW₁ (bias), K×1 + 1×K, DW 7×7, PW₂ (no bias)
    bgu = (c * 5 * c + 5 * c) + (5 * c // 2) * c  # FC₁ C → 5C (bias), FC₂ 5C/2 → C (no bias)
    return 2 * c + mixer + bgu + (2 * c if res_scale else 0)  # two bias-free norms, optional res-scales


def test_parcnetv2_tiny_count_by_hand():
    """The official README's ImageNet-1K table lists ParCNetV2-T at 25M parameters (XT at 7.4M)."""
    total = 3 * DIMS[0] * 7 * 7 + DIMS[0] + DIMS[0]  # stem conv 7×7 (bias) + norm (scale only)
    for i in range(4):
        if i:
            total += DIMS[i - 1] + DIMS[i - 1] * DIMS[i] * 9 + DIMS[i]  # norm + conv 3×3 (bias)
        total += DEPTHS[i] * _block_params(DIMS[i], KERNELS[i], res_scale=i >= 2)
    total += 2 * 512 + 512 * 1000 + 1000  # head LayerNorm + Linear
    assert meta_param_count("parcnetv2_tiny") == total
    assert abs(total - 25e6) <= 0.005 * 25e6


def _slow_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    out = torch.empty_like(x)
    n, c, h, w = x.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                v = x[b, :, i, j]
                centred = v - sum(v.tolist()) / c
                length = max(math.sqrt(sum(e * e for e in centred.tolist())), eps)
                out[b, :, i, j] = centred / length * weight
    return out


def test_centred_l2_norm_against_a_per_pixel_loop_and_layer_norm():
    torch.manual_seed(0)
    norm = CentredL2Norm(6).double()
    with torch.no_grad():
        norm.weight.copy_(torch.randn(6))
    x = torch.randn(2, 6, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(norm(x), _slow_norm(x, norm.weight.detach(), 1e-6))
    # the same as LayerNorm (no eps) divided by √C
    expected = F.layer_norm(x.movedim(1, -1), (6,), eps=0.0).movedim(-1, 1) / math.sqrt(6) * norm.weight.view(-1, 1, 1)
    torch.testing.assert_close(norm(x), expected)
    with pytest.raises(ValueError, match=r"expected \(N, 6, \*S\), got shape \(2, 5, 3, 4\)"):
        norm(torch.randn(2, 5, 3, 4))


def test_block_against_its_formula_with_plain_convs():
    torch.manual_seed(0)
    cfg = ParCNetV2Config()
    block = _block(cfg, 8, 11, res_scale=True, drop_path=0.0, position="b", op=None).double()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))  # off the initial values (res-scales 1, norm scales 1)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    mixer, mlp = block.token_mixer, block.mlp
    # token mixer: PW₁ → split → GELU → (K×1 then 1×K) + DW 7×7 → gate → PW₂
    gate, value = F.conv2d(_slow_norm(x, block.norm1.weight, 1e-6), mixer.pw1_weight, mixer.pw1_bias).chunk(2, 1)
    value = F.gelu(value)
    rows = mixer.axis_weights[0].unsqueeze(-1)  # (M, 1, K, 1)
    cols = mixer.axis_weights[1].unsqueeze(-2)  # (M, 1, 1, K)
    m = value.shape[1]
    global_mix = F.conv2d(F.conv2d(value, rows, padding=(5, 0), groups=m), cols, padding=(0, 5), groups=m)
    local_mix = F.conv2d(value, mixer.local_weight, padding=3, groups=m)
    y = F.conv2d(gate * (global_mix + local_mix), mixer.pw2_weight)
    x1 = x * block.res_scale1.scale.view(-1, 1, 1) + y
    # BGU: FC₁ → split (a, b) → a · GELU(b) → FC₂
    a, b = F.conv2d(_slow_norm(x1, block.norm2.weight, 1e-6), mlp.fc1_weight, mlp.fc1_bias).chunk(2, 1)
    expected = x1 * block.res_scale2.scale.view(-1, 1, 1) + F.conv2d(a * F.gelu(b), mlp.fc2_weight)
    torch.testing.assert_close(block(x), expected)


def test_stage_layout_and_feature_shapes():
    model = create_model("parcnetv2_tiny", depths=(1, 1, 2, 1))
    mixers = [m for m in model.modules() if isinstance(m, Oversized)]
    assert [m.kernel_size for m in mixers] == [(111, 111), (55, 55), (27, 27), (27, 27), (13, 13)]
    assert all(m.local_kernel_size == 7 and m.hidden == m.in_channels and m.pw2_bias is None for m in mixers)
    for stage, res_scale in zip(model.stages, (False, False, True, True), strict=True):
        block = stage.blocks[0]
        assert hasattr(block.res_scale1, "scale") == res_scale
        c = block.mlp.fc1_weight.shape[1]
        assert block.mlp.fc1_weight.shape[0] == 5 * c and block.mlp.fc2_bias is None
    assert model.stem.conv.kernel_size == (7, 7) and model.stem.conv.stride == (4, 4)
    assert isinstance(model.stem.post_norm, CentredL2Norm)
    assert isinstance(model.stages[1].downsample.pre_norm, CentredL2Norm)
    features = create_model("parcnetv2_tiny", depths=(1, 1, 1, 1), features_only=True)(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [(64, 16, 16), (128, 8, 8), (320, 4, 4), (512, 2, 2)]


def test_initialisation_follows_the_official_truncated_normal():
    torch.manual_seed(0)
    model = create_model("parcnetv2_tiny", depths=(1, 1, 1, 1))
    mixer = model.stages[2].blocks[0].token_mixer
    for weight in (mixer.axis_weights[0], mixer.local_weight, mixer.pw1_weight, model.stem.conv.weight):
        assert abs(weight.std().item() - 0.02) < 0.004
    assert torch.count_nonzero(mixer.pw1_bias) == 0 and torch.count_nonzero(model.stages[0].blocks[0].mlp.fc1_bias) == 0


def test_op_replaces_the_token_mixer():
    model = create_model("parcnetv2_tiny", depths=(1, 1, 1, 1), op="conv", num_classes=5)
    mixers = [b.token_mixer for s in model.stages for b in s.blocks]
    assert all(type(m).registry_name == "conv" and m.kernel_size == (7, 7) for m in mixers)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_bad_configs():
    with pytest.raises(ValueError, match=r"parcnetv2_tiny: parcnetv2: kernel_sizes must be positive odd ints"):
        create_model("parcnetv2_tiny", kernel_sizes=(111, 54, 27, 13))
    with pytest.raises(ValueError, match=r"dims \(64, 128\) must have one entry per stage \(4\)"):
        create_model("parcnetv2_tiny", dims=(64, 128))
