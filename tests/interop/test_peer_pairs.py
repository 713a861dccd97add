"""Peer tests: every timm/torchvision architecture of ``convzoo.interop.PAIRS`` equals its convzoo model in
float64 once the weights are mapped (random weights, the source's own forward as the reference)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from convzoo.interop import PAIRS, load_weights, map_state, source_model
from convzoo.models import create_model
from tests.interop._peer import randomize, require

pytestmark = pytest.mark.peer

# the input side each pair runs at: 64 unless a model fixes it (Mixer's token MLP takes 224/16 = 14 tokens a
# side; timm's VGG holds its first FC as a 7x7 conv, equal to convzoo's linear where the last map is 7x7;
# CrossViT's position embeddings are sized for 240; NASNet-A at 64 has stride-2 inputs of even sides, 16² to 4²,
# where SAME padding is not symmetric)
_SIDE = {"mixer_b16_224": 224, "vgg16_bn": 224, "inception_v3": 96, "crossvit_small": 240, "crossvit_9_dagger": 240}


def _pair_id(pair) -> str:
    return f"{pair.model}<-{pair.spec}"


@pytest.mark.parametrize("pair", PAIRS, ids=_pair_id)
def test_pair_outputs_equal_in_float64(pair):
    require(pair.source)
    require("torchvision")
    torch.manual_seed(0)
    source = randomize(source_model(pair.spec), seed=1)
    model = create_model(pair.model).double().eval()
    report = load_weights(model, source, pair.spec)
    targets = [k for k in model.state_dict() if not k.endswith("num_batches_tracked") and k not in report.kept]
    assert [m.target for m in report.mapped] == targets  # every convzoo tensor, once, in order
    assert len({m.source for m in report.mapped}) == len(report.mapped)
    params = dict(model.named_parameters())
    mapped = sum(params[m.target].numel() for m in report.mapped if m.target in params)
    assert mapped == sum(p.numel() for p in source.parameters())
    side = _SIDE.get(pair.model, 64)
    x = torch.randn(2, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want, got = source(x), model(x)
    scale = want.abs().max().item()
    diff = (got - want).abs().max().item()
    print(f"{_pair_id(pair)}: max |diff| {diff:.3g} (output max {scale:.3g})")
    assert diff <= 1e-9 * max(scale, 1.0), f"max abs diff {diff} (output scale {scale})"


_DIFFERING = [p for p in PAIRS if p.edits or p.adjust]


@pytest.mark.parametrize("pair", _DIFFERING, ids=_pair_id)
def test_pair_without_its_edits_differs(pair):
    """The edits and adjustments are needed: without them the mapping fails or the outputs differ."""
    require(pair.source)
    require("torchvision")
    source = randomize(source_model(pair.spec), seed=1)
    model = create_model(pair.model).double().eval()
    try:
        map_state(model, source.state_dict(), dataclasses.replace(pair, edits=(), adjust=()))
    except ValueError:
        return  # the tensors do not even pair up
    side = _SIDE.get(pair.model, 64)
    x = torch.randn(2, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (model(x) - source(x)).abs().max().item() > 1e-6


def test_torchvision_inception_v3_transform_input_is_folded():
    """torchvision's released Inception-v3 weights come with ``transform_input=True``: the loaded convzoo model
    computes on the ImageNet-normalised input what torchvision's does."""
    torchvision = require("torchvision")
    source = randomize(torchvision.models.inception_v3(init_weights=False, transform_input=True), seed=1)
    model = create_model("inception_v3").double().eval()
    report = load_weights(model, source, "torchvision:inception_v3")
    assert any("transform_input folded" in e for e in report.edited)
    x = torch.randn(2, 3, 96, 96, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        diff = (model(x) - source(x)).abs().max().item()
    assert diff <= 1e-9, diff
    unfolded = create_model("inception_v3").double().eval()
    map_state(unfolded, source.state_dict(), next(p for p in PAIRS if p.spec == "torchvision:inception_v3"))
    with torch.no_grad():
        assert (unfolded(x) - source(x)).abs().max().item() > 1e-6  # the fold is needed


def test_nasnet_only_timms_padding_reproduces_timms_port():
    """timm's ``nasnetalarge`` pads as TensorFlow's SAME except that its stride-2 average pools count the zero
    padding: after the mapping only ``padding="timm"`` equals it, at even sides (where SAME is not symmetric)
    and at odd ones (where only the average pools differ). timm's class at a small width (F = 16)."""
    require("timm")
    from timm.models.nasnet import NASNetALarge

    torch.manual_seed(0)
    source = randomize(NASNetALarge(num_classes=10, stem_size=16, num_features=16 * 24), seed=1)
    model = create_model("nasnet_a_large", num_classes=10, filters=16, stem_filters=16).double().eval()
    report = load_weights(model, source, "timm:nasnetalarge")
    assert model.padding == "timm" and len(report.adjusted) == 4 * 7
    for side in (64, 67):  # stride-2 inputs 31, 16, 8, 4, 2 and 33, 17, 9, 5, 3
        x = torch.randn(2, 3, side, side, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            want = source(x)
            diffs = {}
            for mode in ("symmetric", "same", "timm"):
                model.set_padding(mode)
                diffs[mode] = (model(x) - want).abs().max().item()
        assert diffs["timm"] <= 1e-12 and diffs["same"] > 1e-6 and diffs["symmetric"] > 1e-6, (side, diffs)


def test_no_timm_halonet_with_weights_is_halonet_h1():
    """Why there is no HaloNet pair: timm's HaloNets with weights have other layouts (their counts differ from
    HaloNet-H1's 8,100,056), and timm's ``halonet_h1`` has that layout but no weights."""
    timm = require("timm")
    with torch.device("meta"):
        ours = sum(p.numel() for p in create_model("halonet_h1").parameters())
        counts = {name: sum(p.numel() for p in timm.create_model(name.split(".")[0]).parameters())
                  for name in timm.list_pretrained("*halo*")}  # fmt: skip
        h1 = sum(p.numel() for p in timm.create_model("halonet_h1").parameters())
    assert len(counts) >= 7 and ours not in counts.values(), counts
    assert h1 == ours == 8_100_056 and not timm.list_pretrained("halonet_h1*")
