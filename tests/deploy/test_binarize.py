"""binarize (S8): every binary op packed to one bit per weight; ≥ 25× smaller on disk; same outputs after reload."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from convzoo import create_op
from convzoo.deploy.binarize import binarize
from convzoo.models import create_model
from convzoo.ops.binary import BinaryConv
from convzoo.ops.binary_packed import PackedBinaryConv
from convzoo.registry import TRANSFORMS


def _model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        create_op("binary", 64, 128, 3, bias=False),
        nn.BatchNorm2d(128),
        create_op("binary", 128, 128, 3, 2, bias=False, mode="bwn"),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def _train_a_little(model: nn.Module) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_saved_file_is_25x_smaller_and_roundtrip_is_exact(tmp_path):
    model = _model(0)
    _train_a_little(model)
    model.eval()
    fp32_bytes = sum(m.weight.numel() * 4 for m in model.modules() if isinstance(m, BinaryConv))
    packed = binarize(model)
    assert isinstance(model[2], BinaryConv), "binarize must not change the model it was given"
    assert [type(packed[i]) for i in (2, 4)] == [PackedBinaryConv, PackedBinaryConv]
    # the binary layers alone: int64 words + float α (these convs have no bias)
    binary_state = {f"{i}.{k}": v for i in (2, 4) for k, v in packed[i].state_dict().items()}
    save_file(binary_state, tmp_path / "binary.safetensors")
    size = (tmp_path / "binary.safetensors").stat().st_size
    assert fp32_bytes >= 25 * size, f"{fp32_bytes} fp32 bytes vs {size} packed"

    save_file(packed.state_dict(), tmp_path / "model.safetensors")
    reloaded = binarize(_model(1))
    reloaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    x = torch.randn(3, 3, 9, 9)
    with torch.no_grad():
        assert torch.equal(reloaded(x), packed(x))
        torch.testing.assert_close(packed(x), model(x), rtol=1e-4, atol=1e-4)


def test_xnor_model_and_single_op():
    model = create_model("xnor_digits", in_chans=1).eval()
    packed = binarize(model)
    assert not any(isinstance(m, BinaryConv) for m in packed.modules())
    assert sum(isinstance(m, PackedBinaryConv) for m in packed.modules()) == 3
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), model(x), rtol=1e-4, atol=1e-4)
    op = create_op("binary", 4, 4)
    assert isinstance(binarize(op), PackedBinaryConv)


def test_registered_and_errors():
    entry = TRANSFORMS.get("binarize")
    assert entry.papers == ("xnor-net",) and entry.obj is binarize
    with pytest.raises(ValueError, match="binarize: Sequential holds no 'binary' op"):
        binarize(nn.Sequential(nn.Conv2d(2, 2, 3)))


def test_channels_last_deploy_form_computes_the_same_function():
    model = _model(2)
    _train_a_little(model)
    model.eval()
    nchw, channels_last = binarize(model), binarize(model, channels_last=True)
    assert channels_last[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(channels_last(x), nchw(x), rtol=1e-5, atol=1e-5)
