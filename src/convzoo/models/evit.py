"""EViT (S71, Liang et al., "Not All Patches are What You Need: Expediting Vision Transformers via Token
Reorganizations"): DeiT with attentive tokens kept and inattentive tokens fused into one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.init import drop_path_rates
from convzoo.core.validate import check_int, check_number
from convzoo.layers.attention import TransformerBlock
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import register_variant

__all__ = ["EViTConfig", "EViT", "EViTBlock", "kept_tokens"]


@dataclass(frozen=True)
class EViTConfig:
    """One EViT: a DeiT of ``depth`` blocks whose blocks at ``drop_loc`` keep a fraction ``keep_rate`` of the tokens.

    ``img_size``: the side the position embedding is learnt for (other sides interpolate it bicubically, as the
    official code does). ``fuse_token``: fuse the inattentive tokens into one (EViT) or drop them (the
    "w/o fusion" ablation). Indices in ``drop_loc`` count blocks from 0 (the paper's 4th, 7th and 10th layers).
    """

    img_size: int = 224
    patch_size: int = 16
    dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    keep_rate: float = 0.7
    drop_loc: tuple[int, ...] = (3, 6, 9)
    fuse_token: bool = True
    drop_path_rate: float = 0.0
    drop_rate: float = 0.0


def kept_tokens(num_tokens: int, keep_rate: float) -> int:
    """Attentive tokens a reorganising block keeps of ``num_tokens`` image tokens: ``⌈keep_rate · num_tokens⌉``."""
    return math.ceil(keep_rate * num_tokens)


class EViTBlock(TransformerBlock):
    """DeiT block with EViT's token reorganisation between attention and MLP, on (N, 1 + L, C) tokens (class first).

    After ``x = x + attn(norm1(x))`` the class token's attention to the L image tokens, averaged over heads, ranks
    them; the top ``k = ⌈keep_rate · L⌉`` are kept in that order, and (``fuse_token``) the others are summed with
    their class-attention weights into one token appended last: ``x_fused = Σ_{j ∉ top-k} a_j x_j``. The MLP then
    runs on (N, 1 + k (+1), C). ``keep_rate`` 1 makes it a plain block.

    ``forward_reorganize(x)`` returns ``(x, kept, dropped, left)``: ``kept`` (N, k) and ``dropped`` (N, L − k)
    index the image tokens of the input, ``left`` (N, L − k, C) holds the tokens not kept as they were when they
    left (after attention); all three are ``None`` when nothing was reorganised.
    """

    def __init__(self, dim: int, num_heads: int, *, keep_rate: float, fuse_token: bool, **kwargs) -> None:
        super().__init__(dim, num_heads, **kwargs)
        check_number(keep_rate, "keep_rate", "evit", low=0.0, high=1.0)
        self.keep_rate, self.fuse_token = keep_rate, fuse_token

    def forward_reorganize(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        n, length, c = x.shape
        keep = kept_tokens(length - 1, self.keep_rate)
        if keep >= length - 1:
            return super().forward(x), None, None, None
        y, weights = self.attn(self.norm1(x), need_weights=True)  # weights (N, heads, 1 + L, 1 + L)
        x = x + self.drop_path(self.ls1(y))
        cls_attn = weights[:, :, 0, 1:].mean(dim=1)  # (N, L): class-token attention, mean over heads
        order = cls_attn.topk(length - 1, dim=1).indices  # (N, L), most attended first
        kept, dropped = order[:, :keep], order[:, keep:]  # (N, k), (N, L − k)
        image = x[:, 1:]  # (N, L, C)
        parts = [x[:, :1], image.gather(1, kept.unsqueeze(-1).expand(-1, -1, c))]  # class token, (N, k, C)
        others = image.gather(1, dropped.unsqueeze(-1).expand(-1, -1, c))  # (N, L − k, C)
        if self.fuse_token:
            parts.append((others * cls_attn.gather(1, dropped).unsqueeze(-1)).sum(1, keepdim=True))  # (N, 1, C)
        x = torch.cat(parts, dim=1)  # (N, 1 + k (+1), C)
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x, kept, dropped, others

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_reorganize(x)[0]


class _PatchEmbed(nn.Module):
    """Patchify conv (p×p, stride p): (N, 3, H, W) → (N, C, H/p, W/p)."""

    def __init__(self, in_chans: int, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class _EViTStage(nn.Module):
    """Class token + position embedding, then the blocks; returns the tokens and a map of the image tokens.

    The map (N, C, h, w) holds each patch's token at the last block it took part in (kept tokens: the output of
    the last block; tokens fused away: their value when they were fused), as EViT's kept-token visualisations.
    """

    def __init__(self, cfg: EViTConfig, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, cfg.dim))
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        rates = drop_path_rates(cfg.drop_path_rate, cfg.depth)
        self.blocks = nn.ModuleList(
            EViTBlock(
                cfg.dim,
                cfg.num_heads,
                mlp_ratio=cfg.mlp_ratio,
                drop_path=rates[i],
                keep_rate=cfg.keep_rate if i in cfg.drop_loc else 1.0,
                fuse_token=cfg.fuse_token,
            )
            for i in range(cfg.depth)
        )

    def _pos_embed(self, h: int, w: int) -> Tensor:
        if (h, w) == (self.grid, self.grid):
            return self.pos_embed
        grid = self.pos_embed[:, 1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)  # (1, C, g, g)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)  # (1, C, h, w)
        return torch.cat([self.pos_embed[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)  # (1, 1 + h·w, C)

    def forward_tokens(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        tokens = torch.cat([self.cls_token.expand(n, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)  # (N, 1+hw, C)
        tokens = self.pos_drop(tokens + self._pos_embed(h, w))
        canvas = tokens.new_zeros(n, h * w + 1, c)  # image tokens by grid position; slot h·w takes fused tokens
        position = torch.arange(h * w, device=x.device).expand(n, -1)  # (N, L): grid position of each image token
        for block in self.blocks:
            tokens, kept, dropped, left = block.forward_reorganize(tokens)
            if kept is None:
                continue
            gone = position.gather(1, dropped)  # (N, L − k) grid positions of the tokens fused or dropped
            canvas = canvas.scatter(1, gone.unsqueeze(-1).expand(-1, -1, c), left)
            position = position.gather(1, kept)  # (N, k)
            if block.fuse_token:
                position = torch.cat([position, position.new_full((n, 1), h * w)], dim=1)  # fused token: slot h·w
        image = tokens[:, 1:]  # (N, L', C)
        canvas = canvas.scatter(1, position.unsqueeze(-1).expand(-1, -1, c), image)
        grid_map = canvas[:, : h * w].transpose(1, 2).reshape(n, c, h, w)  # (N, C, h, w)
        return tokens, grid_map


class EViT(ConvNet):
    """EViT (S71) on DeiT, after youweiliang/evit ``evit.py``: patchify → class token + position embedding →
    pre-norm blocks (LayerNorm eps 1e-6, GELU MLP, qkv bias), token reorganisation in the blocks at ``drop_loc`` →
    LayerNorm → Linear on the class token. Input (N, 3, H, W) → logits (N, classes); the token count after each
    reorganising block is ``1 + ⌈keep_rate · L⌉ + 1`` (class, attentive, fused).

    Reorganisation adds no parameters: the count is DeiT's. ``forward_features`` returns the normed tokens
    (N, 1 + L', C) and the head reads the class token. One feature stage (``features_only``): the (N, C, H/p, W/p)
    map of image tokens, each at the last block it took part in. ``takes_op=False``: the only convolution is the
    non-overlapping patch embedding (a stem, not a spatial mixer). Weights: truncated normal (std 0.02) for Linear
    layers, the class token and the position embedding; zero biases; the classifier starts at zero, as timm's ViT.
    """

    def __init__(self, cfg: EViTConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        if op is not None:
            raise ValueError("takes no op= (its only conv is the patch embedding)")
        p = check_int(cfg.patch_size, "patch_size", "evit")
        if cfg.img_size < p or cfg.img_size % p:
            raise ValueError(f"evit: img_size must be a positive multiple of patch_size {p}, got {cfg.img_size}")
        bad = [i for i in cfg.drop_loc if not 0 <= i < cfg.depth]
        if bad:
            raise ValueError(f"evit: drop_loc must index blocks 0..{cfg.depth - 1}, got {cfg.drop_loc}")
        self.stem = _PatchEmbed(in_chans, cfg.dim, p)
        self.stages = nn.ModuleList([_EViTStage(cfg, cfg.img_size // p)])
        self.feature_info = [FeatureInfo("stages.0", cfg.dim, p)]
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = ClassifierHead(cfg.dim, num_classes, drop=cfg.drop_rate)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        stage = self.stages[0]
        nn.init.trunc_normal_(stage.cls_token, std=0.02)
        nn.init.trunc_normal_(stage.pos_embed, std=0.02)
        if isinstance(self.head.fc, nn.Linear):
            nn.init.zeros_(self.head.fc.weight)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        return [self.stages[0].forward_tokens(self.stem(x))[1]]

    def forward_features(self, x: Tensor) -> Tensor:
        return self.norm(self.stages[0].forward_tokens(self.stem(x))[0])  # (N, 1 + L', C)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.head(x[:, 0], pre_logits=pre_logits)  # the class token


_DEIT_S = 22_050_664
register_variant(
    "evit_deit_s",
    EViT,
    EViTConfig(),
    papers=("evit",),
    params=_DEIT_S,
    params_source=(
        "S71 Table 1/2: DeiT-S 22.1M, reorganisation adds no parameters; youweiliang/evit evit.py "
        "deit_small_patch16_shrink_base (keep rate 0.7 at blocks 3, 6, 9) = DeiT-S deit_small_patch16_224: "
        f"{_DEIT_S:,}"
    ),
    summary="EViT-DeiT-S (S71): DeiT-S keeping 70% of the attentive tokens at blocks 4, 7, 10, the rest fused",
    takes_op=False,
    test_cfg={"img_size": 32, "patch_size": 8, "dim": 96, "depth": 4, "drop_loc": (1, 2)},
)
