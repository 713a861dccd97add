"""GLMix (S88): soft clustering and dispatching against loops, their round trip, the block, counts and op=."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.glmix import GLMixBlock, GLNetConfig, soft_cluster, soft_dispatch
from convzoo.ops.base import Op


def test_cluster_and_dispatch_equal_per_slot_and_per_pixel_loops():
    torch.manual_seed(0)
    x, init = torch.randn(2, 10, 6, dtype=torch.float64), torch.randn(2, 3, 6, dtype=torch.float64)
    slots, logits = soft_cluster(x, init, 2.5)
    out = soft_dispatch(logits, slots)
    for n in range(2):
        cos = torch.tensor(
            [
                [2.5 * (init[n, s] @ x[n, p]) / (init[n, s].norm() * x[n, p].norm()) for p in range(10)]
                for s in range(3)
            ],
            dtype=torch.float64,
        )
        torch.testing.assert_close(logits[n], cos)
        for s in range(3):  # each slot: the softmax-over-pixels weighted mean of the pixels
            w = torch.exp(cos[s]) / torch.exp(cos[s]).sum()
            torch.testing.assert_close(slots[n, s], sum(w[p] * x[n, p] for p in range(10)))
        for p in range(10):  # each pixel: the softmax-over-slots mix of the slots
            w = torch.exp(cos[:, p]) / torch.exp(cos[:, p]).sum()
            torch.testing.assert_close(out[n, p], sum(w[s] * slots[n, s] for s in range(3)))


def test_dispatch_after_cluster_returns_clustered_pixels():
    """Pixels drawn from S orthogonal directions, slots started on them, a sharp scale: the round trip is the
    identity (each pixel is gathered into its own slot and handed back)."""
    torch.manual_seed(0)
    centers = torch.eye(4, dtype=torch.float64)[:3] * torch.tensor([[2.0], [0.5], [3.0]], dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 30))
    labels[:, :3] = torch.arange(3)  # every cluster present
    x = centers[labels]  # (2, 30, 4)
    slots, logits = soft_cluster(x, centers.expand(2, -1, -1), 200.0)
    torch.testing.assert_close(slots, centers.expand(2, -1, -1))
    torch.testing.assert_close(soft_dispatch(logits, slots), x)
    # constant pixels: any slots, any scale
    flat = torch.randn(1, 1, 4, dtype=torch.float64).expand(1, 9, 4)
    slots, logits = soft_cluster(flat, torch.randn(1, 5, 4, dtype=torch.float64), 0.7)
    torch.testing.assert_close(soft_dispatch(logits, slots), flat)


def test_glmix_block_is_dispatched_slot_attention_plus_the_grid_branch():
    torch.manual_seed(0)
    cfg = GLNetConfig(num_slots=4, head_dim=4, cpe_kernel=0)
    block = GLMixBlock(cfg, 8, 0.0, "block", None).double().eval()
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    init = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(2).transpose(1, 2)  # 2×2 pool → 4 slots
    y = block.norm1(x)
    pixels = y.flatten(2).transpose(1, 2)
    slots, logits = soft_cluster(pixels, init, block.slot_attn.dim**-0.5)
    mixed = soft_dispatch(logits, block.slot_attn(slots)).transpose(1, 2).reshape(2, 8, 6, 6)
    h = x + mixed + block.feature_conv(y)
    torch.testing.assert_close(block(x), h + block.mlp(block.norm2(h)))


def test_official_layout_and_op():
    with torch.device("meta"):
        model = create_model("glnet_4g")
    kinds = [[type(b).__name__ for b in s.blocks] for s in model.stages]
    assert kinds[2][:4] == ["GLMixBlock", "_MapAttentionBlock"] * 2 and set(kinds[3]) == {"_MapAttentionBlock"}
    assert model.stages[0].blocks[0].slot_attn.num_heads == 2  # 64 / head_dim 32
    small = create_model("glnet_stl", depths=(1, 1, 1, 1), num_slots=4, op="conv", num_classes=3)
    assert sum(isinstance(m, Op) for m in small.modules()) == 3  # the grid convs of stages 1–3
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_errors():
    with pytest.raises(ValueError, match=r"num_slots must be a square .*, got 10"):
        create_model("glnet_4g", num_slots=10)
    with pytest.raises(ValueError, match=r"glmix: mixers entry must be one of .*, got 'swin'"):
        create_model("glnet_4g", mixers=("swin",) * 4)
