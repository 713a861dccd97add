"""tcn (S92 micro-TCN): loop reference, causality, streaming equals offline, receptive field, FiLM conditioning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.testing import check_op_contract, randomize_batchnorm_


def _tcn(cond_dim=0, **options):
    options = {"blocks": 3, "width": 4, "dilation_growth": 3, "cond_dim": cond_dim, **options}
    op = create_op("tcn", 2, 3, 3, dim=1, **options).double()
    return randomize_batchnorm_(op).eval()


def loop_block(block, x, film):
    """One TCN block by loops: causal dilated conv with zero history, eval BN (or FiLM), PReLU, grouped 1×1."""
    batch, c_in, length = x.shape
    weight = block.conv.weight  # (C_out, C_in, k)
    c_out, _, k = weight.shape
    conv = torch.zeros(batch, c_out, length, dtype=x.dtype)
    for t in range(length):
        for j in range(k):
            src = t - (k - 1 - j) * block.dilation
            if src >= 0:
                conv[:, :, t] += x[:, :, src] @ weight[:, :, j].t()
    bn = block.norm
    y = (conv - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps)
    if film is None:
        y = y * bn.weight[:, None] + bn.bias[:, None]
    else:
        gamma, beta = (film @ block.film.weight.t() + block.film.bias).chunk(2, dim=-1)
        y = y * gamma[..., None] + beta[..., None]
    alpha = block.act.weight[:, None]
    y = torch.where(y >= 0, y, alpha * y)
    # grouped 1×1 residual: output channel o reads input channel o // (C_out / groups) when grouped
    groups = block.res.groups
    res_weight = block.res.weight[:, :, 0]  # (C_out, C_in / groups)
    per_group_in, per_group_out = c_in // groups, c_out // groups
    res = torch.zeros_like(y)
    for o in range(c_out):
        g = o // per_group_out
        res[:, o] = (res_weight[o][None, :, None] * x[:, g * per_group_in : (g + 1) * per_group_in]).sum(1)
    return y + res


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_forward_equals_loop_reference(cond_dim):
    op = _tcn(cond_dim)
    x = torch.randn(2, 2, 25, dtype=torch.float64)
    cond = torch.randn(2, cond_dim, dtype=torch.float64) if cond_dim else None
    with torch.no_grad():
        film = op.cond_net(cond) if cond_dim else None
        h = x
        for block in op.blocks:
            h = loop_block(block, h, film)
        expected = torch.tanh(F.conv1d(h, op.output.weight, op.output.bias))
        torch.testing.assert_close(op(x, cond), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cond_dim", [0, 2])
def test_streaming_equals_offline(cond_dim):
    op = _tcn(cond_dim)
    x = torch.randn(2, 2, 40, dtype=torch.float64)
    cond = torch.randn(2, cond_dim, dtype=torch.float64) if cond_dim else None
    with torch.no_grad():
        offline = op(x, cond)
        state, outputs = op.init_state(2), []
        for t in range(x.shape[-1]):
            y, state = op.step(x[..., t], state, cond)
            outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs, -1), offline, rtol=1e-12, atol=1e-12)


def test_causal_and_receptive_field():
    op = _tcn(blocks=3, dilation_growth=3)  # k = 3, dilations 1, 3, 9: receptive field 1 + 2·13 = 27
    assert op.receptive_field == 27
    x = torch.randn(1, 2, 60, dtype=torch.float64)
    with torch.no_grad():
        base = op(x)
        for t in (0, 20, 59):  # perturbing t changes nothing before t, and nothing after t + 26
            moved = x.clone()
            moved[..., t] += 1.0
            diff = (op(moved) - base).abs().amax(dim=(0, 1))
            assert diff[:t].max().item() == 0 if t else True
            assert diff[t].item() > 0
            assert diff[t + 27 :].numel() == 0 or diff[t + 27 :].max().item() == 0


def test_paper_configuration_utcn_300():
    """uTCN-300 (S92): 4 blocks, kernel 13, dilation growth 10 → dilations 1, 10, 100, 1000, receptive field
    13 + 12·(10 + 100 + 1000) = 13 333 samples ≈ 302 ms at 44.1 kHz."""
    op = create_op("tcn", 1, 1, 13, dim=1, cond_dim=2)
    assert [b.dilation for b in op.blocks] == [1, 10, 100, 1000]
    assert op.receptive_field == 13_333
    assert [b.conv.out_channels for b in op.blocks] == [32] * 4
    # conditioning MLP 2 → 16 → 32 → 32 and one FiLM adaptor 32 → 2·32 per block
    linears = [m for m in op.cond_net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 16), (16, 32), (32, 32)]
    assert all(b.film.in_features == 32 and b.film.out_features == 64 for b in op.blocks)


@pytest.mark.parametrize("length", [1, 7, 8])
def test_contract(length):
    op = create_op("tcn", 8, 16, 3, dim=1)
    check_op_contract(op, (length,), fresh=create_op("tcn", 8, 16, 3, dim=1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="tcn: blocks must be an int ≥ 1, got 0"):
        create_op("tcn", 2, 2, 3, dim=1, blocks=0)
    with pytest.raises(ValueError, match="tcn: stride must be at most 1"):
        create_op("tcn", 2, 2, 3, 2, dim=1)
    op = _tcn(cond_dim=2)
    with pytest.raises(ValueError, match=r"tcn: expected cond of shape \(1, 2\), got None"):
        op(torch.randn(1, 2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="tcn: got cond but the op was built with cond_dim=0"):
        _tcn()(torch.randn(1, 2, 5, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64))
    op.train()
    with pytest.raises(ValueError, match="tcn: step\\(\\) needs eval mode"):
        op.step(torch.randn(1, 2), op.init_state(1), torch.randn(1, 2))
    op.eval()
    with pytest.raises(ValueError, match=r"tcn: step expects x_t of shape \(N, 2\), got \(1, 3\)"):
        op.step(torch.randn(1, 3), op.init_state(1), torch.randn(1, 2))
