"""binarize (S8): every binary op packed to one bit per weight; ≥ 25× smaller on disk; same outputs after reload."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from convzoo import create_op
from convzoo.deploy.binarize import binarize
from convzoo.deploy.packed_binary import PackedBinaryConv
from convzoo.models import create_model
from convzoo.ops.binary import BinaryConv
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


def _exact_bn(channels: int, seed: int) -> nn.BatchNorm2d:
    """An eval BN whose folded affine is exact in float32 (powers of two, eighths): no rounding can differ."""
    generator = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm2d(channels, eps=0.0).eval()
    with torch.no_grad():
        bn.running_var.fill_(4.0)  # 1 / sqrt(4) = 0.5 exactly
        bn.running_mean.copy_(torch.randint(-8, 9, (channels,), generator=generator) / 8)
        bn.weight.copy_(
            torch.tensor([-2.0, -1.0, 0.5, 1.0, 2.0])[torch.randint(0, 5, (channels,), generator=generator)]
        )
        bn.bias.copy_(torch.randint(-8, 9, (channels,), generator=generator) / 8)
    return bn


@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_input_bn_computes_the_same_function(channels_last):
    torch.manual_seed(3)
    model = nn.Sequential(
        _exact_bn(70, 0),
        create_op("binary", 70, 40, 3, bias=False),
        _exact_bn(40, 1),
        create_op("binary", 40, 16, 3, 2, bias=False),
    ).eval()
    x = torch.randint(-64, 65, (2, 70, 9, 8)) / 16  # sixteenths: every BN output is exact, exact zeros included
    folded = binarize(model, fold_bn=True, channels_last=channels_last)
    assert [type(m).__name__ for m in folded] == ["Identity", "PackedBinaryConv", "Identity", "PackedBinaryConv"]
    assert "input_bn=True" in repr(folded[1])
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(folded(x), expected, rtol=1e-5, atol=1e-5)
        for packed in (folded[1], folded[3]):
            packed.use_native = False  # the pure-PyTorch path folds the BN the same way
        torch.testing.assert_close(folded(x), expected, rtol=1e-5, atol=1e-5)


def test_fold_input_bn_refuses_what_it_cannot_fold():
    packed = PackedBinaryConv(4, 2, (3, 3), (1, 1), mode="bwn")
    with pytest.raises(ValueError, match="only mode='xnor' folds an input BatchNorm, this conv is 'bwn'"):
        packed.fold_input_bn(nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="running stats over 4 channels"):
        PackedBinaryConv(4, 2, (3, 3), (1, 1)).fold_input_bn(nn.BatchNorm2d(5))
    # a BN that feeds a BWN conv stays a BN
    model = nn.Sequential(nn.BatchNorm2d(4), create_op("binary", 4, 2, 3, mode="bwn")).eval()
    assert isinstance(binarize(model, fold_bn=True)[0], nn.BatchNorm2d)
