"""FlexNet (S27) and CCNN (S117): hand-derived parameter counts, one class for 1-D/2-D/3-D data, op= replacement."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.counting import meta_param_count
from convzoo.ops.continuous import FlexConv


def _magnet(d: int, h: int, layers: int, outputs: int) -> int:
    # layers + 1 Gabor filters (μ, γ, linear d → h with bias), `layers` hidden h → h linears, output h → outputs
    return (layers + 1) * (h * d + h * d + h * d + h) + layers * (h * h + h) + (h * outputs + outputs)


def _flexconv(d, c_in, c_out, h, separable):
    if separable:  # depthwise kernel net + σ per dim + depthwise bias + 1×1 mixer with bias
        return _magnet(d, h, 3, c_in) + d + c_in + c_in * c_out + c_out
    return _magnet(d, h, 3, c_in * c_out) + d + c_out


def _bn(c):
    return 2 * c


def test_flexnet_7_count_by_hand():
    """Official CIFAR-10 FlexNet-7: hidden 24, factors (1.0 × 2, 1.5 × 3, 2.0 × 2); S27 Table 3: 0.67M."""
    widths = [24, 24, 36, 36, 36, 48, 48]
    total = _flexconv(2, 3, 24, 32, False) + _bn(24)
    c_in = 24
    for c in widths:
        total += _flexconv(2, c_in, c, 32, False) + _flexconv(2, c, c, 32, False) + 2 * _bn(c)
        total += 0 if c_in == c else c_in * c + c  # 1×1 shortcut
        c_in = c
    total += 48 * 10 + 10
    assert meta_param_count("flexnet_7") == total
    assert abs(total - 670_000) < 5_000


@pytest.mark.parametrize(("blocks", "hidden", "kernel_hidden", "rounded"), [(4, 140, 32, 200e3), (6, 380, 64, 2e6)])
def test_ccnn_count_by_hand(blocks, hidden, kernel_hidden, rounded):
    total = _flexconv(2, 3, hidden, kernel_hidden, True) + _bn(hidden)  # stem
    block = _bn(hidden) + _flexconv(2, hidden, hidden, kernel_hidden, True) + hidden * hidden + hidden
    total += blocks * block + _bn(hidden) + hidden * 10 + 10  # blocks, final BN, classifier
    assert meta_param_count(f"ccnn_{blocks}_{hidden}") == total
    assert abs(total - rounded) < 0.01 * rounded


@pytest.mark.parametrize(("dim", "size"), [(1, (40,)), (2, (12, 12)), (3, (6, 6, 6))])
def test_one_ccnn_class_runs_on_1d_2d_3d_without_downsampling(dim, size):
    torch.manual_seed(0)
    model = create_model("ccnn_4_140", dim=dim, blocks=1, hidden=16, kernel_size=9, num_classes=4)
    assert model(torch.randn(2, 3, *size)).shape == (2, 4)
    features = create_model("ccnn_4_140", dim=dim, blocks=1, hidden=16, kernel_size=9, features_only=True)
    assert features(torch.randn(2, 3, *size))[-1].shape == (2, 16, *size)


def test_convs_are_flexconvs_and_op_replaces_the_block_convs():
    model = create_model("flexnet_7", width_factors=((1.0, 1), (1.5, 1)), kernel_size=9)
    convs = [m for m in model.modules() if isinstance(m, FlexConv)]
    assert len(convs) == 1 + 2 * 2 and all(m.kernel_size == (9, 9) for m in convs)
    replaced = create_model("ccnn_4_140", blocks=2, hidden=16, kernel_size=9, op="ckconv")
    kinds = [type(m).registry_name for m in replaced.modules() if hasattr(type(m), "registry_name")]
    assert kinds.count("ckconv") == 2 and kinds.count("flexconv") == 1  # the stem keeps its FlexConv
    assert replaced.eval()(torch.randn(1, 3, 10, 10)).shape == (1, 10)
