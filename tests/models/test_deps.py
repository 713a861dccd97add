"""The once-for-all supernet of DεpS (S113): the elastic kernel against a loop reference, subnets equal to the
supernet under their config (float64), width and depth as explicit slices, MACs equal to the profiler's count,
importance sorting keeps the full model's function, budget sampling, errors."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.deps import OFASupernet, SubnetConfig, elastic_kernel
from convzoo.profile import count_macs
from convzoo.registry import MODELS

TINY = {
    "stem": 8,
    "widths": (8, 16),
    "strides": (2, 2),
    "se": (False, True),
    "hswish": (False, True),
    "kernel_choices": (3, 5, 7),
    "expand_choices": (2, 3),
    "depth_choices": (1, 2),
    "final_expand": 2,
    "feature_mix": 32,
    "classes": 5,
    "in_channels": 2,
}


def _randomised(**overrides) -> OFASupernet:
    """A float64 tiny supernet in eval mode with random transforms and BN statistics (nothing at its init value)."""
    torch.manual_seed(0)
    model = create_model("ofa_mbv3_small", **{**TINY, **overrides}).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "transforms" in name:
                p.add_(0.2 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    return model


def _centre_loop(kernel: torch.Tensor, size: int) -> torch.Tensor:
    offset = (kernel.shape[-1] - size) // 2
    out = torch.empty(size, size, dtype=kernel.dtype)
    for i in range(size):
        for j in range(size):
            out[i, j] = kernel[offset + i, offset + j]
    return out


def test_elastic_kernel_matches_a_loop_reference():
    torch.manual_seed(1)
    weight = torch.randn(3, 1, 7, 7, dtype=torch.float64)
    matrices = {"7to5": torch.randn(25, 25, dtype=torch.float64), "5to3": torch.randn(9, 9, dtype=torch.float64)}
    for size in (7, 5, 3):
        got = elastic_kernel(weight, size, (3, 5, 7), matrices)
        for c in range(3):
            expected = weight[c, 0]
            for source, target in ((7, 5), (5, 3)):
                if source <= size:
                    break
                window = _centre_loop(expected, target)
                vector = [window[i, j] for i in range(target) for j in range(target)]
                matrix = matrices[f"{source}to{target}"]
                mapped = [sum(matrix[r, k] * vector[k] for k in range(target * target)) for r in range(target * target)]
                expected = torch.stack(mapped).reshape(target, target)
            torch.testing.assert_close(got[c, 0], expected, rtol=1e-12, atol=1e-12)
    # the identity matrices the blocks start from: a plain centre crop
    eye = {"7to5": torch.eye(25, dtype=torch.float64), "5to3": torch.eye(9, dtype=torch.float64)}
    assert torch.equal(elastic_kernel(weight, 3, (3, 5, 7), eye), weight[:, :, 2:5, 2:5])
    # without the transform (DεpS's own setting): centre crops, and the blocks hold no matrices
    assert torch.equal(elastic_kernel(weight, 5, (3, 5, 7), {}), weight[:, :, 1:6, 1:6])
    plain = create_model("ofa_mbv3_small", **TINY, kernel_transform=False)
    assert not any("transforms" in name for name, _ in plain.named_parameters())
    block = plain.stages[0][0]
    assert torch.equal(block.kernel(3, 16), block.depthwise[:16, :, 2:5, 2:5])


def test_subnets_equal_the_supernet_under_their_config():
    model = _randomised()
    x = torch.randn(3, 2, 32, 32, dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    configs = [model.largest(), model.smallest()] + [model.sample(generator) for _ in range(4)]
    for config in configs:
        model.set_active(config)
        subnet = model.subnet(config)
        assert not subnet.training
        torch.testing.assert_close(subnet(x), model(x), rtol=0, atol=0)
    # training mode (batch statistics; the same dropout mask from the same seed) agrees as well
    model.train()
    config = configs[-1]
    model.set_active(config)
    subnet = model.subnet(config)
    torch.manual_seed(7)
    expected = model(x)
    torch.manual_seed(7)
    torch.testing.assert_close(subnet(x), expected, rtol=0, atol=0)


def test_width_and_depth_are_explicit_slices():
    model = _randomised()
    blocks = model.stages
    kernel = (5, 3, 7, 3)  # per block: stage 0 blocks 0-1, stage 1 blocks 0-1
    config = SubnetConfig(kernel=kernel, expand=(2, 3, 3, 2), depth=(1, 2))
    subnet = model.subnet(config)
    exported = list(subnet.blocks)[1:]  # after the fixed first block
    assert len(exported) == 3  # depth 1 + 2: the first block of stage 0, both of stage 1
    # mid = make_divisible(in · e, 8): 8·2 = 16; 8·3 = 24; 16·2 = 32; SE reduce = make_divisible(mid / 4, 8) = 8
    pairs = [(blocks[0][0], exported[0], 16, 0), (blocks[1][0], exported[1], 24, 2), (blocks[1][1], exported[2], 32, 3)]
    for elastic, plain, mid, index in pairs:
        assert torch.equal(plain.expand[0].weight, elastic.expand_conv.weight[:mid])
        assert torch.equal(plain.project[0].weight, elastic.project_conv.weight[:, :mid])
        assert torch.equal(plain.expand[1].running_var, elastic.expand_bn.running_var[:mid])
        assert plain.depthwise[0].weight.shape == (mid, 1, kernel[index], kernel[index])
        if elastic.se is not None:
            assert torch.equal(plain.se.reduce.weight, elastic.se.reduce.weight[:8, :mid])
            assert torch.equal(plain.se.expand.bias, elastic.se.expand.bias[:mid])
    assert torch.equal(
        exported[0].depthwise[0].weight,
        elastic_kernel(blocks[0][0].depthwise[:16], 5, (3, 5, 7), dict(blocks[0][0].transforms)),
    )


def test_macs_equal_the_profilers_count():
    model = create_model("ofa_mbv3_small", **TINY).eval()
    x = torch.randn(1, 2, 32, 32)
    generator = torch.Generator().manual_seed(0)
    for config in [model.largest(), model.smallest(), model.sample(generator), model.sample(generator)]:
        assert model.subnet_macs(config, (32, 32)) == count_macs(model.subnet(config), x)
    model.set_active(model.largest())
    assert count_macs(model, x) == model.subnet_macs(model.largest(), (32, 32))
    assert model.subnet_macs(model.smallest(), (32, 32)) < model.subnet_macs(model.largest(), (32, 32))


def test_sorting_keeps_the_full_model_and_puts_important_channels_first():
    model = _randomised()
    x = torch.randn(2, 2, 32, 32, dtype=torch.float64)
    small = model.smallest()
    before_full = model(x)
    model.set_active(small)
    before_small = model(x)
    model.set_active(model.largest())
    model.sort_channels()
    assert bool(model.channels_sorted)
    torch.testing.assert_close(model(x), before_full, rtol=1e-10, atol=1e-10)
    model.set_active(small)
    assert not torch.allclose(model(x), before_small)  # the small subnet now keeps other channels
    for blocks in model.stages:
        for block in blocks:
            importance = block.project_conv.weight.abs().sum((0, 2, 3))
            assert torch.all(importance[:-1] >= importance[1:])


def test_sampling_under_a_budget():
    model = create_model("ofa_mbv3_small", **TINY)
    low, high = model.subnet_macs(model.smallest(), (32, 32)), model.subnet_macs(model.largest(), (32, 32))
    budget = (low + high) // 2
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        config = model.sample_under(budget, (32, 32), generator)
        assert model.subnet_macs(config, (32, 32)) <= budget
    with pytest.raises(ValueError, match="over the budget"):
        model.sample_under(low - 1, (32, 32))
    a = model.sample(torch.Generator().manual_seed(5))
    assert a == model.sample(torch.Generator().manual_seed(5))
    assert set(a.kernel) <= {3, 5, 7} and set(a.expand) <= {2, 3} and set(a.depth) <= {1, 2}


def test_errors_name_the_value():
    model = create_model("ofa_mbv3_small", **TINY)
    largest = model.largest()
    with pytest.raises(ValueError, match=r"kernel\[1\] must be one of 3, 5, 7, got 4"):
        model.set_active(SubnetConfig((7, 4, 7, 7), largest.expand, largest.depth))
    with pytest.raises(ValueError, match="depth needs 2 entries, got 3"):
        model.subnet(SubnetConfig(largest.kernel, largest.expand, (1, 1, 1)))
    with pytest.raises(ValueError, match="kernel_choices must be odd"):
        create_model("ofa_mbv3_small", kernel_choices=(3, 4))
    with pytest.raises(ValueError, match="one entry per stage"):
        create_model("ofa_mbv3_small", widths=(8, 16))


def test_registered_spaces():
    entry = MODELS.get("ofa_mbv3")
    assert entry.kind == "supernet" and entry.papers == ("deps",)
    config = entry.info.config
    assert config.widths == (24, 40, 80, 112, 160) and config.depth_choices == (2, 3, 4)
    assert config.expand_choices == (3, 4, 6) and config.kernel_choices == (3, 5, 7)
    with torch.device("meta"):
        model = create_model("ofa_mbv3")
    assert model.num_blocks == 20 and len(model.largest().kernel) == 20
