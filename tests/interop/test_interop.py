"""convzoo.interop without the ecosystem packages: the mapping engine, the source edits against independent
references, create_model(pretrained=...) and its failures, the WEIGHTS registry, ``convzoo models``' column, and
convert() on stand-ins of the foreign convolution classes."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo import convert
from convzoo.interop import PAIRS, Pair, Regroup, find_pair, load_weights, map_state, weight_sources
from convzoo.interop.mapping import set_norm_eps
from convzoo.interop.pairs import _crossvit_fusion_qkv, _inceptionnext_biases, _legacy_seresnet, _tresnet_space_to_depth
from convzoo.layers.attention import MultiHeadAttention
from convzoo.layers.space_to_depth import space_to_depth
from convzoo.models import create_model
from convzoo.registry import WEIGHTS

ISSUE_PAIRS = {
    "resnet18", "resnet50", "se_resnet50", "resnext50_32x4d", "resnest50d", "densenet121", "vgg16_bn",
    "efficientnet_b0", "tresnet_m", "convnext_tiny", "inceptionnext_tiny", "convmixer_768_32", "mixer_b16_224",
    "poolformerv2_s12", "convformer_s18", "caformer_s18", "rdnet_tiny",
}  # fmt: skip
# the issue's "new models timm also has" (no timm HaloNet equals convzoo's HaloNet-H1: see convzoo.interop.pairs)
NEW_MODEL_PAIRS = {"inception_v3", "nasnet_a_large", "crossvit_small", "crossvit_9_dagger"}


def test_every_pair_of_the_issue_is_registered():
    assert set(weight_sources()) == ISSUE_PAIRS | NEW_MODEL_PAIRS
    assert set(WEIGHTS.names()) == ISSUE_PAIRS | NEW_MODEL_PAIRS
    assert WEIGHTS.get("nasnet_a_large").summary == "timm:nasnetalarge"
    assert "halonet_h1" not in weight_sources()
    assert WEIGHTS.get("resnet18").summary == "timm:resnet18, torchvision:resnet18"
    assert {p.model for p in PAIRS if p.source == "torchvision"} == {
        "resnet18", "resnet50", "resnext50_32x4d", "densenet121", "vgg16_bn", "efficientnet_b0", "convnext_tiny",
        "inception_v3",
    }  # fmt: skip


def test_regroup_sorts_each_block_stably():
    keys = ["stem.w", "b.0.gamma", "b.0.conv.w", "b.0.norm.w", "b.1.gamma", "b.1.conv.w", "head.w"]
    out = Regroup(r"b\.\d+\.", ("*", "gamma$")).apply(keys)
    assert out == ["stem.w", "b.0.conv.w", "b.0.norm.w", "b.0.gamma", "b.1.conv.w", "b.1.gamma", "head.w"]
    out = Regroup(r"b\.\d+\.", (r"norm\.", "*")).apply(keys)
    assert out[1:4] == ["b.0.norm.w", "b.0.gamma", "b.0.conv.w"]


class _Source(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.rand(4))
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Conv2d(4, 2, 1)


class _Scale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))


class _Target(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
        self.ls = _Scale()


def test_map_state_pairs_reshapes_and_reports():
    source, target = _Source(), _Target()
    source.bn.running_mean.normal_()
    pair = Pair("tiny", "timm", "tiny", regroup=(Regroup("", ("*", "gamma$")),))
    report = map_state(target, source.state_dict(), pair)
    assert [(m.target, m.source) for m in report.mapped] == [
        ("conv.weight", "conv.weight"),
        ("bn.weight", "bn.weight"),
        ("bn.bias", "bn.bias"),
        ("bn.running_mean", "bn.running_mean"),
        ("bn.running_var", "bn.running_var"),
        ("fc.weight", "fc.weight"),
        ("fc.bias", "fc.bias"),
        ("ls.scale", "gamma"),
    ]
    assert report.mapped[5].note == "reshaped from (2, 4, 1, 1)"
    assert torch.equal(target.ls.scale, source.gamma) and torch.equal(target.fc.weight, source.fc.weight[:, :, 0, 0])
    assert torch.equal(target.bn.running_mean, source.bn.running_mean)
    assert "timm:tiny -> tiny: 8 tensors mapped" in str(report) and "ls.scale <- gamma (4,)" in str(report)


def test_map_state_refuses_what_does_not_pair():
    source, target = _Source(), _Target()
    with pytest.raises(ValueError, match=r"gamma \(4,\) does not fit conv.weight"):
        map_state(target, source.state_dict(), Pair("tiny", "timm", "tiny"))
    state = source.state_dict()
    state.pop("fc.bias")
    with pytest.raises(ValueError, match="the source has 7 tensors, the model 8"):
        map_state(target, state, Pair("tiny", "timm", "tiny"))
    # the running variance where the running mean (same shape) is expected
    state = source.state_dict()
    order = ("gamma", "conv.weight", "bn.weight", "bn.bias", "bn.running_var", "bn.running_mean")
    order += ("fc.weight", "fc.bias")
    swapped = {k: state[k] for k in order}
    with pytest.raises(ValueError, match=r"\(running_var\) paired with bn.running_mean \(running_mean\)"):
        map_state(target, swapped, Pair("tiny", "timm", "tiny", regroup=(Regroup("", ("*", "gamma$")),)))


def test_tresnet_space_to_depth_edit_against_timm_order():
    """A stem conv over timm's space-to-depth (channel offset·C + c, built here from its definition) equals the
    edited conv over convzoo's (c·16 + offset)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    n, c, h, w = x.shape
    timm_s2d = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 3, 5, 1, 2, 4).reshape(n, 16 * c, h // 4, w // 4)
    weight = torch.randn(8, 48, 3, 3, dtype=torch.float64)
    state = {"body.conv1.conv.weight": weight}
    notes = _tresnet_space_to_depth(state)
    want = F.conv2d(timm_s2d, weight, padding=1)
    got = F.conv2d(space_to_depth(x, 4), state["body.conv1.conv.weight"], padding=1)
    assert torch.allclose(got, want, atol=1e-12) and "offset·C + c" in notes[0]
    assert not torch.allclose(F.conv2d(space_to_depth(x, 4), weight, padding=1), want)


def test_inceptionnext_bias_edit_concatenates_in_branch_order():
    b = {k: torch.full((2,), float(i)) for i, k in enumerate(("hw", "w", "h"))}
    state = {
        "s.gamma": torch.zeros(6),
        "s.token_mixer.dwconv_hw.weight": torch.zeros(2, 1, 3, 3),
        "s.token_mixer.dwconv_hw.bias": b["hw"],
        "s.token_mixer.dwconv_w.weight": torch.zeros(2, 1, 1, 11),
        "s.token_mixer.dwconv_w.bias": b["w"],
        "s.token_mixer.dwconv_h.weight": torch.zeros(2, 1, 11, 1),
        "s.token_mixer.dwconv_h.bias": b["h"],
    }
    _inceptionnext_biases(state)
    assert list(state) == [
        "s.gamma",
        "s.token_mixer.bias",
        "s.token_mixer.dwconv_hw.weight",
        "s.token_mixer.dwconv_w.weight",
        "s.token_mixer.dwconv_h.weight",
    ]
    assert state["s.token_mixer.bias"].tolist() == [0, 0, 1, 1, 2, 2]


def test_crossvit_qkv_edit_against_separate_projections():
    """timm's CrossViT fusion attention, built here from its definition (separate wq, wk, wv; the class token the
    only query), equals convzoo's attention with the edited (concatenated) qkv."""
    torch.manual_seed(0)
    dim, heads = 16, 4
    state = {"b.attn.wq.weight": torch.randn(dim, dim, dtype=torch.float64)}
    state["b.attn.wq.bias"] = torch.randn(dim, dtype=torch.float64)
    for p in "kv":
        state[f"b.attn.w{p}.weight"] = torch.randn(dim, dim, dtype=torch.float64)
        state[f"b.attn.w{p}.bias"] = torch.randn(dim, dtype=torch.float64)
    state["b.attn.proj.weight"] = torch.randn(dim, dim, dtype=torch.float64)
    state["b.attn.proj.bias"] = torch.randn(dim, dtype=torch.float64)
    x = torch.randn(2, 7, dim, dtype=torch.float64)

    def linear(name: str, t: torch.Tensor) -> torch.Tensor:
        return t @ state[f"b.attn.{name}.weight"].T + state[f"b.attn.{name}.bias"]

    q = linear("wq", x[:, :1]).view(2, 1, heads, 4).transpose(1, 2)  # (N, heads, 1, d)
    k = linear("wk", x).view(2, 7, heads, 4).transpose(1, 2)  # (N, heads, 7, d)
    v = linear("wv", x).view(2, 7, heads, 4).transpose(1, 2)
    attn = torch.softmax(q @ k.transpose(-1, -2) / 2.0, -1)  # scale (16 / 4)^-1/2
    want = linear("proj", (attn @ v).transpose(1, 2).reshape(2, 1, dim))
    edited = dict(state)
    notes = _crossvit_fusion_qkv(edited)
    assert list(edited) == ["b.attn.qkv.weight", "b.attn.qkv.bias", "b.attn.proj.weight", "b.attn.proj.bias"]
    assert notes[0] == "b.attn.qkv.weight = cat(b.attn.wq.weight, b.attn.wk.weight, b.attn.wv.weight)"
    ours = MultiHeadAttention(dim, heads).double()
    ours.load_state_dict({k.removeprefix("b.attn."): v for k, v in edited.items()})
    torch.testing.assert_close(ours(x[:, :1], context=x), want, rtol=0, atol=1e-12)


def test_legacy_seresnet_layout_and_eps_adjustments():
    model = create_model("se_resnet50", layers=(1, 1, 1, 1))
    notes = _legacy_seresnet(model)
    assert model.stem[3].padding == 0 and model.stem[3].ceil_mode
    for stage in model.stages[1:]:
        assert stage[0].body[0].stride == (2, 2) and stage[0].body[3].stride == (1, 1)
    assert model.stages[0][0].body[0].stride == (1, 1)
    assert len(notes) == 4
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
    bn_notes = set_norm_eps(nn.BatchNorm2d, 1e-3, "stem")(model)
    assert bn_notes == ["stem.1.eps 1e-05 -> 0.001"] and model.stem[1].eps == 1e-3


def test_create_model_pretrained_errors(monkeypatch):
    with pytest.raises(ValueError, match="pretrained must name a weights source"):
        create_model("resnet18", pretrained=True)
    with pytest.raises(ValueError, match="resnet20: pretrained='timm' .*no timm or torchvision weights"):
        create_model("resnet20", pretrained="timm")
    with pytest.raises(ValueError, match="no op=, in_chans= or cfg"):
        create_model("resnet18", pretrained="timm", op="shift")
    with pytest.raises(ValueError, match="must be one of 'timm:resnet18', 'torchvision:resnet18'"):
        create_model("resnet18", pretrained="keras")
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    with pytest.raises(ImportError, match=r"weights from timm need the timm package.*convzoo\[ecosystem\]"):
        create_model("resnet18", pretrained="timm")


def test_find_pair_and_load_weights_arguments():
    assert find_pair("se_resnet50", "timm").arch == "seresnet50"
    assert find_pair("se_resnet50", "timm:legacy_seresnet50").adjust
    model = create_model("resnet18")
    with pytest.raises(ValueError, match="say which architecture .* 'timm:resnet18', 'torchvision:resnet18'"):
        load_weights(model, {})
    with pytest.raises(TypeError, match="must be a convzoo model"):
        load_weights(nn.Linear(2, 2), {}, "timm:resnet18")
    state = {k: v.clone() for k, v in create_model("resnet18").state_dict().items()}
    report = load_weights(model, state, "torchvision:resnet18")  # same layout, another model's tensors
    assert len(report.mapped) == 102 and torch.equal(model.stem[0].weight, state["stem.0.weight"])


def test_models_command_shows_ecosystem_weights(capsys):
    from convzoo.cli import main

    assert main(["models", "res*", "--no-macs"]) == 0
    lines = {line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["resnet18"] == "timm+torchvision" and lines["resnest50d"] == "timm" and lines["resnet34"] == "-"
    lines = {}
    for pattern in ("nasnet*", "crossvit*", "halonet*"):
        assert main(["models", pattern, "--no-macs"]) == 0
        lines.update({line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()[2:]})
    assert lines == {
        "nasnet_a_mobile": "-", "nasnet_a_large": "timm", "crossvit_small": "timm", "crossvit_9_dagger": "timm",
        "halonet_h1": "-",
    }  # fmt: skip


class Conv2dSame(nn.Conv2d):
    """A stand-in of timm's class of this name: TensorFlow "SAME" padding computed per input, padding 0."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, padding=0, **kwargs)

    def forward(self, x):
        pads = []
        for size, k, s in zip(reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride), strict=True):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class StdConv2d(nn.Conv2d):
    """A stand-in of a conv with its own forward (weight standardisation)."""

    def forward(self, x):
        w = (self.weight - self.weight.mean((1, 2, 3), keepdim=True)) / (self.weight.std((1, 2, 3), keepdim=True))
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class CondConv(nn.Module):
    """A stand-in of a conv-like module that is no nn.Conv2d (its kernel is mixed per input)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size, self.stride = 8, 8, (3, 3), (1, 1)
        self.weight = nn.Parameter(torch.randn(4, 8 * 8 * 9))

    def forward(self, x):
        return x


def test_convert_foreign_conv_classes():
    model = nn.Sequential(Conv2dSame(3, 8, 3, stride=2), StdConv2d(8, 8, 3, padding=1), CondConv(), nn.Conv2d(8, 8, 1))
    x = torch.randn(1, 3, 11, 11)
    size = model[0](x).shape
    report = convert(model, "conv")
    assert [r.name for r in report.replaced] == ["0"] and report.replaced[0].before.startswith("Conv2dSame(3, 8")
    assert model[0](x).shape == size  # ceil(11 / 2) = 6 at an odd side
    reasons = {s.name: s.reason for s in report.skipped}
    assert reasons["1"].startswith("StdConv2d computes its own forward")
    assert reasons["2"].startswith("CondConv is not an nn.Conv2d")
    assert reasons["3"].startswith("1x1 pointwise conv")
