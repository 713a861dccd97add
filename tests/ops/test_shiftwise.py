"""shiftwise: the official shift-add index arithmetic (a loop), the dense large kernel, the deploy form, contract."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.ops.base import create_op
from convzoo.ops.shiftwise import tile_offsets
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op, randomize_batchnorm_


def reference_shiftwise(op, x):
    """2-d, eval mode, following the official CUDA kernel's indexing: piece pc of a (k − 1)-padded small conv adds
    ``piece[h + e, w − pad_h]`` to the horizontal path and ``piece[h − pad_v, w + e]`` to the vertical one, with
    ``pad = K//2 − i·k − (k − 1)`` for tile i; the centre path adds ``piece[h + e, w + e]``."""
    big, small = op.kernel_size[0], op.small_kernel_size
    pieces_per_channel = math.ceil(big / small)
    pads = [big // 2 - i * small - (small - 1) for i in range(pieces_per_channel)]
    extra = (small - 1) - small // 2
    weight = sum(w.detach() for w in op.path_weights)  # (R·nk, 1, k, k)
    rep_x = x[:, op.rep_index]
    pieces = F.conv2d(rep_x, weight, padding=small - 1, groups=op.rep_channels)
    n, _, height, width = x.shape
    paths = torch.zeros(3, n, op.rep_channels, height, width, dtype=x.dtype)
    for c in range(op.rep_channels):
        for j in range(pieces_per_channel):
            piece = pieces[:, c * pieces_per_channel + j]
            for group in range(op.n_rep):
                tile_h = (op.piece_at[1, group, :, c] == j).nonzero().item()  # axis 1 (W): horizontal strip
                tile_v = (op.piece_at[0, group, :, c] == j).nonzero().item()  # axis 0 (H): vertical strip
                for h in range(height):
                    for w in range(width):
                        if 0 <= w - pads[tile_h] < piece.shape[-1]:
                            paths[0, :, c, h, w] += piece[:, h + extra, w - pads[tile_h]]
                        if 0 <= h - pads[tile_v] < piece.shape[-2]:
                            paths[1, :, c, h, w] += piece[:, h - pads[tile_v], w + extra]
                        if op.centre_piece[group, c] == j:
                            paths[2, :, c, h, w] += piece[:, h + extra, w + extra]
    out = rep_x.clone()
    for path, bn in zip(paths, (op.bns[1], op.bns[0], op.bns[2]), strict=True):
        out = out + bn(path)
    result = x.clone()
    result[:, op.rep_index] = out
    return result


@pytest.mark.parametrize(("big", "small"), [(7, 3), (9, 3), (5, 5)])
def test_equals_the_official_shift_add_indexing(big, small):
    torch.manual_seed(0)
    op = randomize_batchnorm_(create_op("shiftwise", 6, 6, big, small_kernel_size=small, n_rep=2)).double().eval()
    x = torch.randn(2, 6, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(op(x), reference_shiftwise(op, x), rtol=1e-10, atol=1e-10)


def test_tile_offsets_cover_the_big_kernel_from_its_left_edge():
    assert tile_offsets(51, 3) == list(range(-24, 25, 3))  # 17 tiles exactly span 51 taps
    assert tile_offsets(13, 3) == [-5, -2, 1, 4, 7]  # 15 taps from -6: two past the big kernel on the right
    assert tile_offsets(3, 3) == [0]


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("big", [3, 7])
def test_contract_and_dense_kernel(dim, stride, big):
    op = randomize_batchnorm_(make_contract_op("shiftwise", dim=dim, stride=stride, kernel_size=big))
    fresh = make_contract_op("shiftwise", dim=dim, stride=stride, kernel_size=big, seed=1)
    for side in (7, 8, 1):
        check_op_contract(op, (side,) * dim, fresh=fresh)
        check_dense_kernel(op.double().eval(), (side,) * dim)
        op.float()


def test_dense_kernel_size_and_ghost_channels():
    op = create_op("shiftwise", 16, 16, 13, use_bn=False, bias=False)
    spec = op.dense_kernel()
    assert spec.weight.shape == (16, 1, 17, 17)  # 5 tiles of 3 from -6 reach +8: a symmetric 17×17 box
    assert op.rep_channels == int(16 * 0.77) // 2 * 2 == 12
    ghost = sorted(set(range(16)) - set(op.rep_index.tolist()))
    identity = torch.zeros(17, 17)
    identity[8, 8] = 1
    for c in ghost:
        assert torch.equal(spec.weight[c, 0], identity)


def test_merge_runs_the_large_kernel_path():
    op = randomize_batchnorm_(create_op("shiftwise", 8, 8, 31)).eval()
    x = torch.randn(1, 8, 20, 20)
    deploy = op.merge()
    assert deploy.weight.shape[-1] == 35  # 11 tiles of 3 from -15 reach +17
    torch.testing.assert_close(deploy(x), op(x), rtol=1e-4, atol=1e-4)


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"shiftwise: small_kernel_size must be an odd int in \[1, kernel_size=5\], got 7"
    ):
        create_op("shiftwise", 8, 8, 5, small_kernel_size=7)
    with pytest.raises(ValueError, match="shiftwise: in_channels=2 with ghost_ratio=0.23 leaves 0 shift-wise channels"):
        create_op("shiftwise", 2, 2, 5)
    with pytest.raises(ValueError, match=r"shiftwise: ghost_ratio must be a number in \[0, 1\), got 1.5"):
        create_op("shiftwise", 8, 8, 5, ghost_ratio=1.5)
    with pytest.raises(ValueError, match="shiftwise: n_rep must be a positive int, got 0"):
        create_op("shiftwise", 8, 8, 5, n_rep=0)
