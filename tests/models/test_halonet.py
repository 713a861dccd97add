"""HaloNet (S115): blocked halo attention equals masked full attention (a slow per-pixel reference), the H1 layout,
and timm's HaloAttn (peer: equal on the blocks whose halo lies inside the image)."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.halonet import HaloAttention


def _masked_full_attention(attn: HaloAttention, x):
    """Every output pixel attends to all H·W input pixels, those outside its block's halo window masked out."""
    n, _, h, w = x.shape
    s, b, halo, win, heads = attn.stride, attn.block, attn.halo, attn.win, attn.heads
    dq, dv = attn.dim_qk, attn.dim_v
    bq = b // s
    wq = attn.q.weight[:, :, 0, 0]
    wkv = attn.kv.weight[:, :, 0, 0].reshape(heads, dq + dv, -1)
    ho, wo = math.ceil(h / s), math.ceil(w / s)
    out = torch.zeros(n, heads * dv, ho, wo, dtype=x.dtype)
    keys = x.flatten(2)  # (N, C, H·W)
    ky = torch.arange(h).repeat_interleave(w)  # row of each key pixel
    kx = torch.arange(w).repeat(h)
    for sample in range(n):
        for oy in range(ho):
            for ox in range(wo):
                q_all = wq @ x[sample, :, s * oy, s * ox]  # (heads·d,)
                by, bx, qy, qx = oy // bq, ox // bq, oy % bq, ox % bq
                top, left = by * b - halo, bx * b - halo  # the window's first row and column (may be < 0)
                inside = (ky >= top) & (ky < top + win) & (kx >= left) & (kx < left + win)
                for head in range(heads):
                    q = q_all[head * dq : (head + 1) * dq]
                    k = wkv[head, :dq] @ keys[sample]  # (d, H·W)
                    v = wkv[head, dq:] @ keys[sample]  # (d_v, H·W)
                    rel_h = attn.rel_h[(ky - top).clamp(0, win - 1) - qy + win - 1]  # (H·W, d)
                    rel_w = attn.rel_w[(kx - left).clamp(0, win - 1) - qx + win - 1]
                    logits = q @ k / math.sqrt(dq) + rel_h @ q + rel_w @ q
                    logits = torch.where(inside, logits, torch.tensor(float("-inf"), dtype=x.dtype))
                    weights = torch.softmax(logits, 0)
                    out[sample, head * dv : (head + 1) * dv, oy, ox] = v @ weights
    return out


@pytest.mark.parametrize(
    ("stride", "size"), [(1, (7, 9)), (1, (8, 8)), (2, (9, 6))], ids=["odd-map", "whole-blocks", "stride2"]
)
def test_halo_attention_equals_masked_full_attention(stride, size):
    torch.manual_seed(0)
    attn = HaloAttention(8, stride=stride, heads=2, block_size=4, halo=1).double()
    x = torch.randn(2, 8, *size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(attn(x), _masked_full_attention(attn, x), rtol=0, atol=1e-12)


def test_halo_attention_sees_only_its_window():
    torch.manual_seed(0)
    attn = HaloAttention(8, heads=2, block_size=4, halo=1).double()
    x = torch.randn(1, 8, 12, 12, dtype=torch.float64, requires_grad=True)
    attn(x)[0, :, 0, 0].sum().backward()  # a query of block (0, 0): window rows/cols -1 .. 4
    touched = x.grad.abs().sum(1)[0] > 0
    assert touched[:5, :5].all() and not touched[5:].any() and not touched[:, 5:].any()


def test_h1_layout_and_bad_arguments():
    with torch.device("meta"):
        model = create_model("halonet_h1")
        maps = model.forward_stages(torch.empty(2, 3, 256, 256))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8)]
    assert [len(s) for s in model.stages] == [3, 3, 10, 3]
    first = model.stages[0][0].attn
    assert (first.block, first.halo, first.win, first.heads, first.dim_qk) == (8, 3, 14, 8, 8)
    with pytest.raises(ValueError, match=r"halo_attention: stride must be 1 or 2 and divide block_size 5, got 2"):
        HaloAttention(8, stride=2, block_size=5)
    with pytest.raises(ValueError, match=r"halonet_h1: halonet: depths .* must match"):
        create_model("halonet_h1", depths=(1, 1))


@pytest.mark.peer
def test_equals_timm_halo_attn_where_the_halo_is_inside_the_image():
    try:
        from timm.layers.halo_attn import HaloAttn
    except ImportError as error:
        pytest.skip(f"timm is not importable: {error}")
    torch.manual_seed(0)
    peer = HaloAttn(16, 16, num_heads=2, block_size=4, halo_size=1).double().eval()
    ours = HaloAttention(16, heads=2, block_size=4, halo=1).double()
    ours.q.weight.data.copy_(peer.q.weight)
    ours.kv.weight.data.copy_(peer.kv.weight)
    ours.rel_h.data.copy_(peer.pos_embed.height_rel)
    ours.rel_w.data.copy_(peer.pos_embed.width_rel)
    x = torch.randn(2, 16, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        # the centre block (rows and columns 4..7) has its whole 6×6 window inside the image: nothing to mask
        torch.testing.assert_close(ours(x)[..., 4:8, 4:8], peer(x)[..., 4:8, 4:8], rtol=0, atol=1e-12)
