import pytest
import torch
from torch import nn

from convzoo.layers.lora import LoRAConv, apply_lora, lora_parameters


def test_wrapped_conv_starts_equal_and_only_the_adapter_trains():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 5)
    expected = conv(x)
    adapter = LoRAConv(conv, rank=2, alpha=4.0)
    torch.testing.assert_close(adapter(x), expected)
    adapter(x).square().sum().backward()
    assert conv.weight.grad is None and conv.bias.grad is None
    assert adapter.lora_B.grad is not None and adapter.lora_B.grad.abs().sum() > 0


def test_the_update_is_rank_r_and_scaled_by_alpha_over_r():
    adapter = LoRAConv(nn.Conv1d(3, 5, 3), rank=2, alpha=6.0)
    nn.init.normal_(adapter.lora_B)
    delta = adapter.delta()
    assert delta.shape == adapter.conv.weight.shape
    assert torch.linalg.matrix_rank(delta.flatten(1)) == 2
    torch.testing.assert_close(delta, 3.0 * (adapter.lora_B @ adapter.lora_A).view_as(delta))


def test_apply_lora_wraps_the_chosen_convs_once():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1))
    apply_lora(model, 2, where=lambda name, _: name == "2")
    apply_lora(model, 2, where=lambda name, _: name.startswith("2"))
    assert isinstance(model[2], LoRAConv) and isinstance(model[2].conv, nn.Conv2d) and isinstance(model[0], nn.Conv2d)
    assert len(lora_parameters(model)) == 2


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="lora: wraps nn.Conv1d/2d/3d, got Linear"):
        LoRAConv(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="rank must be"):
        LoRAConv(nn.Conv2d(2, 2, 1), rank=0)
