"""DenseNet (S36): dense connectivity, BC channel arithmetic, and the memory-efficient (checkpointed) mode."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo.models.densenet as densenet_module
from convzoo.models import create_model
from convzoo.models.densenet import DenseBlock, DenseLayer


def _record_block(block: nn.Module) -> tuple[list, list, list]:
    """Hooks that record the block input, each layer's input list and each layer's output."""
    block_input, layer_inputs, layer_outputs = [], [], []
    block.register_forward_pre_hook(lambda m, args: block_input.append(args[0]))
    for layer in block.layers:
        layer.register_forward_pre_hook(lambda m, args: layer_inputs.append(list(args[0])))
        layer.register_forward_hook(lambda m, args, out: layer_outputs.append(out))
    return block_input, layer_inputs, layer_outputs


def test_each_layer_reads_every_earlier_output():
    # x_ℓ = H_ℓ([x_0, …, x_{ℓ-1}]): layer ℓ (1-based) receives exactly x_0 … x_{ℓ-1}, oldest first
    torch.manual_seed(0)
    block = DenseBlock(
        8, 5, 4, position="b", op=None, bottleneck=True, bn_size=4, drop_rate=0.0, memory_efficient=False
    )
    block_input, layer_inputs, layer_outputs = _record_block(block)
    out = block(torch.randn(2, 8, 6, 6))
    produced = [block_input[0], *layer_outputs]  # x_0, x_1, …, x_5
    for ell, inputs in enumerate(layer_inputs, start=1):
        assert [id(t) for t in inputs] == [id(produced[j]) for j in range(ell)], f"layer {ell}"
    torch.testing.assert_close(out, torch.cat(produced, 1))
    assert out.shape == (2, 8 + 5 * 4, 6, 6)


def test_densenet121_stage_channels_follow_table_1():
    # by hand from S36 Table 1 (k = 32, θ = 0.5, stem 64): 64 + 6·32 = 256 → 128 + 12·32 = 512
    # → 256 + 24·32 = 1024 → 512 + 16·32 = 1024; strides 4, 8, 16, 32
    model = create_model("densenet121", features_only=True)
    features = model(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == [256, 512, 1024, 1024]
    assert [f.shape[-1] for f in features] == [16, 8, 4, 2]
    layers = [m for m in model.modules() if isinstance(m, DenseLayer)]
    assert len(layers) == 6 + 12 + 24 + 16
    # BC: every layer has the 1×1 bottleneck to 4k = 128 channels before its 3×3 to k = 32
    assert all(layer.conv1.out_channels == 128 and layer.conv2.out_channels == 32 for layer in layers)


def test_cifar_densenet_without_bc_has_no_bottleneck_and_keeps_channels():
    # DenseNet (L=40, k=12): 16 + 12·12 = 160 channels, transitions keep all of them: 160 + 144 = 304, 448
    model = create_model("densenet40_k12", features_only=True)
    assert [info.channels for info in model.feature_info] == [160, 304, 448]
    assert all(layer.conv1 is None for layer in model.modules() if isinstance(layer, DenseLayer))


def _plain_and_efficient(name: str, **cfg):
    torch.manual_seed(0)
    plain = create_model(name, **cfg).double()
    efficient = create_model(name, memory_efficient=True, **cfg).double()
    efficient.load_state_dict(plain.state_dict())
    return plain, efficient


@pytest.mark.parametrize("name", ["densenet121", "densenet40_k12"])
def test_memory_efficient_gives_the_same_outputs_gradients_and_statistics(name, monkeypatch):
    layers = (2, 3, 2, 2) if name == "densenet121" else (2, 3, 2)
    plain, efficient = _plain_and_efficient(name, layers=layers, num_classes=5)
    calls = []
    real_checkpoint = densenet_module.checkpoint

    def counting_checkpoint(*args, **kwargs):
        calls.append(None)
        return real_checkpoint(*args, **kwargs)

    monkeypatch.setattr(densenet_module, "checkpoint", counting_checkpoint)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    inputs = [x.clone().requires_grad_(True), x.clone().requires_grad_(True)]
    outputs = [plain(inputs[0]), efficient(inputs[1])]
    weight = torch.randn_like(outputs[0])
    for out in outputs:
        (out * weight).sum().backward()

    assert len(calls) == sum(layers), "the efficient model must checkpoint every dense layer"
    torch.testing.assert_close(outputs[1], outputs[0])
    torch.testing.assert_close(inputs[1].grad, inputs[0].grad)
    grads = dict(plain.named_parameters())
    for pname, p in efficient.named_parameters():
        torch.testing.assert_close(p.grad, grads[pname].grad, msg=f"gradient of {pname}")
    # the recomputation in the backward pass must not move BatchNorm running averages a second time
    buffers = dict(plain.named_buffers())
    for bname, b in efficient.named_buffers():
        torch.testing.assert_close(b, buffers[bname], msg=f"buffer {bname}")


def test_memory_efficient_skips_checkpoint_without_gradients(monkeypatch):
    _, efficient = _plain_and_efficient("densenet121", layers=(1, 1, 1, 1))
    monkeypatch.setattr(densenet_module, "checkpoint", lambda *a, **k: pytest.fail("checkpoint under no_grad"))
    with torch.no_grad():
        efficient.eval()(torch.randn(1, 3, 32, 32, dtype=torch.float64))
