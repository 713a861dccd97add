"""SPAN and DSCLoRA (S29): the swift parameter-free attention network, and its ConvLoRA fine-tune with
spatial-affinity distillation.

SPAN's block (SPAB) is three 3×3 convs with SiLU and a parameter-free attention ``σ(out) − ½`` applied to
``out + x``. Its training-form convs (Conv3XC) re-parameterise into one 3×3 conv each; this module builds the deploy
form directly. DSCLoRA is SPAN at 26 channels with ConvLoRA adapters (rank 2 on every block conv, rank 8 on
the last body conv and the upsampler conv, α = 2r), trained to match a teacher through
:func:`spatial_affinity_loss`; merged (``convzoo.deploy.merge_lora``) it costs what the base network costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.lora import apply_lora
from convzoo.models._sr import MeanShift, PixelShuffleTail, check_scale, register_sr

__all__ = ["SPAN", "SPANConfig", "spatial_affinity", "spatial_affinity_loss"]


@dataclass(frozen=True)
class SPANConfig:
    scale: int = 4
    width: int = 48
    blocks: int = 6
    block_lora_rank: int = 0  # DSCLoRA: 2
    tail_lora_rank: int = 0  # DSCLoRA: 8 (conv after the blocks and the upsampler conv)


def _conv3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class _SPAB(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = _conv3(width, width), _conv3(width, width), _conv3(width, width)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The block output and its first conv's output (which SPAN's fusion takes from the last block)."""
        out1 = self.c1(x)
        out3 = self.c3(F.silu(self.c2(F.silu(out1))))
        attention = torch.sigmoid(out3) - 0.5  # parameter-free attention
        return (out3 + x) * attention, out1


def spatial_affinity(features: Tensor) -> Tensor:
    """Pixel-to-pixel cosine affinity of (N, C, H, W) features: (N, HW, HW)."""
    flat = F.normalize(features.flatten(2), dim=1)  # (N, C, HW), unit vectors per pixel
    return flat.transpose(1, 2) @ flat  # (N, HW, HW)


def spatial_affinity_loss(student: list[Tensor], teacher: list[Tensor]) -> Tensor:
    """DSCLoRA's distillation term: mean L1 distance between student and teacher spatial affinities, per feature.

    Affinities are channel-count free, so a 26-channel student is matched to a 48-channel teacher directly.
    """
    if len(student) != len(teacher) or not student:
        raise ValueError(f"spatial_affinity_loss: needs matching feature lists, got {len(student)} and {len(teacher)}")
    terms = [
        (spatial_affinity(s) - spatial_affinity(t.detach())).abs().mean() for s, t in zip(student, teacher, strict=True)
    ]
    return torch.stack(terms).mean()


class SPAN(nn.Module):
    def __init__(self, cfg: SPANConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "span")
        width, blocks = check_int(cfg.width, "width", "span"), check_int(cfg.blocks, "blocks", "span", low=2)
        self.sub_mean = MeanShift(sign=-1)
        self.head = _conv3(3, width)
        self.blocks = nn.ModuleList(_SPAB(width) for _ in range(blocks))
        self.body_tail = _conv3(width, width)
        self.fuse = nn.Conv2d(width * 4, width, 1)
        self.upsample = PixelShuffleTail(width, 3, self.scale)
        block_rank = check_int(cfg.block_lora_rank, "block_lora_rank", "span", low=0)
        tail_rank = check_int(cfg.tail_lora_rank, "tail_lora_rank", "span", low=0)
        if block_rank or tail_rank:
            tail = ("body_tail", "upsample.0")
            apply_lora(self, lambda name, _: tail_rank if name in tail else block_rank if "blocks." in name else 0)
            for name, parameter in self.named_parameters():
                parameter.requires_grad_("lora_" in name)  # the adapters train alone

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """``(N, 3, sH, sW)``; with ``return_features`` also the block outputs (what the distillation compares)."""
        features = self.head(self.sub_mean(x))
        out, first, outputs, firsts = features, features, [], []
        for block in self.blocks:
            out, first = block(out)
            outputs.append(out)
            firsts.append(first)
        # fusion of the head, the refined last block, the first block and the last block's first conv
        fused = self.fuse(torch.cat([features, self.body_tail(out), outputs[0], firsts[-1]], dim=1))
        image = self.upsample(fused)  # (N, 3, sH, sW)
        return (image, outputs) if return_features else image


register_sr(
    "span",
    SPAN,
    SPANConfig(),
    papers=("dsclora",),
    params=426_000,
    params_source="SPAN (Wan et al., NTIRE 2024 ESR winner; the teacher of S29) deploy form ×4 at 48 channels: "
    "0.426M as published; this deploy-form build counts 426,288",
    summary="SPAN: 6 parameter-free-attention blocks (SPAB), 48 channels, deploy form (the DSCLoRA teacher)",
    test_cfg={"width": 16, "blocks": 2},  # twice DSCLoRA's, as 48 is to 26: its teacher in the study
)
register_sr(
    "dsclora",
    SPAN,
    SPANConfig(width=26, block_lora_rank=2, tail_lora_rank=8),
    papers=("dsclora",),
    params=131_000,
    params_source="DSCLoRA/DSCF (S29, NTIRE 2025 ESR team 23, Yaozzz666/DSCF-SR team23_DSCF.py): 0.131M after "
    "merging; counted after merge_lora: 130,828 (the unmerged model adds its LoRA A/B factors)",
    summary="S29 DSCLoRA: SPAN at 26 channels with ConvLoRA adapters (r=2 blocks, r=8 tail), merged for deploy",
    test_cfg={"width": 8, "blocks": 2},
)
