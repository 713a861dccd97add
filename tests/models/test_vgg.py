"""VGG (S53): weight-layer counts and widths of configurations A, B, D, E (paper Table 1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.models import create_model

# S53 Table 1: conv widths of each configuration, stage by stage; then FC-4096, FC-4096, FC-1000
TABLE_1 = {
    11: [[64], [128], [256, 256], [512, 512], [512, 512]],
    13: [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    16: [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    19: [[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4],
}


@pytest.mark.parametrize("depth", sorted(TABLE_1))
@pytest.mark.parametrize("bn", [False, True])
def test_weight_layers_match_table_1(depth, bn):
    name = f"vgg{depth}" + ("_bn" if bn else "")
    with torch.device("meta"):
        model = create_model(name)
    convs = [[m.out_channels for m in stage.modules() if isinstance(m, nn.Conv2d)] for stage in model.stages]
    assert convs == TABLE_1[depth]
    linears = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [4096, 4096, 1000]
    assert sum(map(len, convs)) + len(linears) == depth  # "VGG-D has 16 weight layers"
    assert all(m.kernel_size == (3, 3) for m in model.stages.modules() if isinstance(m, nn.Conv2d))
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == (sum(map(len, convs)) if bn else 0)


def test_classifier_reads_a_7x7_map_at_any_input_size():
    model = create_model("vgg11", head_width=32, num_classes=3)
    for side in (32, 224):
        assert model.forward_features(torch.randn(1, 3, side, side)).shape[-1] == side // 32
        assert model(torch.randn(1, 3, side, side)).shape == (1, 3)
    assert model.head.hidden[0].in_features == 512 * 7 * 7
