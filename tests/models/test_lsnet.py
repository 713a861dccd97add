"""LSNet family: attention bias indexed as the official loop builds it; block layout; op= swaps the LS convs."""

from __future__ import annotations

import itertools

import torch

from convzoo.models import create_model
from convzoo.models.lsnet import Attention, LSNetConfig
from convzoo.ops.lsconv import LSConv


def test_attention_bias_index_matches_the_official_enumeration():
    resolution = 4
    points = list(itertools.product(range(resolution), range(resolution)))
    seen, official = {}, []
    for p1 in points:  # the official construction: offsets numbered in order of first appearance
        for p2 in points:
            offset = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            seen.setdefault(offset, len(seen))
            official.append(seen[offset])
    attention = Attention(32, 4, 2, 2.0, resolution)
    with torch.no_grad():
        attention.attention_biases.copy_(torch.randn(2, resolution * resolution))
    official_bias = attention.attention_biases[:, torch.tensor(official).view(16, 16)]
    # the bias our forward uses: its offset formula on a full 4×4 grid
    rows = torch.arange(4).repeat_interleave(4)
    cols = torch.arange(4).repeat(4)
    offset = (rows[:, None] - rows[None]).abs() * resolution + (cols[:, None] - cols[None]).abs()
    assert torch.equal(attention.attention_biases[:, offset], official_bias)
    assert attention(torch.randn(1, 32, 4, 4)).shape == (1, 32, 4, 4)


def test_lsnet_t_block_layout():
    model = create_model("lsnet_t")
    cfg = LSNetConfig()
    assert len(model.stages[0]) == 0  # LSNet-T has no first-stage blocks
    for stage, depth in enumerate(cfg.depths[1:], start=1):
        blocks = list(model.stages[stage])[2:]  # after the DW 3×3/2 + 1×1 downsampling
        assert len(blocks) == depth
        for index, block in enumerate(blocks):
            if index % 2 == 0:
                assert type(block.mixer).__name__ == "RepVGGDW"
            elif stage == 3:
                assert isinstance(block.mixer.module, Attention) and block.mixer.module.resolution == 4
            else:
                assert isinstance(block.mixer, LSConv) and block.mixer.kernel_size == (7, 7)


def test_op_replaces_the_ls_convolutions():
    model = create_model("lsnet_t", op="conv")
    kinds = {type(m).__name__ for m in model.modules()}
    assert "LSConv" not in kinds and "Conv" in kinds
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)
