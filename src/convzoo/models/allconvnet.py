"""All-CNN-C (S20, Springenberg et al., "Striving for Simplicity: The All Convolutional Net"): a CIFAR network
made only of convolutions, where stride-2 3×3 convs replace the max pools of its base model C.

Paper, Tables 1-2 (All-CNN-C, 32×32 input): 3×3 conv 96 ReLU; 3×3 conv 96 ReLU; 3×3 conv 96 ReLU stride 2;
3×3 conv 192 ReLU; 3×3 conv 192 ReLU; 3×3 conv 192 ReLU stride 2; 3×3 conv 192 ReLU ("valid", 8×8 → 6×6);
1×1 conv 192 ReLU; 1×1 conv 10 ReLU; global averaging over 6×6; softmax. Dropout 20% on the input and 50%
after each layer that replaces a pool. No BatchNorm; every conv has a bias.

The last three layers (the "higher layers" shared by all of the paper's models) form the head: the valid 3×3
conv cannot keep the "same"-padding stride contract of a feature stage, and the class conv followed by
global averaging is the classifier. The ReLU on the class scores before averaging is the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.models.base import ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["AllConvNetConfig", "AllConvNet", "AllConvHead"]


@dataclass(frozen=True)
class AllConvNetConfig:
    """All-CNN-C: ``widths`` of the two conv groups (96, 192); ``input_drop`` on the image (0.2); ``drop_rate``
    after each stride-2 conv (0.5); ``class_relu``: ReLU on the class-score maps before averaging (paper: yes)."""

    widths: tuple[int, int] = (96, 192)
    input_drop: float = 0.2
    drop_rate: float = 0.5
    class_relu: bool = True


class AllConvHead(nn.Module):
    """3×3 valid conv → ReLU → 1×1 conv → ReLU → 1×1 class conv [→ ReLU] → global average (the top of All-CNN-C)."""

    def __init__(self, channels: int, num_classes: int, *, class_relu: bool) -> None:
        super().__init__()
        self.channels = channels
        self.class_relu = class_relu
        self.top = nn.Sequential(
            nn.Conv2d(channels, channels, 3),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
        )
        self.fc: nn.Module | None = None
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        self.fc = nn.Conv2d(self.channels, num_classes, 1) if num_classes > 0 else None

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.top(x)  # (N, C, H − 2, W − 2)
        if pre_logits or self.fc is None:
            return x.mean(dim=(2, 3))  # (N, C)
        x = self.fc(x)  # (N, classes, H − 2, W − 2)
        if self.class_relu:
            x = F.relu(x)
        return x.mean(dim=(2, 3))  # (N, classes)


class AllConvNet(ConvNet):
    """All-CNN-C (S20): input dropout → three stages of 3×3 convs (stride 1, 2, 2) → AllConvHead.

    Stage 0: conv 96, conv 96 (stride 1); stage 1: conv 96 /2, dropout, conv 192, conv 192 (stride 2);
    stage 2: conv 192 /2, dropout (stride 4). ``op=`` replaces every "same"-padded 3×3 conv, strided ones
    included, except the first (it reads the raw image); the valid 3×3 of the head stays.
    """

    def __init__(self, cfg: AllConvNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        narrow, wide = cfg.widths

        def conv(position: str, c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
            def default() -> nn.Module:
                return nn.Conv2d(c_in, c_out, 3, stride, 1)

            return [make_mixer(position, op, default, c_in, c_out, 3, stride, bias=True), nn.ReLU(inplace=True)]

        self.stem = nn.Dropout(cfg.input_drop)
        stage0 = [nn.Conv2d(in_chans, narrow, 3, padding=1), nn.ReLU(inplace=True), *conv("stages.0.2", narrow, narrow)]
        stage1 = [
            *conv("stages.1.0", narrow, narrow, 2),
            nn.Dropout(cfg.drop_rate),
            *conv("stages.1.3", narrow, wide),
            *conv("stages.1.5", wide, wide),
        ]
        stage2 = [*conv("stages.2.0", wide, wide, 2), nn.Dropout(cfg.drop_rate)]
        self.stages = nn.ModuleList(nn.Sequential(*s) for s in (stage0, stage1, stage2))
        self.feature_info = [
            FeatureInfo("stages.0", narrow, 1),
            FeatureInfo("stages.1", wide, 2),
            FeatureInfo("stages.2", wide, 4),
        ]
        self.head = AllConvHead(wide, num_classes, class_relu=cfg.class_relu)


# Exact count by hand from the paper's layer table (weights k·k·C_in·C_out + biases C_out):
#   3·9·96+96 = 2,688; 2 × (96·9·96+96) = 166,080; 96·9·192+192 = 166,080; 3 × (192·9·192+192) = 995,904;
#   192·192+192 = 37,056; 192·10+10 = 1,930; total 1,369,738.
register_variant(
    "all_cnn_c",
    AllConvNet,
    AllConvNetConfig(),
    papers=("allconvnet",),
    params=1_369_738,
    params_source="S20 Table 3 (CIFAR-10): All-CNN-C ≈1.3M; exact count by hand from its layer table (Tables 1-2)",
    input_size=(3, 32, 32),
    num_classes=10,
    summary="All-CNN-C (S20): nine conv layers, stride-2 3×3 convs in place of max pooling, global averaging",
)
