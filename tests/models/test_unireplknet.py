"""UniRepLKNet (S12, S15): kernel-size tables, the block's pieces, and the deploy form and its published counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.layers.squeeze_excite import SqueezeExcite
from convzoo.models import create_model
from convzoo.models.counting import count_params
from convzoo.models.unireplknet import DEPLOY_PARAMS, _GlobalResponseNorm
from convzoo.ops.base import Op
from convzoo.ops.dilated_reparam import DilatedReparam

SMALL = {"depths": (1, 1, 2, 1), "kernel_sizes": ((3,), (13,), (13, 3), (13,))}
# S12 / official README, #params of UniRepLKNet-A/F/P/N/T (the reparameterized models), as printed
PAPER = {"a": "4.4", "f": "6.2", "p": "10.7", "n": "18.3", "t": "31"}


def _meta(name, **cfg):
    with torch.device("meta"):
        return create_model(name, **cfg)


def _kinds(model):
    def kind(block):
        if isinstance(block.dwconv, DilatedReparam):
            return block.dwconv.kernel_size[0]
        return block.dwconv.kernel_size[0] if isinstance(block.dwconv, nn.Conv2d) else None

    return [[kind(b) for b in stage.blocks] for stage in model.stages]


def test_kernel_sizes_follow_the_official_tables():
    # official default kernel sizes: A/F/P (2,2,6,2) and N (2,2,8,2): 3×3 in stage 1, 13 elsewhere;
    # T (3,3,18,3): stage 3 alternates 13, 3
    assert _kinds(_meta("unireplknet_a")) == [[3, 3], [13, 13], [13] * 6, [13, 13]]
    assert _kinds(_meta("unireplknet_n")) == [[3, 3], [13, 13], [13] * 8, [13, 13]]
    assert _kinds(_meta("unireplknet_t")) == [[3] * 3, [13] * 3, [13, 3] * 9, [13] * 3]
    block = _meta("unireplknet_t").stages[2].blocks[1]
    assert block.dwconv.groups == 80 * 4 and block.dwconv.bias is None  # depthwise 3×3, BN after it
    large = _meta("unireplknet_a").stages[1].blocks[0].dwconv
    assert large.branches == ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5))  # the paper's K = 13 setting


def test_block_pieces():
    block = _meta("unireplknet_p").stages[2].blocks[0]
    assert isinstance(block.norm, nn.BatchNorm2d) and isinstance(block.ffn_norm, nn.BatchNorm2d)
    assert isinstance(block.se, SqueezeExcite) and block.se.hidden_channels == 256 // 4
    assert (block.pwconv1.in_features, block.pwconv1.out_features) == (256, 1024)
    assert block.pwconv2.bias is None and block.layer_scale.scale.shape == (256,)
    model = create_model("unireplknet_a", **SMALL)
    assert torch.all(model.stages[0].blocks[0].layer_scale.scale == 1e-6)
    stem = model.stem
    assert [(m.in_channels, m.out_channels, m.stride) for m in stem if isinstance(m, nn.Conv2d)] == [
        (3, 20, (2, 2)),
        (20, 40, (2, 2)),
    ]


def test_grn_matches_its_formula():
    grn = _GlobalResponseNorm(2)
    with torch.no_grad():
        grn.gamma.copy_(torch.tensor([1.0, 2.0]))
        grn.beta.copy_(torch.tensor([0.5, -0.5]))
    x = torch.tensor([[[[3.0, 0.0], [4.0, 1.0]]]])  # (N=1, H=1, W=2, C=2): channel norms 5 and 1, mean 3
    g = torch.tensor([5.0, 1.0]) / (3.0 + 1e-6)
    expected = x * (1 + torch.tensor([1.0, 2.0]) * g) + torch.tensor([0.5, -0.5])
    torch.testing.assert_close(grn(x), expected)


def _randomize_(model):
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
        elif isinstance(m, _GlobalResponseNorm):
            m.gamma.data.normal_(0, 0.5)
            m.beta.data.normal_(0, 0.5)
    for stage in model.stages:
        for block in stage.blocks:
            block.layer_scale.scale.data.uniform_(0.5, 1.5)  # make every residual branch count
    return model


def test_reparameterize_is_exact_in_eval_mode():
    torch.manual_seed(0)
    model = _randomize_(create_model("unireplknet_t", **SMALL)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        model.reparameterize()
        after = model(x)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert not [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, DilatedReparam))]
    assert all(isinstance(b.layer_scale, nn.Identity) and b.grn.beta is None for s in model.stages for b in s.blocks)


@pytest.mark.parametrize("size", sorted(PAPER))
def test_deploy_form_has_the_published_count(size):
    name = f"unireplknet_{size}"
    model = _meta(name).eval()
    model.reparameterize()
    counted = count_params(model)
    assert counted == DEPLOY_PARAMS[name]  # the official model after reparameterize_unireplknet()
    decimals = len(PAPER[size].split(".")[1]) if "." in PAPER[size] else 0
    assert f"{counted / 1e6:.{decimals}f}" == PAPER[size]


def test_op_replaces_only_the_large_kernel_mixers():
    model = create_model("unireplknet_a", op="shift", **SMALL)
    blocks = [b for s in model.stages for b in s.blocks]
    assert isinstance(blocks[0].dwconv, nn.Conv2d)  # the 3×3 depthwise block keeps its conv
    assert all(isinstance(b.dwconv, Op) and type(b.dwconv).registry_name == "shift" for b in blocks[1:-2])
    assert isinstance(blocks[-2].dwconv, nn.Conv2d) and blocks[-2].dwconv.kernel_size == (3, 3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)
    model.eval().reparameterize()  # a mixer without a merge keeps its BN
    assert isinstance(blocks[1].norm, nn.BatchNorm2d)


def test_unknown_depths_need_kernel_sizes():
    with pytest.raises(
        ValueError, match=r"unireplknet_a: unireplknet: no default kernel sizes for depths \(1, 1, 1, 1\)"
    ):
        create_model("unireplknet_a", depths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="must match depths"):
        create_model("unireplknet_a", depths=(1, 1, 1, 1), kernel_sizes=((3,), (13,), (13,), (13, 13)))
