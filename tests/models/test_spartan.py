"""SpaRTAN (S32): the official SpaRTAN-T count derived by hand, the wave rotation against complex arithmetic, both
mixers against slow references, per-stage groups and shapes, op= and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.counting import meta_param_count
from convzoo.models.spartan import SpatialMixer, WaveChannelMixer, rotate_channel_pairs

# official SpaRTAN-T (henry-pay/SpaRTAN src/config/model/spartan.yaml)
DEPTHS, DIMS, RATIOS = (3, 3, 12, 2), (32, 64, 128, 256), (4, 4, 2, 2)


def _se(c: int, hidden: int) -> int:
    return 2 * c * hidden + hidden + c


def _block_params(c: int, r: int, late: bool) -> int:
    m, e = c // 2, c * r
    per_group = 1 if late else m  # spatial 3×3 convs: depthwise late, full early
    smixer = (c * m + m) + m + 3 * (m * per_group * 9) + 2 * (2 * m) + 2 * _se(m, m // 4) + (c * c + c)
    conv_in = r if late else 1  # channel mixer 3×3: C groups late (r inputs each), depthwise early
    cmixer = 2 * (c * e + e) + e + (e * conv_in * 9 + 2 * e) + _se(e, c // 4) + (e * c + c)
    return 2 * (2 * c) + 2 * c + smixer + cmixer  # two GroupNorms, two layer scales


def test_spartan_t_count_by_hand():
    """S32 (abstract): SpaRTAN-T has 3.8M parameters."""
    total = (3 * 16 * 9 + 2 * 16) + (16 * 32 * 9 + 2 * 32)  # stem: two bias-free conv 3×3 + BN
    for i in range(4):
        if i:
            total += DIMS[i - 1] * DIMS[i] * 4 + 2 * DIMS[i]  # conv 2×2 + BN
        total += DEPTHS[i] * _block_params(DIMS[i], RATIOS[i], late=i >= 2)
    total += 256 * 1000 + 1000
    assert meta_param_count("spartan_t") == total
    assert round(total / 1e6, 1) == 3.8


def test_rotate_channel_pairs_is_complex_multiplication():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 5, dtype=torch.float64)
    wave = torch.randn(3, 2, dtype=torch.float64)
    as_complex = torch.view_as_complex(x.permute(0, 2, 3, 1).reshape(2, 3, 5, 3, 2).contiguous())  # (N, H, W, 3)
    product = torch.view_as_real(as_complex * torch.view_as_complex(wave)).reshape(2, 3, 5, 6).permute(0, 3, 1, 2)
    torch.testing.assert_close(rotate_channel_pairs(x, wave), product)


def _slow_se(x: torch.Tensor, se) -> torch.Tensor:
    z = x.mean(dim=(2, 3))
    gate = torch.sigmoid(torch.relu(z @ se.fc1_weight.T + se.fc1_bias) @ se.fc2_weight.T + se.fc2_bias)
    return x * gate[:, :, None, None]


def _bn_eval(x: torch.Tensor, bn) -> torch.Tensor:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean.view(-1, 1, 1)) * scale.view(-1, 1, 1) + bn.bias.view(-1, 1, 1)


def _perturb(module: torch.nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean))
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


def test_wave_channel_mixer_against_a_per_pixel_loop():
    torch.manual_seed(0)
    c, r = 8, 2
    mixer = WaveChannelMixer(c, r, groups=c).double().eval()
    _perturb(mixer)
    x = torch.randn(2, c, 4, 5, dtype=torch.float64)
    feat = torch.empty(2, c * r, 4, 5, dtype=torch.float64)
    theta_w, theta_b = mixer.theta.weight.detach()[:, :, 0, 0], mixer.theta.bias.detach()
    proj_w, proj_b = mixer.proj.weight.detach()[:, :, 0, 0], mixer.proj.bias.detach()
    wave = mixer.wave.detach()
    for b in range(2):
        for i in range(4):
            for j in range(5):
                v = x[b, :, i, j]
                strongest = max(range(c), key=lambda k: v[k].item())
                theta = F.gelu(theta_w @ v + theta_b)
                weight = proj_w @ v + proj_b
                mixed = weight * theta + weight[strongest] * theta[strongest]
                for k in range(c * r // 2):
                    z = complex(mixed[2 * k], mixed[2 * k + 1]) * complex(wave[k, 0], wave[k, 1])
                    feat[b, 2 * k, i, j], feat[b, 2 * k + 1, i, j] = z.real, z.imag
    conv, bn = mixer.conv[0], mixer.conv[1]
    y = F.gelu(_bn_eval(F.conv2d(feat, conv.weight, padding=1, groups=c), bn))
    expected = F.conv2d(_slow_se(y, mixer.attn), mixer.proj_out.weight, mixer.proj_out.bias)
    torch.testing.assert_close(mixer(x), expected)


@pytest.mark.parametrize("groups", [1, 4])
def test_spatial_mixer_against_its_formula(groups):
    torch.manual_seed(0)
    mixer = SpatialMixer(8, groups).double().eval()
    _perturb(mixer)
    x = torch.randn(2, 8, 7, 6, dtype=torch.float64)
    z = F.conv2d(x, mixer.proj_in.weight, mixer.proj_in.bias)
    z = z + mixer.gamma.view(-1, 1, 1) * (z - z.mean(dim=(2, 3), keepdim=True))
    h_conv, h_bn = mixer.h_conv[0], mixer.h_conv[1]
    h = _slow_se(F.gelu(_bn_eval(F.conv2d(z, h_conv.weight, padding=1, groups=groups), h_bn)), mixer.h_attn)
    l_first, (l_second, l_bn, _) = mixer.l_conv[0], mixer.l_conv[1]
    low = F.conv2d(z, l_first.weight, padding=2, dilation=2, groups=groups)
    low = F.conv2d(low, l_second.weight, padding=2, dilation=2, groups=groups)
    low = _slow_se(F.gelu(_bn_eval(low, l_bn)), mixer.l_attn)
    expected = F.conv2d(torch.cat([h, low], 1), mixer.proj_out.weight, mixer.proj_out.bias)
    torch.testing.assert_close(mixer(x), expected)


def test_groups_per_stage_and_feature_shapes():
    model = create_model("spartan_t", depths=(1, 1, 1, 1))
    for i, stage in enumerate(model.stages):
        block, c = stage.blocks[0], DIMS[i]
        late = i >= 2
        spatial = [block.smixer.h_conv[0], block.smixer.l_conv[0], block.smixer.l_conv[1][0]]
        assert [conv.groups for conv in spatial] == [c // 2 if late else 1] * 3
        assert [conv.dilation for conv in spatial] == [(1, 1), (2, 2), (2, 2)]
        assert block.cmixer.conv[0].groups == (c if late else c * RATIOS[i])
        assert block.cmixer.attn.hidden_channels == c // 4 and block.smixer.h_attn.hidden_channels == c // 8
    features = create_model("spartan_t", depths=(1, 1, 1, 1), features_only=True)(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [(32, 16, 16), (64, 8, 8), (128, 4, 4), (256, 2, 2)]


def test_op_conv_is_the_same_network():
    torch.manual_seed(0)
    default = create_model("spartan_t", depths=(1, 1, 1, 1)).eval()
    swapped = create_model("spartan_t", depths=(1, 1, 1, 1), op="conv").eval()
    kinds = {type(m).__name__ for m in swapped.modules()}
    assert "Conv" in kinds
    missing, unexpected = swapped.load_state_dict(default.state_dict())
    assert not missing and not unexpected
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(swapped(x), default(x))


def test_bad_configs():
    with pytest.raises(ValueError, match=r"spartan_t: spartan: dims must be positive multiples of 8, got \(32, 60"):
        create_model("spartan_t", dims=(32, 60, 128, 256))
    with pytest.raises(ValueError, match=r"expand_ratios must be ints ≥ 2, got \(4, 1, 2, 2\)"):
        create_model("spartan_t", expand_ratios=(4, 1, 2, 2))
    with pytest.raises(ValueError, match=r"cannot replace the conv at stages.0.blocks.0.smixer.h_conv.0"):
        create_model("spartan_t", op="dilated_reparam")
