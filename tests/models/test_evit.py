"""EViT (S71): kept-token counts follow the keep rate, fusion against a per-token reference, the token map."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.evit import EViTBlock

SMALL = {"dim": 48, "num_heads": 2}


def _token_counts(model, x):
    counts = []
    blocks = model.stages[0].blocks
    hooks = [b.mlp.register_forward_hook(lambda m, i, o: counts.append(o.shape[1])) for b in blocks]  # MLP tokens
    model.forward_features(x)
    for h in hooks:
        h.remove()
    return counts


@pytest.mark.parametrize(("keep_rate", "fuse"), [(0.7, True), (0.5, True), (0.7, False)])
def test_token_count_follows_the_keep_rate(keep_rate, fuse):
    model = create_model("evit_deit_s", keep_rate=keep_rate, fuse_token=fuse, **SMALL).eval()
    image_tokens, expected = 196, []
    for i in range(12):
        if i in (3, 6, 9):  # the paper's 4th, 7th and 10th layers
            image_tokens = math.ceil(keep_rate * image_tokens) + (1 if fuse else 0)
        expected.append(1 + image_tokens)
    with torch.no_grad():
        assert _token_counts(model, torch.randn(1, 3, 224, 224)) == expected
    if keep_rate == 0.7 and fuse:
        assert expected[3::3] == [1 + 138 + 1, 1 + 98 + 1, 1 + 70 + 1]


def test_reorganisation_keeps_top_attentive_tokens_and_fuses_the_rest():
    torch.manual_seed(0)
    block = EViTBlock(8, 2, keep_rate=0.5, fuse_token=True).double().eval()
    x = torch.randn(2, 1 + 6, 8, dtype=torch.float64)
    got, kept, dropped, _ = block.forward_reorganize(x)
    # reference: attention written out head by head
    h = F.layer_norm(x, (8,), block.norm1.weight, block.norm1.bias, 1e-6)
    q, k, v = (h @ w.T + b for w, b in zip(block.attn.qkv.weight.split(8), block.attn.qkv.bias.split(8), strict=True))
    heads, cls_attn = [], torch.zeros(2, 6, dtype=torch.float64)
    for i in range(2):
        s = slice(4 * i, 4 * i + 4)
        a = torch.softmax(q[..., s] @ k[..., s].transpose(1, 2) / 2.0, dim=-1)
        heads.append(a @ v[..., s])
        cls_attn += a[:, 0, 1:] / 2
    x1 = x + block.attn.proj(torch.cat(heads, -1))
    for n in range(2):
        ranked = sorted(range(6), key=lambda j: -cls_attn[n, j].item())
        assert kept[n].tolist() == ranked[:3] and sorted(dropped[n].tolist()) == sorted(ranked[3:])
        fused = sum(cls_attn[n, j] * x1[n, 1 + j] for j in ranked[3:])
        tokens = torch.stack([x1[n, 0]] + [x1[n, 1 + j] for j in ranked[:3]] + [fused])
        mlp_in = F.layer_norm(tokens, (8,), block.norm2.weight, block.norm2.bias, 1e-6)
        torch.testing.assert_close(got[n], tokens + block.mlp(mlp_in))


def test_token_map_places_each_patch_token_at_its_grid_position():
    torch.manual_seed(0)
    plain = create_model("evit_deit_s", keep_rate=1.0, img_size=64, depth=2, drop_loc=(0,), **SMALL).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = plain.stages[0].forward_tokens(plain.stem(x))[0]
        grid = plain.forward_stages(x)[0]
    torch.testing.assert_close(grid.flatten(2).transpose(1, 2), tokens[:, 1:])
    model = create_model("evit_deit_s", img_size=64, depth=2, drop_loc=(0,), keep_rate=0.5, **SMALL).eval()
    with torch.no_grad():
        tokens = model.stages[0].forward_tokens(model.stem(x))[0]
        grid = model.forward_stages(x)[0].flatten(2).transpose(1, 2)  # (N, 16, C)
    assert tokens.shape[1] == 1 + 8 + 1
    for n in range(2):  # each kept token sits at one grid position
        for t in tokens[n, 1:9]:
            assert ((grid[n] - t).abs().amax(-1) < 1e-6).sum() == 1


def test_errors():
    with pytest.raises(ValueError, match=r"evit: keep_rate must be a number in \(0, 1\], got 1.5"):
        create_model("evit_deit_s", keep_rate=1.5, **SMALL)
    with pytest.raises(ValueError, match=r"evit_deit_s: takes no op="):
        create_model("evit_deit_s", op="conv")
