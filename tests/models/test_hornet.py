"""HorNet (S96): the official HorNet-T 7×7 parameter count derived by hand, per-stage orders, op= replacement."""

from __future__ import annotations

import torch

from convzoo.models import create_model
from convzoo.models.counting import meta_param_count
from convzoo.ops.gnconv import GnConv


def _gnconv_params(c: int, order: int, k: int = 7) -> int:
    widths = [c // 2**i for i in range(order)][::-1]
    gated = sum(widths)
    pointwise = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return (2 * c * c + 2 * c) + (gated * k * k + gated) + pointwise + (c * c + c)


def _block_params(c: int, order: int) -> int:
    # LN, gⁿConv, LN, MLP 4×, two layer-scale vectors
    return 2 * c + _gnconv_params(c, order) + 2 * c + (4 * c * c + 4 * c) + (4 * c * c + c) + 2 * c


def test_hornet_tiny_7x7_count_by_hand():
    """Official hornet_tiny_7x7: depths 2-3-18-2, base 64, orders 2/3/4/5; S96 Table 1 says 22M."""
    depths, dims, orders = (2, 3, 18, 2), (64, 128, 256, 512), (2, 3, 4, 5)
    total = 3 * 64 * 16 + 64 + 2 * 64  # stem conv 4×4 + LN
    for i in range(4):
        if i:
            total += 2 * dims[i - 1] + dims[i - 1] * dims[i] * 4 + dims[i]  # LN + 2×2 conv
        total += depths[i] * _block_params(dims[i], orders[i])
    total += 2 * 512 + 512 * 1000 + 1000  # head LN + linear
    assert meta_param_count("hornet_tiny_7x7") == total
    assert 21.5e6 < total < 22.5e6


def test_stage_orders_and_scale_follow_the_official_config():
    model = create_model("hornet_tiny_7x7", depths=(1, 1, 1, 1))
    gnconvs = [m for m in model.modules() if isinstance(m, GnConv)]
    assert [g.order for g in gnconvs] == [2, 3, 4, 5]
    assert all(abs(g.scale - 1 / 3) < 1e-12 for g in gnconvs)
    assert [g.dims for g in gnconvs][1] == [32, 64, 128]
    assert all(g.dwconv.kernel_size == (7, 7) for g in gnconvs)


def test_op_replaces_the_depthwise_conv_inside_gnconv():
    model = create_model("hornet_tiny_7x7", depths=(1, 1, 1, 1), op="dilated_reparam", num_classes=5)
    gnconvs = [m for m in model.modules() if isinstance(m, GnConv)]
    assert all(type(g.dwconv).registry_name == "dilated_reparam" for g in gnconvs)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 5)
