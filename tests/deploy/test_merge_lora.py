import pytest
import torch
from torch import nn

from convzoo.deploy.lora import merge_lora
from convzoo.layers.lora import LoRAConv
from convzoo.registry import TRANSFORMS

CONVS = [
    nn.Conv1d(4, 6, 5, stride=2, padding=1),
    nn.Conv2d(4, 6, 3, padding=1, groups=2),
    nn.Conv2d(4, 8, 3, stride=2, dilation=2, groups=4, bias=False),
    nn.Conv3d(4, 6, 3, stride=(1, 2, 2), padding=1),
]


@pytest.mark.parametrize("conv", CONVS, ids=lambda c: repr(c))
def test_merged_equals_unmerged(conv):
    torch.manual_seed(0)
    model = nn.Sequential(LoRAConv(conv.double(), rank=3, alpha=5.0), nn.ReLU())
    nn.init.normal_(model[0].lora_B)  # a trained, non-zero update
    x = torch.randn(2, 4, *(9,) * (conv.weight.dim() - 2), dtype=torch.float64)
    merged = merge_lora(model)
    assert type(merged[0]) is type(conv) and not any(isinstance(m, LoRAConv) for m in merged.modules())
    torch.testing.assert_close(merged(x), model(x))
    assert isinstance(model[0], LoRAConv)  # not in place by default


def test_merged_dsclora_has_the_base_cost_and_equals_the_adapted_model():
    from convzoo.models.registration import create_model

    torch.manual_seed(0)
    model = create_model("dsclora", width=8, blocks=2).double().eval()
    for module in model.modules():
        if isinstance(module, LoRAConv):
            nn.init.normal_(module.lora_B, std=0.1)
    base = create_model("span", width=8, blocks=2)
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    merged = merge_lora(model)
    torch.testing.assert_close(merged(x), model(x))
    assert sum(p.numel() for p in merged.parameters()) == sum(p.numel() for p in base.parameters())


def test_registered():
    assert TRANSFORMS.get("merge_lora").papers == ("dsclora",)
