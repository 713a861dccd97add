"""ConvMixer (S22, Trockman & Kolter, "Patches Are All You Need?"): ConvMixer-768/32 and ConvMixer-1536/20.

A p×p/p patch embedding, then ``depth`` isotropic layers that mix space with a residual depthwise k×k conv and
channels with a pointwise 1×1 conv, each followed by the activation and BatchNorm; global pool and a linear head.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["ConvMixerConfig", "ConvMixer"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass(frozen=True)
class ConvMixerConfig:
    """One ConvMixer-h/d: ``dim`` = h channels, ``depth`` = d layers, depthwise ``kernel_size`` k, ``patch_size`` p.

    ``act``: "gelu" (the paper) or "relu" (the released ConvMixer-768/32). ``drop_rate``: dropout before the
    classifier.
    """

    dim: int = 768
    depth: int = 32
    kernel_size: int = 7
    patch_size: int = 7
    act: str = "gelu"
    drop_rate: float = 0.0


class _Layer(nn.Module):
    """x ← x + BN(act(DWConv_k(x))); x ← BN(act(Conv1×1(x))): only the spatial half is residual.

    Not a :class:`~convzoo.layers.residual.ResidualBlock` (whose sum ends the block): the paper's layer adds the
    shortcut around the depthwise half only, and its pointwise half then mixes the sum without a shortcut.
    """

    def __init__(self, cfg: ConvMixerConfig, position: str, op: str | None) -> None:
        super().__init__()
        dim, k, act = cfg.dim, cfg.kernel_size, _ACTIVATIONS[cfg.act]

        def default() -> nn.Module:
            return nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)

        mixer = make_mixer(f"{position}.mixer", op, default, dim, dim, k, bias=True)
        self.spatial = nn.Sequential(mixer, act(), nn.BatchNorm2d(dim))
        self.pointwise = nn.Sequential(nn.Conv2d(dim, dim, 1), act(), nn.BatchNorm2d(dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(x + self.spatial(x))


class ConvMixer(ConvNet):
    """ConvMixer (S22, "Patches Are All You Need?"): patch embedding → isotropic depthwise/pointwise layers.

    Follows the paper's Figure 2 and the official locuslab/convmixer ``convmixer.py`` (PyTorch default
    initialisation; every conv has a bias). A single-stage network: ``feature_info`` has one entry, the
    ``(N, h, H/p, W/p)`` map after the last layer, with reduction p; inputs whose side is not a multiple of p
    lose the remainder to the patch embedding, as in the original. ``op=`` builds each layer's depthwise k×k
    conv as ``create_op(op, h, h, k)`` (with a bias); an operator that cannot stand there raises ``ValueError``.
    """

    def __init__(self, cfg: ConvMixerConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if cfg.act not in _ACTIVATIONS:
            raise ValueError(f"convmixer: act must be one of {', '.join(_ACTIVATIONS)}, got {cfg.act!r}")
        if cfg.kernel_size < 1 or cfg.kernel_size % 2 == 0:
            raise ValueError(f"convmixer: kernel_size must be a positive odd int, got {cfg.kernel_size!r}")
        if cfg.depth < 1 or cfg.dim < 1 or cfg.patch_size < 1:
            raise ValueError(f"convmixer: dim, depth and patch_size must be positive, got {cfg}")
        act = _ACTIVATIONS[cfg.act]
        p = cfg.patch_size
        self.stem = nn.Sequential(nn.Conv2d(in_chans, cfg.dim, p, stride=p), act(), nn.BatchNorm2d(cfg.dim))
        layers = [_Layer(cfg, f"stages.0.{i}", op) for i in range(cfg.depth)]
        self.stages = nn.ModuleList([nn.Sequential(*layers)])
        self.feature_info = [FeatureInfo("stages.0", cfg.dim, p)]
        self.head = ClassifierHead(cfg.dim, num_classes, drop=cfg.drop_rate)


register_variant(
    "convmixer_1536_20",
    ConvMixer,
    ConvMixerConfig(dim=1536, depth=20, kernel_size=9, patch_size=7),
    papers=("convmixer",),
    params=51_625_960,
    params_source="S22 Table 1: 51.6M (k = 9, p = 7); official locuslab/convmixer convmixer_1536_20: 51,625,960",
    summary="ConvMixer-1536/20 (S22, Patches Are All You Need?): patch 7, depthwise kernel 9, GELU",
    test_size=28,
    test_cfg={"depth": 2},
)

register_variant(
    "convmixer_768_32",
    ConvMixer,
    ConvMixerConfig(dim=768, depth=32, kernel_size=7, patch_size=7, act="relu"),
    papers=("convmixer",),
    params=21_110_248,
    params_source="S22 Table 1: 21.1M (k = 7, p = 7); released convmixer_768_32_ks7_p7_relu weights: 21,110,248",
    summary="ConvMixer-768/32 (S22, Patches Are All You Need?): patch 7, depthwise kernel 7, ReLU as released",
    test_size=28,
    test_cfg={"depth": 2},
)
