"""CrossViT (S100): the cross-attention fusion against its equations written out, the two branches' token grids,
and timm's port (peer: same outputs in float64 after mapping the weights)."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.models import create_model
from convzoo.models.crossvit import CrossAttentionFusion


def _ln(x, norm):
    return F.layer_norm(x, x.shape[-1:], norm.weight, norm.bias, norm.eps)


def _mlp_proj(x, seq):  # LN → GELU → Linear
    return F.gelu(_ln(x, seq[0])) @ seq[2].weight.T + seq[2].bias


def test_fusion_equals_equations_6_to_8():
    torch.manual_seed(0)
    fusion = CrossAttentionFusion(dim_a=6, dim_b=8, heads_b=2, drop_path=0.0).double().eval()
    for p in fusion.parameters():
        nn.init.normal_(p, std=0.5)
    a = torch.randn(2, 1 + 5, 6, dtype=torch.float64)
    b = torch.randn(2, 1 + 4, 8, dtype=torch.float64)
    attn = fusion.attn
    wq, wk, wv = attn.qkv.weight.split(8)
    bq, bk, bv = attn.qkv.bias.split(8)
    expected = []
    for n in range(2):
        cls = _mlp_proj(a[n, :1], fusion.project)  # f(x_cls), (1, 8)
        x = _ln(torch.cat([cls, b[n, 1:]]), fusion.norm)  # LN([f(cls) ‖ patches_b]), (5, 8)
        q, k, v = x[:1] @ wq.T + bq, x @ wk.T + bk, x @ wv.T + bv
        heads = []
        for h in range(2):
            s = slice(4 * h, 4 * h + 4)
            logits = torch.stack([(q[0, s] * k[j, s]).sum() / math.sqrt(4) for j in range(5)])
            w = torch.exp(logits) / torch.exp(logits).sum()  # one query: a softmax over 5 keys
            heads.append((w[:, None] * v[:, s]).sum(0))
        y = torch.cat(heads) @ attn.proj.weight.T + attn.proj.bias
        updated = cls + y  # Eq. 7: y_cls = f(x_cls) + MCA(LN([f(x_cls) ‖ x_patch]))
        expected.append(torch.cat([_mlp_proj(updated, fusion.revert), a[n, 1:]]))  # Eq. 8: [g(y_cls) ‖ x_patch]
    with torch.no_grad():
        torch.testing.assert_close(fusion(a, b), torch.stack(expected), rtol=0, atol=1e-12)


def test_branch_grids_at_240_and_the_input_size_check():
    with torch.device("meta"):
        model = create_model("crossvit_small")
        tokens = model._tokens(torch.empty(2, 3, 240, 240))
        maps = model.forward_stages(torch.empty(2, 3, 240, 240))
        features = model.forward_features(torch.empty(2, 3, 240, 240))
    assert [tuple(t.shape) for t in tokens] == [(2, 1 + 400, 192), (2, 1 + 196, 384)]  # 20² small, 14² large patches
    assert [tuple(m.shape) for m in maps] == [(2, 192, 20, 20)] * 3
    assert features.shape == (2, 192 + 384)
    with pytest.raises(ValueError, match=r"crossvit_small: expected \(N, C, 240, 240\), got \(1, 3, 224, 224\)"):
        model._tokens(torch.empty(1, 3, 224, 224, device="meta"))


def test_dagger_embedding_and_head_average():
    torch.manual_seed(0)
    model = create_model("crossvit_9_dagger", num_classes=5, img_size=120, depths=((1, 1),)).eval()
    convs = [m for m in model.patch_embed[0].modules() if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0]) for c in convs] == [(7, 4), (3, 3), (3, 1)]
    x = torch.randn(2, 3, 120, 120)
    with torch.no_grad():
        tokens = model.forward_features(x)
        small, large = tokens.split([128, 256], 1)
        expected = (model.head.fc[0](small) + model.head.fc[1](large)) / 2
        torch.testing.assert_close(model(x), expected)


def _our_name(name: str) -> str:
    """timm CrossVit state-dict key → convzoo's."""
    rules = [
        (r"^cls_token_(\d)$", r"cls_token.\1"),
        (r"^pos_embed_(\d)$", r"pos_embed.\1"),
        (r"^blocks\.(\d+)\.blocks\.(\d)\.(\d+)\.mlp\.fc1", r"stages.\1.branches.\2.\3.mlp.0"),
        (r"^blocks\.(\d+)\.blocks\.(\d)\.(\d+)\.mlp\.fc2", r"stages.\1.branches.\2.\3.mlp.2"),
        (r"^blocks\.(\d+)\.blocks\.", r"stages.\1.branches."),
        (r"^blocks\.(\d+)\.projs\.(\d)\.", r"stages.\1.fusion.\2.project."),
        (r"^blocks\.(\d+)\.revert_projs\.(\d)\.", r"stages.\1.fusion.\2.revert."),
        (r"^blocks\.(\d+)\.fusion\.(\d)\.norm1\.", r"stages.\1.fusion.\2.norm."),
        (r"^blocks\.(\d+)\.fusion\.(\d)\.attn\.", r"stages.\1.fusion.\2.attn."),
        (r"^head\.(\d)\.", r"head.fc.\1."),
    ]
    for pattern, replacement in rules:
        if re.search(pattern, name):
            return re.sub(pattern, replacement, name)
    return name


@pytest.mark.peer
@pytest.mark.parametrize(
    ("ours", "theirs"), [("crossvit_9_dagger", "crossvit_9_dagger_240"), ("crossvit_small", "crossvit_small_240")]
)
def test_equals_timm_crossvit_after_mapping_the_weights(ours, theirs):
    try:
        import timm
    except ImportError as error:
        pytest.skip(f"timm is not importable: {error}")
    torch.manual_seed(0)
    peer = timm.create_model(theirs, img_size=120).double().eval()
    model = create_model(ours, img_size=120).double().eval()
    state = {}
    for key, value in peer.state_dict().items():
        name = _our_name(key)
        match = re.fullmatch(r"(stages\.\d+\.fusion\.\d\.attn)\.w([qkv])\.(weight|bias)", name)
        if match:  # timm's separate wq, wk, wv are the rows of convzoo's one qkv projection
            state.setdefault(f"{match[1]}.qkv.{match[3]}", {})[match[2]] = value
        else:
            state[name] = value
    for key, parts in list(state.items()):
        if isinstance(parts, dict):
            state[key] = torch.cat([parts["q"], parts["k"], parts["v"]])
    model.load_state_dict(state)
    x = torch.randn(2, 3, 120, 120, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), peer(x), rtol=0, atol=1e-12)
