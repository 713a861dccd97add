"""pde_block (S80): an independent eval-mode reference, and the GL(n) weight symmetry of the residual stream."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo import create_op
from convzoo.ops.pde_block import transform_pde_block
from convzoo.testing import randomize_batchnorm_


def _bn(x, bn):
    shape = (1, -1) + (1,) * (x.dim() - 2)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(
        shape
    ) + bn.bias.view(shape)


def _reference(block, x):
    """Eval-mode block in 2D from einsum 1x1s, a shifted-sum depthwise conv and the BN formula."""
    y = _bn(torch.einsum("oi,nihw->nohw", block.conv1.weight[:, :, 0, 0], x), block.bn1)
    width = y.shape[1] // 2
    p = y[:, :width] * y[:, width:]
    k = block.kernel_size[0]
    s = block.stride[0]
    padded = F.pad(p, (k // 2,) * 4)
    h_out, w_out = -(-x.shape[2] // s), -(-x.shape[3] // s)
    d = torch.zeros(x.shape[0], 2 * width, h_out, w_out, dtype=x.dtype)
    for o in range(2 * width):
        c = o // 2  # depthwise: output o reads input channel o // 2
        for i in range(k):
            for j in range(k):
                window = padded[:, c, i : i + s * (h_out - 1) + 1 : s, j : j + s * (w_out - 1) + 1 : s]
                d[:, o] += block.conv2.weight[o, 0, i, j] * window
    v = _bn(torch.einsum("oi,nihw->nohw", block.conv3.weight[:, :, 0, 0], _bn(d, block.bn2)), block.bn3)
    if isinstance(block.skip, nn.Identity):
        skip = x
    else:
        skip = _bn(torch.einsum("oi,nihw->nohw", block.skip[0].weight[:, :, 0, 0], x[:, :, ::s, ::s]), block.skip[1])
    out = skip + v
    if block.use_hardball:
        norm = out.norm(dim=1, keepdim=True)
        radius = block.out_channels**0.5
        out = torch.where(norm > radius, out * radius / norm, out)
    return out


@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(4, 4, 1), (4, 6, 2), (3, 5, 1)])
def test_pde_block_matches_reference(c_in, c_out, stride):
    block = randomize_batchnorm_(create_op("pde_block", c_in, c_out, 3, stride, expansion=2)).double().eval()
    x = torch.randn(2, c_in, 7, 6, dtype=torch.float64) * 3
    torch.testing.assert_close(block(x), _reference(block, x))


def test_pde_block_official_defaults():
    small, large = create_op("pde_block", 128, 128), create_op("pde_block", 256, 256)
    assert small.width == 4 * 128 and large.width == 2 * 256
    assert not small.use_hardball and create_op("pde_block", 8, 16).use_hardball
    assert create_op("pde_block", 8, 8, stride=2).use_hardball  # a projection skip carries the clip


def _gl(n, t, seed):
    """A one-parameter subgroup of GL(n): exp(t·A) for a fixed random generator A."""
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.matrix_exp(t * torch.randn(n, n, generator=g, dtype=torch.float64) / n**0.5)


def _so(n, t, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    return torch.linalg.matrix_exp(t * (a - a.T))


def _stack(c, c_out, seed=0):
    torch.manual_seed(seed)
    stem = nn.Conv2d(3, c, 1, bias=True)
    blocks = [create_op("pde_block", c, c, expansion=2), create_op("pde_block", c, c, expansion=2)]
    blocks.append(create_op("pde_block", c, c_out, stride=2, expansion=2))
    head = nn.Conv2d(c_out, 2, 1, bias=True)
    return [randomize_batchnorm_(m, i).double().eval() for i, m in enumerate([stem, *blocks, head])]


def _run(stack, x):
    for m in stack:
        x = m(x)
    return x


def _transformed(stack, q, q_out):
    stem, *blocks, head = stack
    new_stem = nn.Conv2d(3, q.shape[0], 1).double()
    new_head = nn.Conv2d(q_out.shape[0], 2, 1).double()
    with torch.no_grad():
        new_stem.weight.copy_((q @ stem.weight.flatten(1)).view_as(stem.weight))
        new_stem.bias.copy_(q @ stem.bias)
        new_head.weight.copy_((head.weight.flatten(1) @ torch.linalg.inv(q_out)).view_as(head.weight))
        new_head.bias.copy_(head.bias)
    moved = [transform_pde_block(b, q, q) for b in blocks[:-1]]
    moved.append(transform_pde_block(blocks[-1], q, q_out))
    return [new_stem, *moved, new_head]


@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 1.5])
def test_symmetry_leaves_the_output_unchanged(t):
    """Moving every weight along the orbit of Q(t) (GL(n) on the stream, O(n) into the clipped block)."""
    stack = _stack(6, 8)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    expected = _run(stack, x)
    got = _run(_transformed(stack, _gl(6, t, 1), _so(8, t, 2)), x)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    if t > 0:  # the transform really moved the weights
        assert not torch.allclose(
            _transformed(stack, _gl(6, t, 1), _so(8, t, 2))[1].conv1.weight, stack[1].conv1.weight
        )


def test_single_block_is_equivariant():
    block = randomize_batchnorm_(create_op("pde_block", 5, 5, expansion=2)).double().eval()
    q = _gl(5, 1.0, 3)
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    moved = transform_pde_block(block, q, q)
    torch.testing.assert_close(moved(torch.einsum("ij,njhw->nihw", q, x)), torch.einsum("ij,njhw->nihw", q, block(x)))


def test_non_symmetry_perturbation_changes_the_output():
    stack = _stack(6, 8)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    expected = _run(stack, x)
    moved = _transformed(stack, _gl(6, 0.7, 1), _so(8, 0.7, 2))
    with torch.no_grad():  # undo Q^{-1} on the second block's input only: no longer an orbit point
        moved[2].conv1.weight.copy_(stack[2].conv1.weight)
    assert (_run(moved, x) - expected).abs().max() > 1e-3
    # a non-orthogonal Q through the hardball clip is not a symmetry, and the transform refuses it
    with pytest.raises(ValueError, match=r"pde_block: the hardball clip commutes with orthogonal q_out only"):
        transform_pde_block(stack[3], _gl(6, 0.7, 1), _gl(8, 0.7, 2))


def test_transform_returns_the_folded_eval_block():
    """Batch-statistics BN does not commute with channel mixing, so the transform folds BN3 and works in eval mode."""
    block = create_op("pde_block", 4, 4, expansion=2).double()
    moved = transform_pde_block(block, _gl(4, 1.0, 0), _gl(4, 1.0, 0))
    assert isinstance(moved.bn3, nn.Identity) and not moved.training


def test_pde_block_bad_arguments():
    with pytest.raises(ValueError, match=r"pde_block: expansion must be a positive int, got 0"):
        create_op("pde_block", 4, 4, expansion=0)
    with pytest.raises(TypeError, match=r"pde_block: hardball must be True, False or None"):
        create_op("pde_block", 4, 4, hardball="yes")
    block = create_op("pde_block", 4, 4)
    with pytest.raises(ValueError, match=r"pde_block: a block with an identity skip moves along the symmetry only"):
        transform_pde_block(block, torch.eye(4), 2 * torch.eye(4))
    with pytest.raises(ValueError, match=r"pde_block: symmetry needs q_in \(4, 4\)"):
        transform_pde_block(block, torch.eye(3), torch.eye(4))
