"""Visual Transformers (S11, Wu et al., "Visual Transformers: Token-based Image Representation and Processing for
Computer Vision"): VT-ResNet-18/34/50/101.

A VT module turns a feature map ``X`` (``HW × C``) into L visual tokens (``L × C_T``), relates them with a
Transformer and projects them back into the map. Equations followed (S11 §3):

- filter-based tokenizer (Eq. 1), ``T = softmax_HW(X W_A)ᵀ X`` with ``W_A ∈ C×L`` (first module);
- recurrent tokenizer (Eq. 2), ``W_R = T_in W_{T→R}``, ``T = softmax_HW(X W_Rᵀ)ᵀ X`` (later modules);
- Transformer (Eqs. 3–4), ``T' = T + softmax_L((T K)(T Q)ᵀ) T``, ``T_out = T' + ReLU(T' F1) F2``: no value
  projection, ``F1, F2 ∈ C_T×C_T``;
- projector (Eq. 5), ``X_out = X + softmax_L((X W_Q)(T W_K)ᵀ) T`` with ``W_Q ∈ C×C``, ``W_K ∈ C_T×C``.

VT-ResNet (§4) keeps a ResNet's stem and first three stages and replaces the last stage's 2 / 3 / 3 / 3 blocks by
as many VT modules at stride 16 with the stage-4 width C = 256 / 256 / 1024 / 1024 (no width projection), L = 16;
the last module's tokens are average-pooled into a fully-connected classifier. The tokens are not projected back
after the last module (its map would feed nothing), so the classifier uses every parameter.

Settings the main text leaves open: tokens of C_T = 1024 channels (the width the main text gives VT-FPN's tokens
and the paper's earlier arXiv version VT-ResNet-101's); from that version's appendix pseudo-code, keys and
queries of the Transformer of C_T/2 channels and logits scaled by ``1/√C`` in the tokenizers and projector (and
by ``1/√d_k`` in the Transformer).
Where ``C_T ≠ C`` the pooled tokens are mapped to C_T channels (a ``C×C_T`` matrix after the pooling) and the
projector maps the tokens it adds back to C channels (``C_T×C``); the paper's equations have ``C_T = C``.
Single-head attention and dense matrices, as the equations are written (the earlier pseudo-code's 16 heads and
grouped convs are not used).

Parameter counts (``vt_stage_params`` gives the closed form): 11.48M, 21.13M, 25.31M and 44.31M against the
paper's Table 8 (advanced recipe) 11.7M, 19.2M, 21.4M, 41.5M (−1.9 %, +10.0 %, +18.3 %, +6.8 %) and Table 2
(default recipe) VT-R18 11.6M, VT-R34 21.8M (−1.0 %, −3.1 %): none is reproduced within 0.5 %, and no single
configuration can reproduce them. The published counts contradict each other: VT-R50 and VT-R101 have the same VT
stage, so their difference must be that of ResNet-50 and ResNet-101 (44,549,160 − 25,557,032 = 18.99M), but
41.5M − 21.4M = 20.1M; the two VT-R34 counts (21.8M, 19.2M; FLOPs 3.299G, 3.236G) and VT-R18 counts (11.6M,
11.7M) describe different models, whose Appendix A widths are not available; Table 1's stage-5 ratios (VT-R34's
stage smaller than VT-R18's with one module more) fit neither. The variants register these closed-form counts.
Multiply-accumulates at 224² (``meta_macs``): 1.544G, 3.246G, 3.941G, 7.654G against Table 8's 1.569G, 3.236G,
3.412G, 7.129G; the R50/R101 excess is about that of the two dense ``C×C`` projector queries at C = 1024
(2 · 196 · 1024² = 0.41G), which the earlier pseudo-code groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import modules_inside_ops, register_variant
from convzoo.models.resnet import ResNet, ResNetConfig

__all__ = [
    "VTResNetConfig",
    "VTResNet",
    "FilterTokenizer",
    "RecurrentTokenizer",
    "TokenTransformer",
    "Projector",
    "VTModule",
    "vt_stage_params",
]


@dataclass(frozen=True)
class VTResNetConfig:
    """One VT-ResNet (S11 §4): the ResNet's first three stages, then ``modules`` VT modules at stride 16.

    ``layers`` / ``block``: the ResNet it starts from (its first three stages are built; VT modules replace the
    fourth). The VT modules run at the width C of the stage-3 map (256 for basic blocks, 1024 for bottlenecks).
    ``tokens``: L visual tokens (16); ``token_channels``: their width C_T; ``key_channels``: the width d_k of the
    Transformer's keys and queries (``K, Q ∈ C_T×d_k``).
    """

    layers: tuple[int, ...] = (2, 2, 2, 2)
    block: str = "basic"
    modules: int = 2
    tokens: int = 16
    token_channels: int = 1024
    key_channels: int = 512


class _Tokenizer(nn.Module):
    """What both tokenizers share: tokens as attention-weighted means of the pixels, ``T = Aᵀ X`` ``(N, L, C)``,
    mapped to C_T channels by a ``C×C_T`` matrix when ``C_T ≠ C``; subclasses give the weights ``A``."""

    def __init__(self, channels: int, token_channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.to_tokens = (
            nn.Linear(channels, token_channels, bias=False) if token_channels != channels else nn.Identity()
        )

    def attention(self, x: Tensor, tokens: Tensor | None = None) -> Tensor:
        """Pooling weights ``(N, L, H·W)``, summing to one over the positions."""
        raise NotImplementedError

    def forward(self, x: Tensor, tokens: Tensor | None = None) -> Tensor:
        weights = self.attention(x, tokens)  # (N, L, H·W)
        pooled = weights @ x.flatten(2).transpose(1, 2)  # (N, L, C)
        return self.to_tokens(pooled)  # (N, L, C_T)


class FilterTokenizer(_Tokenizer):
    """Filter-based tokenizer (S11 Eq. 1): map ``(N, C, H, W)`` → tokens ``(N, L, C_T)``.

    ``A = softmax_HW(X W_A / √C)`` with ``W_A`` a 1×1 conv ``C → L``: one spatial attention map per token; the
    tokens are the attention-weighted means of the pixels, ``T = Aᵀ X``, mapped to C_T channels by a ``C×C_T``
    matrix when ``C_T ≠ C``.
    """

    def __init__(self, channels: int, token_channels: int, tokens: int) -> None:
        super().__init__(channels, token_channels)
        self.coef = nn.Conv2d(channels, tokens, 1, bias=False)

    def attention(self, x: Tensor, tokens: Tensor | None = None) -> Tensor:
        logits = self.coef(x).flatten(2) / math.sqrt(self.channels)  # (N, L, H·W)
        return torch.softmax(logits, dim=-1)


class RecurrentTokenizer(_Tokenizer):
    """Recurrent tokenizer (S11 Eq. 2): ``(N, C, H, W)`` and the previous tokens ``(N, L, C_T)`` → ``(N, L, C_T)``.

    The pooling weights come from the previous module's tokens: ``W_R = T_in W_{T→R}`` (``W_{T→R} ∈ C_T×C``),
    ``A = softmax_HW(X W_Rᵀ / √C)``; the pooling and the map to C_T are those of :class:`FilterTokenizer`.
    """

    def __init__(self, channels: int, token_channels: int, tokens: int) -> None:
        super().__init__(channels, token_channels)
        self.query = nn.Linear(token_channels, channels, bias=False)

    def attention(self, x: Tensor, tokens: Tensor | None = None) -> Tensor:
        if tokens is None:
            raise ValueError("visual_transformer: a recurrent tokenizer needs the previous module's tokens")
        w_r = self.query(tokens)  # (N, L, C): one filter per token
        logits = w_r @ x.flatten(2) / math.sqrt(self.channels)  # (N, L, H·W)
        return torch.softmax(logits, dim=-1)


class TokenTransformer(nn.Module):
    """The token Transformer (S11 Eqs. 3–4): tokens ``(N, L, C_T)`` → ``(N, L, C_T)``.

    ``T' = T + softmax_L((T K)(T Q)ᵀ / √d_k) T`` (no value projection), ``T_out = T' + ReLU(T' F1) F2`` with
    ``K, Q ∈ C_T×d_k`` and ``F1, F2 ∈ C_T×C_T``.
    """

    def __init__(self, token_channels: int, key_channels: int) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.key = nn.Linear(token_channels, key_channels, bias=False)
        self.query = nn.Linear(token_channels, key_channels, bias=False)
        self.f1 = nn.Linear(token_channels, token_channels, bias=False)
        self.f2 = nn.Linear(token_channels, token_channels, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        logits = self.key(tokens) @ self.query(tokens).transpose(1, 2) / math.sqrt(self.key_channels)  # (N, L, L)
        tokens = tokens + torch.softmax(logits, dim=-1) @ tokens
        return tokens + self.f2(torch.relu(self.f1(tokens)))


class Projector(nn.Module):
    """Projector (S11 Eq. 5): map ``(N, C, H, W)`` and tokens ``(N, L, C_T)`` → ``(N, C, H, W)``.

    ``X_out = X + softmax_L((X W_Q)(T W_K)ᵀ / √C) T`` with ``W_Q ∈ C×C`` (a 1×1 conv) and ``W_K ∈ C_T×C``; when
    ``C_T ≠ C`` the added tokens are mapped to C channels by a ``C_T×C`` matrix.
    """

    def __init__(self, channels: int, token_channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.query = nn.Conv2d(channels, channels, 1, bias=False)
        self.key = nn.Linear(token_channels, channels, bias=False)
        self.to_map = nn.Linear(token_channels, channels, bias=False) if token_channels != channels else nn.Identity()

    def forward(self, x: Tensor, tokens: Tensor) -> Tensor:
        n, c, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)  # (N, H·W, C)
        logits = query @ self.key(tokens).transpose(1, 2) / math.sqrt(self.channels)  # (N, H·W, L)
        update = torch.softmax(logits, dim=-1) @ self.to_map(tokens)  # (N, H·W, C)
        return x + update.transpose(1, 2).reshape(n, c, h, w)  # (N, C, H, W)


class VTModule(nn.Module):
    """One VT module: ``(N, C, H, W)`` (and the previous tokens) → ``((N, C, H, W), tokens (N, L, C_T))``.

    Tokenizer → Transformer → projector; without ``project`` the map is returned unchanged (the last module of
    a classifier, whose tokens go to the head).
    """

    def __init__(self, channels: int, cfg: VTResNetConfig, recurrent: bool, project: bool = True) -> None:
        super().__init__()
        ct = cfg.token_channels
        tokenizer = RecurrentTokenizer if recurrent else FilterTokenizer
        self.tokenizer: _Tokenizer = tokenizer(channels, ct, cfg.tokens)
        self.transformer = TokenTransformer(ct, cfg.key_channels)
        self.projector = Projector(channels, ct) if project else None

    def forward(self, x: Tensor, tokens: Tensor | None = None) -> tuple[Tensor, Tensor]:
        tokens = self.transformer(self.tokenizer(x, tokens))  # (N, L, C_T)
        return (x if self.projector is None else self.projector(x, tokens)), tokens


class VTStage(nn.Module):
    """The replaced last stage: ``modules`` VT modules (filter-based tokenizer first, recurrent ones after).

    ``forward`` returns the map after the last projector ``(N, C, H, W)``; ``forward_tokens`` the last module's
    tokens ``(N, L, C_T)``.
    """

    def __init__(self, channels: int, cfg: VTResNetConfig) -> None:
        super().__init__()
        n = cfg.modules
        self.vt = nn.ModuleList(VTModule(channels, cfg, recurrent=i > 0, project=i < n - 1) for i in range(n))

    def forward(self, x: Tensor) -> Tensor:
        tokens = None
        for module in self.vt[:-1]:
            x, tokens = module(x, tokens)
        return x

    def forward_tokens(self, x: Tensor) -> Tensor:
        tokens = None
        for module in self.vt:
            x, tokens = module(x, tokens)
        return tokens


class VTResNet(ConvNet):
    """VT-ResNet (S11, "Visual Transformers"): ResNet stem and stages 1–3 → VT modules (stride 16) → tokens → linear.

    Input ``(N, 3, H, W)``. ``forward_stages`` returns the three ResNet maps (strides 4, 8, 16) and the VT stage's
    map ``(N, C, H/16, W/16)`` (what ``features_only`` gives); ``forward_features`` the last module's tokens
    ``(N, C_T, L)``, which the head averages over the L tokens and classifies. ``op=`` replaces the ResNet stages'
    3×3 convs (the VT stage has no spatial conv).
    """

    def __init__(self, cfg: VTResNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        check_choice(cfg.block, ("basic", "bottleneck"), "block", "visual_transformer")
        if len(cfg.layers) != 4:
            raise ValueError(f"visual_transformer: layers must name four ResNet stages, got {cfg.layers}")
        for what in ("modules", "tokens", "token_channels", "key_channels"):
            check_int(getattr(cfg, what), what, "visual_transformer", low=1)
        base = ResNetConfig(layers=cfg.layers[:3], block=cfg.block, widths=(64, 128, 256))
        resnet = ResNet(base, in_chans=in_chans, op=op)
        self.stem = resnet.stem
        channels = resnet.feature_info[-1].channels
        self.stages = nn.ModuleList([*resnet.stages, VTStage(channels, cfg)])
        self.feature_info = [*resnet.feature_info, FeatureInfo("stages.3", channels, 16)]
        self.head = ClassifierHead(cfg.token_channels, num_classes)
        self._init_weights()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages[:-1]:
            x = stage(x)
        return self.stages[-1].forward_tokens(x).transpose(1, 2)  # (N, C_T, L)

    def _init_weights(self) -> None:
        skip = modules_inside_ops(self)
        for m in self.stages[-1].modules():
            if isinstance(m, nn.Linear) and id(m) not in skip:
                nn.init.trunc_normal_(m.weight, std=0.02)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


def vt_stage_params(cfg: VTResNetConfig, channels: int, num_classes: int = 1000) -> int:
    """Closed-form parameter count of the VT stage (at map width ``channels`` = C) and its classifier.

    Per module: tokenizer ``C·L`` (filter-based) or ``C_T·C`` (recurrent), plus ``C·C_T`` when ``C_T ≠ C``;
    Transformer ``2·C_T·d_k + 2·C_T²``; projector (all modules but the last) ``C² + C_T·C``, plus ``C_T·C`` when
    ``C_T ≠ C``. Classifier ``C_T·classes + classes``.
    """
    c, ct, dk, n = channels, cfg.token_channels, cfg.key_channels, cfg.modules
    widen = ct != c
    total = 0
    for i in range(n):
        total += (c * cfg.tokens if i == 0 else ct * c) + (c * ct if widen else 0)
        total += 2 * ct * dk + 2 * ct * ct
        if i < n - 1:
            total += c * c + ct * c + (ct * c if widen else 0)
    return total + ct * num_classes + num_classes


def resnet_last_stage_and_fc(block: str, depth: int) -> int:
    """Parameters of torchvision's ResNet stage 5 (width 512, after 256 / 1024 channels) and its 1000-way fc."""
    if block == "basic":
        first = 9 * 256 * 512 + 9 * 512 * 512 + 256 * 512 + 3 * 2 * 512
        rest = 2 * 9 * 512 * 512 + 2 * 2 * 512
        return first + (depth - 1) * rest + 512 * 1000 + 1000
    first = 1024 * 512 + 9 * 512 * 512 + 512 * 2048 + 1024 * 2048 + 2 * (512 + 512 + 2048 + 2048)
    rest = 2048 * 512 + 9 * 512 * 512 + 512 * 2048 + 2 * (512 + 512 + 2048)
    return first + (depth - 1) * rest + 2048 * 1000 + 1000


TORCHVISION_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160}
PUBLISHED = {  # S11 Table 8 (advanced recipe) and, for VT-R18/R34, Table 2 (default recipe), in millions
    "resnet18": (11.7, 11.6),
    "resnet34": (19.2, 21.8),
    "resnet50": (21.4, None),
    "resnet101": (41.5, None),
}
VARIANTS = {
    "resnet18": ((2, 2, 2, 2), "basic", 256),
    "resnet34": ((3, 4, 6, 3), "basic", 256),
    "resnet50": ((3, 4, 6, 3), "bottleneck", 1024),
    "resnet101": ((3, 4, 23, 3), "bottleneck", 1024),
}


def vt_resnet_params(base: str) -> int:
    """Closed-form count of the registered VT-ResNet built on ``base``: torchvision's count less its stage 5 and fc,
    plus the VT stage and classifier."""
    layers, block, width = VARIANTS[base]
    cfg = VTResNetConfig(layers=layers, block=block, modules=layers[-1])
    return TORCHVISION_PARAMS[base] - resnet_last_stage_and_fc(block, layers[-1]) + vt_stage_params(cfg, width)


for _base, (_layers, _block, _width) in VARIANTS.items():
    _cfg = VTResNetConfig(layers=_layers, block=_block, modules=_layers[-1])
    _count = vt_resnet_params(_base)
    _t8, _t2 = PUBLISHED[_base]
    _also = f", Table 2 {_t2}M" if _t2 else ""
    register_variant(
        f"vt_{_base}",
        VTResNet,
        _cfg,
        papers=("visual-transformer",),
        params=None,
        params_source=(
            f"NOT matched: S11 Table 8 reports {_t8}M for VT-R{_base[6:]}{_also}; this build counts {_count:,} "
            f"(torchvision {_base}, {TORCHVISION_PARAMS[_base]:,}, less its stage 5 and fc, plus the VT stage and "
            "classifier, vt_stage_params), and no configuration reproduces the published counts (see the module "
            "docstring)"
        ),
        summary=f"VT-ResNet-{_base[6:]} (S11): ResNet stage 5 replaced by {_cfg.modules} VT modules",
        test_cfg={"layers": (1, 1, 1, 2), "modules": 2, "token_channels": 64, "key_channels": 32},
    )
