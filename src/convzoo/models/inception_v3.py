"""Inception-v3 (S3, Szegedy et al., "Rethinking the Inception Architecture for Computer Vision").

A stem of plain convolutions, three Inception-A blocks (paper Fig. 5: the 5×5 replaced by two 3×3s) at 35×35,
a grid-size reduction (Fig. 10), four Inception-B blocks (Fig. 6: 7×7 factorised into 1×7 and 7×1) at 17×17,
a second reduction, two Inception-C blocks (Fig. 7: expanded 1×3 / 3×1 filter banks) at 8×8, then global pool,
dropout and a linear classifier; an auxiliary classifier (Fig. 8) on the 17×17 map during training, and the
label-smoothing regulariser (§7) in :func:`inception_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_number
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["InceptionV3Config", "InceptionV3", "inception_loss"]


@dataclass(frozen=True)
class InceptionV3Config:
    """One Inception-v3 network.

    ``aux_logits``: build the auxiliary classifier on the 17×17 map (used by :meth:`InceptionV3.forward_train`).
    ``padding``: ``"valid"`` as in the paper's Table 1 and the released model (299² → 35², 17², 8²);
    ``"same"`` pads every convolution and max-pool so each stride-s step maps S to ⌈S/s⌉ (a backbone form:
    the same parameters, feature maps at exact strides 2, 4, 8, 16, 32). ``drop_rate``: dropout before the
    classifier (0.5 as torchvision's port of the released model). ``eps``: BatchNorm epsilon (1e-3, TensorFlow's).
    """

    aux_logits: bool = True
    padding: str = "valid"
    drop_rate: float = 0.5
    eps: float = 1e-3


class ConvBN(nn.Sequential):
    """conv (no bias) → BatchNorm → ReLU, the unit every Inception-v3 layer is made of."""

    def __init__(self, conv: nn.Module, channels: int, eps: float) -> None:
        super().__init__(conv, nn.BatchNorm2d(channels, eps=eps), nn.ReLU(inplace=True))


class _Builder:
    """Makes the ConvBN units of one network: padding mode, BN eps and the ``op=`` replacement of padded k×k convs."""

    def __init__(self, cfg: InceptionV3Config, op: str | None) -> None:
        self.same = cfg.padding == "same"
        self.eps = cfg.eps
        self.op = op

    def conv(
        self,
        c_in: int,
        c_out: int,
        kernel: int | tuple[int, int] = 1,
        stride: int = 1,
        *,
        pad: bool = False,
        position: str = "",
    ) -> ConvBN:
        """``kernel`` square or (kh, kw); ``pad``: keep the size (the paper's padded convs inside the blocks).

        An unpadded conv is padded anyway in ``"same"`` mode. ``op=`` replaces each stride-1 padded square k×k
        conv (k > 1) with ``create_op(op, c_in, c_out, k)``; the stride-2 and unpadded convs stay convolutions.
        """
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (kh // 2, kw // 2) if pad or self.same else (0, 0)

        def default() -> nn.Module:
            return nn.Conv2d(c_in, c_out, (kh, kw), stride, padding, bias=False)

        if kh == kw > 1 and stride == 1 and padding == (kh // 2, kw // 2):
            return ConvBN(make_mixer(position, self.op, default, c_in, c_out, kh), c_out, self.eps)
        return ConvBN(default(), c_out, self.eps)

    def max_pool(self) -> nn.MaxPool2d:
        """3×3/2 max-pool (padded by 1 in ``"same"`` mode)."""
        return nn.MaxPool2d(3, 2, padding=1 if self.same else 0)


def _avg_pool_3x3(x: Tensor) -> Tensor:
    """3×3/1 average pool with zero padding counted, the pool branch of every Inception block."""
    return F.avg_pool2d(x, 3, stride=1, padding=1)


class InceptionA(nn.Module):
    """Inception-A (Fig. 5, the 35×35 blocks ``Mixed_5b``–``5d``): C_in → 224 + pool_features channels.

    Branches: 1×1 (64); 1×1 (48) → 5×5 (64); 1×1 (64) → 3×3 (96) → 3×3 (96); 3×3 avg-pool → 1×1 (pool_features).
    The 5×5 branch is in the released model (and in torchvision's and timm's ports of it) though Fig. 5 shows
    the factorised branch only; the published parameter counts include it.
    """

    def __init__(self, b: _Builder, c_in: int, pool_features: int, position: str) -> None:
        super().__init__()
        self.branch1x1 = b.conv(c_in, 64)
        self.branch5x5 = nn.Sequential(b.conv(c_in, 48), b.conv(48, 64, 5, pad=True, position=f"{position}.5x5"))
        self.branch3x3dbl = nn.Sequential(
            b.conv(c_in, 64),
            b.conv(64, 96, 3, pad=True, position=f"{position}.3x3dbl.1"),
            b.conv(96, 96, 3, pad=True, position=f"{position}.3x3dbl.2"),
        )
        self.branch_pool = b.conv(c_in, pool_features)
        self.out_channels = 224 + pool_features

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1x1(x), self.branch5x5(x), self.branch3x3dbl(x), self.branch_pool(_avg_pool_3x3(x))]
        return torch.cat(branches, 1)  # (N, 224 + pool_features, H, W)


class ReductionA(nn.Module):
    """Grid reduction 35 → 17 (Fig. 10, ``Mixed_6a``): C_in → 480 + C_in channels, stride 2.

    Branches: 3×3/2 (384); 1×1 (64) → 3×3 (96) → 3×3/2 (96); 3×3/2 max-pool.
    """

    def __init__(self, b: _Builder, c_in: int, position: str) -> None:
        super().__init__()
        self.branch3x3 = b.conv(c_in, 384, 3, 2)
        self.branch3x3dbl = nn.Sequential(
            b.conv(c_in, 64), b.conv(64, 96, 3, pad=True, position=f"{position}.3x3dbl.1"), b.conv(96, 96, 3, 2)
        )
        self.pool = b.max_pool()
        self.out_channels = 480 + c_in

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch3x3(x), self.branch3x3dbl(x), self.pool(x)], 1)  # (N, 480 + C_in, H/2, W/2)


class InceptionB(nn.Module):
    """Inception-B (Fig. 6 with n = 7, the 17×17 blocks ``Mixed_6b``–``6e``): 768 → 768 channels.

    Branches: 1×1 (192); 1×1 (c7) → 1×7 (c7) → 7×1 (192); 1×1 (c7) → 7×1 → 1×7 → 7×1 (c7) → 1×7 (192);
    3×3 avg-pool → 1×1 (192). ``c7`` is 128, 160, 160, 192 in the four blocks. Every factorised step has its
    own BatchNorm and ReLU, which is why the ``asym`` operator (the linear k×1 → 1×k chain alone) does not
    stand for these branches.
    """

    def __init__(self, b: _Builder, c_in: int, c7: int) -> None:
        super().__init__()
        row, col = (1, 7), (7, 1)
        self.branch1x1 = b.conv(c_in, 192)
        self.branch7x7 = nn.Sequential(b.conv(c_in, c7), b.conv(c7, c7, row, pad=True), b.conv(c7, 192, col, pad=True))
        self.branch7x7dbl = nn.Sequential(
            b.conv(c_in, c7),
            b.conv(c7, c7, col, pad=True),
            b.conv(c7, c7, row, pad=True),
            b.conv(c7, c7, col, pad=True),
            b.conv(c7, 192, row, pad=True),
        )
        self.branch_pool = b.conv(c_in, 192)
        self.out_channels = 768

    def forward(self, x: Tensor) -> Tensor:
        branches = [self.branch1x1(x), self.branch7x7(x), self.branch7x7dbl(x), self.branch_pool(_avg_pool_3x3(x))]
        return torch.cat(branches, 1)  # (N, 768, H, W)


class ReductionB(nn.Module):
    """Grid reduction 17 → 8 (``Mixed_7a``): C_in → 512 + C_in channels, stride 2.

    Branches: 1×1 (192) → 3×3/2 (320); 1×1 (192) → 1×7 → 7×1 (192) → 3×3/2 (192); 3×3/2 max-pool.
    """

    def __init__(self, b: _Builder, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = nn.Sequential(b.conv(c_in, 192), b.conv(192, 320, 3, 2))
        self.branch7x7x3 = nn.Sequential(
            b.conv(c_in, 192),
            b.conv(192, 192, (1, 7), pad=True),
            b.conv(192, 192, (7, 1), pad=True),
            b.conv(192, 192, 3, 2),
        )
        self.pool = b.max_pool()
        self.out_channels = 512 + c_in

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch3x3(x), self.branch7x7x3(x), self.pool(x)], 1)  # (N, 512 + C_in, H/2, W/2)


class InceptionC(nn.Module):
    """Inception-C (Fig. 7, the 8×8 blocks ``Mixed_7b``/``7c``): C_in → 2048 channels.

    Branches: 1×1 (320); 1×1 (384) → [1×3 (384) ‖ 3×1 (384)]; 1×1 (448) → 3×3 (384) → [1×3 (384) ‖ 3×1 (384)];
    3×3 avg-pool → 1×1 (192). ``‖``: both applied to the same input and concatenated (the expanded filter bank).
    """

    def __init__(self, b: _Builder, c_in: int, position: str) -> None:
        super().__init__()
        self.branch1x1 = b.conv(c_in, 320)
        self.branch3x3 = b.conv(c_in, 384)
        self.branch3x3_row = b.conv(384, 384, (1, 3), pad=True)
        self.branch3x3_col = b.conv(384, 384, (3, 1), pad=True)
        self.branch3x3dbl = nn.Sequential(
            b.conv(c_in, 448), b.conv(448, 384, 3, pad=True, position=f"{position}.3x3dbl")
        )
        self.branch3x3dbl_row = b.conv(384, 384, (1, 3), pad=True)
        self.branch3x3dbl_col = b.conv(384, 384, (3, 1), pad=True)
        self.branch_pool = b.conv(c_in, 192)
        self.out_channels = 2048

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3(x)
        d = self.branch3x3dbl(x)
        branches = [
            self.branch1x1(x),
            self.branch3x3_row(a),
            self.branch3x3_col(a),
            self.branch3x3dbl_row(d),
            self.branch3x3dbl_col(d),
            self.branch_pool(_avg_pool_3x3(x)),
        ]
        return torch.cat(branches, 1)  # (N, 320 + 768 + 768 + 192, H, W)


class AuxHead(nn.Module):
    """The auxiliary classifier (Fig. 8) on the 17×17 map: 5×5/3 avg-pool → 1×1 (128) → 5×5 (768) → pool → linear.

    ``(N, C, 17, 17) → (N, num_classes)``; its 5×5 conv is unpadded (a 5×5 map becomes 1×1), so the 17×17 map
    must be at least 17 wide.
    """

    def __init__(self, c_in: int, num_classes: int, eps: float) -> None:
        super().__init__()
        self.conv0 = ConvBN(nn.Conv2d(c_in, 128, 1, bias=False), 128, eps)
        self.conv1 = ConvBN(nn.Conv2d(128, 768, 5, bias=False), 768, eps)
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Linear(768, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < 17:
            raise ValueError(f"inception_v3: the auxiliary head needs a map of at least 17², got {tuple(x.shape[-2:])}")
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))  # (N, 768, h, w), 1×1 at 17² in
        return self.fc(x.mean(dim=(2, 3)))  # (N, num_classes)


class InceptionHead(ClassifierHead):
    """Global pool → dropout → linear, holding the auxiliary classifier so both are reset (and dropped) together."""

    def __init__(self, in_features: int, num_classes: int, *, drop: float, aux: AuxHead | None) -> None:
        super().__init__(in_features, num_classes, drop=drop)
        self.aux = aux

    def reset(self, num_classes: int) -> None:
        super().reset(num_classes)
        if getattr(self, "aux", None) is not None:
            self.aux.reset(num_classes)


class InceptionV3(ConvNet):
    """Inception-v3 (S3, "Rethinking the Inception Architecture for Computer Vision"), 299×299 input.

    Stages (``features_only``; stride and channels): the stem convs 3×3/2 (32), 3×3 (32), 3×3 (64) at 2/64;
    max-pool, 1×1 (80), 3×3 (192) at 4/192; max-pool and 3 × Inception-A at 8/288; reduction and 4 × Inception-B
    at 16/768; reduction and 2 × Inception-C at 32/2048. With ``padding="valid"`` (the paper's) the maps are
    147, 71, 35, 17, 8 wide at 299² — not ⌈299/stride⌉; ``padding="same"`` gives exactly ⌈S/stride⌉.

    ``forward`` returns the main logits in both modes; :meth:`forward_train` returns ``(logits, aux_logits)``
    for the paper's training loss :func:`inception_loss` (the auxiliary classifier is otherwise unused).
    Follows the released model as torchvision ports it: BN eps 1e-3 after every conv (no conv biases), the
    extra 5×5 branch of Inception-A, dropout 0.5; weights truncated-normal with std 0.1 (0.01 for the
    auxiliary 5×5 conv, 0.001 for its classifier), as TF-Slim's ``inception_v3``.

    ``op=`` replaces each stride-1 size-keeping square k×k conv (the 3×3s and 5×5s inside the blocks and the
    third stem conv; with ``padding="same"`` also the second and fifth stem convs) with
    ``create_op(op, C_in, C_out, k)``; the strided, unpadded, auxiliary and 1×n / n×1 convs stay.
    """

    def __init__(
        self, cfg: InceptionV3Config, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        check_choice(cfg.padding, ("valid", "same"), "padding", "inception_v3")
        check_number(cfg.drop_rate, "drop_rate", "inception_v3", low=0.0, low_open=False, high=1.0, high_open=True)
        b = _Builder(cfg, op)
        self.stem = nn.Identity()
        stem = nn.Sequential(
            b.conv(in_chans, 32, 3, 2), b.conv(32, 32, 3), b.conv(32, 64, 3, pad=True, position="stages.0.2")
        )
        stage1 = nn.Sequential(b.max_pool(), b.conv(64, 80), b.conv(80, 192, 3))
        blocks_a, c = [], 192
        for i, pool_features in enumerate((32, 64, 64)):
            blocks_a.append(InceptionA(b, c, pool_features, f"stages.2.{i + 1}"))
            c = blocks_a[-1].out_channels
        stage2 = nn.Sequential(b.max_pool(), *blocks_a)
        reduction_a = ReductionA(b, c, "stages.3.0")
        c = reduction_a.out_channels
        stage3 = nn.Sequential(reduction_a, *(InceptionB(b, c, c7) for c7 in (128, 160, 160, 192)))
        reduction_b = ReductionB(b, c)
        c = reduction_b.out_channels
        block_c1 = InceptionC(b, c, "stages.4.1")
        stage4 = nn.Sequential(reduction_b, block_c1, InceptionC(b, block_c1.out_channels, "stages.4.2"))
        self.stages = nn.ModuleList([stem, stage1, stage2, stage3, stage4])
        self.feature_info = [
            FeatureInfo(f"stages.{i}", channels, reduction)
            for i, (channels, reduction) in enumerate(((64, 2), (192, 4), (288, 8), (768, 16), (2048, 32)))
        ]
        aux = AuxHead(768, num_classes, cfg.eps) if cfg.aux_logits else None
        self.head = InceptionHead(2048, num_classes, drop=cfg.drop_rate, aux=aux)
        self._init_weights()

    def _init_weights(self) -> None:
        skip = modules_inside_ops(self)  # a replacement operator keeps its own initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear) and id(m) not in skip:
                nn.init.trunc_normal_(m.weight, std=0.1, a=-0.2, b=0.2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        aux = self.head.aux
        if aux is not None:
            nn.init.trunc_normal_(aux.conv1[0].weight, std=0.01, a=-0.02, b=0.02)
            if isinstance(aux.fc, nn.Linear):
                nn.init.trunc_normal_(aux.fc.weight, std=0.001, a=-0.002, b=0.002)

    def forward_train(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(logits, aux_logits)``, both ``(N, num_classes)``; ``aux_logits`` is None without the auxiliary head."""
        x = self.stages[2](self.stages[1](self.stages[0](x)))
        mid = self.stages[3](x)  # (N, 768, 17, 17) at 299²
        aux = self.head.aux
        aux_logits = aux(mid) if aux is not None else None
        return self.forward_head(self.stages[4](mid)), aux_logits


def inception_loss(
    logits: Tensor, aux_logits: Tensor | None, target: Tensor, *, smoothing: float = 0.1, aux_weight: float = 0.4
) -> Tensor:
    """Label-smoothed cross-entropy (§7, ε = 0.1) of the main logits plus ``aux_weight`` × that of the auxiliary ones.

    With K classes the target distribution is ``q'(k) = (1 − ε)·δ(k, y) + ε/K`` and the loss ``−Σ_k q'(k) log p(k)``
    averaged over the batch (``logits``: (N, K), ``target``: (N,) class indices). The paper gives no weight for
    the auxiliary loss; 0.4 is the released training code's (TF-Slim).
    """
    check_number(smoothing, "smoothing", "inception_loss", low=0.0, low_open=False, high=1.0, high_open=True)
    check_number(aux_weight, "aux_weight", "inception_loss", low=0.0, low_open=False)
    loss = F.cross_entropy(logits, target, label_smoothing=smoothing)
    if aux_logits is not None:
        loss = loss + aux_weight * F.cross_entropy(aux_logits, target, label_smoothing=smoothing)
    return loss


register_variant(
    "inception_v3",
    InceptionV3,
    InceptionV3Config(),
    papers=("inception-v3",),
    params=27_161_264,
    params_source=(
        "torchvision inception_v3 IMAGENET1K_V1 weights (ported from the released TF model), with the auxiliary "
        "classifier: 27,161,264; without it 23,834,568 (timm inception_v3)"
    ),
    input_size=(3, 299, 299),
    summary="Inception-v3 (S3, Rethinking the Inception Architecture): factorised Inception-A/B/C, 299² input",
    test_size=32,
    test_cfg={"aux_logits": False, "padding": "same"},
)
