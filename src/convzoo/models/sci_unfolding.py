"""CTM-SCI (S104, video-sci): deep unfolding for video snapshot compressive imaging with a 3D Convolution-Transformer
Mixture prior and a pixel-wise variance (uncertainty) head.

``CTMUnfolding(config)(y, masks)``: ``(N, H, W)`` snapshots ``y = Σ_t M_t ⊙ x_t`` and their ``(N, T, H, W)`` (or
``(T, H, W)``) binary masks → ``(recon, log_var)``: ``(N, S, T, H, W)`` the reconstruction after each of the
``S = 1 + refine`` stages (the last is the answer) and ``(N, T, H, W)`` the log-variance ``s = log σ²`` of the
first stage's estimate. ``H`` and ``W`` must be even.

Every stage alternates the two halves of an unfolded GAP (generalised alternating projection) iteration:

* data fidelity, :func:`data_step`: ``x ← x + Φᵀ((y − Φx) ⊘ R)`` with ``R = ΦΦᵀ = Σ_t M_t²``, the Euclidean
  projection of ``x`` onto ``{z : Φz = y}`` (exactly, wherever some mask is on);
* the prior: a 3D conv encoder (5³ → 3³ → 1³ convs, the last 3³ one halving ``H`` and ``W``), a run of
  :class:`MixBlock3D` (3D window attention, then 3D grid attention, summed and added to the input, then a
  reversible two-half 3D conv coupling), and a decoder (a transposed conv doubling ``H`` and ``W``, 3³ → 1³ → 3³
  convs to one channel).

Stage 0 sees ``[x, Φᵀ(y ⊘ R)]`` (two channels) and has a second decoder, the variance head, whose output is read as
the log-variance ``s`` of its reconstruction. Each later stage ``k`` sees ``[x, Φᵀ(y ⊘ R), u_k]`` (three channels)
with ``u_k = F_k(s) + s`` a small residual 3D conv net (1 → 8 → 16 → 8 → 1 channels) of its own. The variance
is trained by the heteroscedastic Gaussian likelihood :func:`variance_loss`: ``mean(exp(−s) (x̂ − x)² + s)``.

The registered ``ctm_sci`` is the configuration of the authors' released ``model.py`` (``Mix_For_SCI``: width 256,
two stages of 4 blocks per prior, 4 heads, window/grid ``(2, 7, 7)``, three refinement stages; 256 × 256 × 8
videos): 81,934,904 parameters, counted from that released model (the paper's text, as reachable here, states
none).
``ctm_sci_tiny`` (width 32, one stage of one block, window ``(2, 4, 4)``) is a documented small configuration
that trains on CPU on 32 × 32 × 8 moving digits.

Departures from the released code: the second stage projects the first stage's reconstruction (the released
forward projects the prior's feature map there, which cannot broadcast against the masks); the attention uses
``scaled_dot_product_attention`` with the relative-position bias as an additive mask (the same function);
pixels that no mask sees are left unchanged by the projection instead of dividing by zero. The loss (the variance
likelihood on stage 0 plus the MSE of every later stage) is written here: the released code has the model only,
and the paper's loss equation was not reachable while this was written, so the variance term takes the standard
heteroscedastic form (Kendall & Gal 2017) with the head's output read as ``log σ²``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models.registration import register_variant

__all__ = ["CTMConfig", "CTMUnfolding", "MixBlock3D", "data_step", "variance_loss", "unfolding_loss"]


@dataclass(frozen=True)
class CTMConfig:
    frames: int = 8
    size: int = 256  # the training side (input_size metadata; any even side runs)
    channels: int = 256
    depths: tuple[int, ...] = (4, 4)  # MixBlock3D per prior stage (each prior has len(depths) stages)
    heads: int = 4
    window: tuple[int, int, int] = (2, 7, 7)  # (frames, height, width) of a window and of a grid
    refine: int = 3  # stages after the first (variance) stage


def _masks_like(masks: Tensor, y: Tensor) -> Tensor:
    """``(T, H, W)`` or ``(N, T, H, W)`` masks as ``(N, T, H, W)`` for ``(N, H, W)`` snapshots ``y``."""
    if masks.dim() == 3:
        masks = masks.unsqueeze(0).expand(y.shape[0], -1, -1, -1)
    if masks.dim() != 4 or masks.shape[0] != y.shape[0] or masks.shape[-2:] != y.shape[-2:]:
        raise ValueError(
            f"CTM-SCI: masks {tuple(masks.shape)} do not fit snapshots {tuple(y.shape)} "
            "(want (N, T, H, W) or (T, H, W))"
        )
    return masks


def data_step(x: Tensor, y: Tensor, masks: Tensor) -> Tensor:
    """GAP's projection ``x + Φᵀ((y − Φx) ⊘ R)``, ``R = Σ_t M_t²``: ``(N, T, H, W), (N, H, W), masks → (N, T, H, W)``.

    It is the nearest point to ``x`` with ``Φ(x̂) = y`` at every pixel some mask sees; unseen pixels keep ``x``.
    """
    weight = masks.pow(2).sum(-3)  # (N, H, W) the diagonal of ΦΦᵀ
    residual = y - (x * masks).sum(-3)  # (N, H, W)
    scaled = torch.where(weight > 0, residual / weight.clamp_min(torch.finfo(weight.dtype).tiny), 0.0)
    return x + scaled.unsqueeze(-3) * masks


def variance_loss(estimate: Tensor, log_var: Tensor, target: Tensor) -> Tensor:
    """Heteroscedastic Gaussian likelihood of ``target`` under ``N(estimate, exp(log_var))`` (constants dropped):
    ``mean(exp(−s) (x̂ − x)² + s)``."""
    return torch.mean(torch.exp(-log_var) * (estimate - target) ** 2 + log_var)


def unfolding_loss(recon: Tensor, log_var: Tensor, target: Tensor) -> Tensor:
    """The training loss: :func:`variance_loss` of stage 0 plus the MSE of every later stage's ``(N, T, H, W)``
    reconstruction (``recon`` is ``(N, S, T, H, W)``)."""
    loss = variance_loss(recon[:, 0], log_var, target)
    for k in range(1, recon.shape[1]):
        loss = loss + F.mse_loss(recon[:, k], target)
    return loss


def _relative_index(window: tuple[int, int, int]) -> Tensor:
    """``(n, n)`` index into a ``(2a−1)(2b−1)(2c−1)`` table of relative offsets, ``n = a·b·c`` tokens."""
    a, b, c = window
    coords = torch.stack(torch.meshgrid(torch.arange(a), torch.arange(b), torch.arange(c), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # (n, n, 3)
    rel = rel + torch.tensor([a - 1, b - 1, c - 1])
    return rel[..., 0] * (2 * b - 1) * (2 * c - 1) + rel[..., 1] * (2 * c - 1) + rel[..., 2]


class Attention3D(nn.Module):
    """Multi-head self-attention over ``(B, n, C)`` token groups with a learned 3D relative-position bias."""

    def __init__(self, dim: int, window: tuple[int, int, int], heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"CTM-SCI: width {dim} is not divisible by heads={heads}")
        self.heads = heads
        a, b, c = window
        self.bias = nn.Parameter(torch.zeros((2 * a - 1) * (2 * b - 1) * (2 * c - 1), heads))
        nn.init.trunc_normal_(self.bias, std=0.02)
        self.register_buffer("index", _relative_index(window), persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)  # (B, h, n, d)
        bias = self.bias[self.index.reshape(-1)].view(n, n, -1).permute(2, 0, 1)  # (h, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0).to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


def _windows(x: Tensor, w: tuple[int, int, int]) -> Tensor:
    """``(B, D, H, W, C)`` → ``(B·groups, w₀w₁w₂, C)``: contiguous ``w`` blocks."""
    b, d, h, ww, c = x.shape
    x = x.view(b, d // w[0], w[0], h // w[1], w[1], ww // w[2], w[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, w[0] * w[1] * w[2], c)


def _unwindows(x: Tensor, w: tuple[int, int, int], shape: tuple[int, ...]) -> Tensor:
    b, d, h, ww, c = shape
    x = x.view(b, d // w[0], h // w[1], ww // w[2], w[0], w[1], w[2], c)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, ww, c)


def _grids(x: Tensor, g: tuple[int, int, int]) -> Tensor:
    """``(B, D, H, W, C)`` → ``(B·groups, g₀g₁g₂, C)``: tokens ``(D/g₀, H/g₁, W/g₂)`` apart (a dilated grid)."""
    b, d, h, w, c = x.shape
    x = x.view(b, g[0], d // g[0], g[1], h // g[1], g[2], w // g[2], c)
    return x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(-1, g[0] * g[1] * g[2], c)


def _ungrids(x: Tensor, g: tuple[int, int, int], shape: tuple[int, ...]) -> Tensor:
    b, d, h, w, c = shape
    x = x.view(b, d // g[0], h // g[1], w // g[2], g[0], g[1], g[2], c)
    return x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, d, h, w, c)


def _conv_pair(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(channels, channels, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv3d(channels, channels, 3, padding=1),
    )


class MixBlock3D(nn.Module):
    """Convolution-Transformer mixture block: ``(N, C, D, H, W) → (N, C, D, H, W)``.

    ``a = WindowAttn(LN(x))``; ``o = a + GridAttn(LN(a))``; ``z = x + o``; then the reversible coupling of the
    two channel halves ``z₁, z₂``: ``y₁ = z₁ + f(z₂)``, ``y₂ = z₂ + g(y₁)`` (``f``, ``g``: conv3³–LeakyReLU–conv3³).
    """

    def __init__(self, channels: int, heads: int, window: tuple[int, int, int]) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"CTM-SCI: width must be even for the reversible coupling, got {channels}")
        self.window = window
        self.norm1 = nn.LayerNorm(channels)
        self.norm2 = nn.LayerNorm(channels)
        self.local = Attention3D(channels, window, heads)
        self.grid = Attention3D(channels, window, heads)
        self.f = _conv_pair(channels // 2)
        self.g = _conv_pair(channels // 2)

    def forward(self, x: Tensor) -> Tensor:
        _, _, d, h, w = x.shape
        t = self.norm1(x.permute(0, 2, 3, 4, 1))  # (N, D, H, W, C)
        pads = [(s - n % s) % s for n, s in zip((d, h, w), self.window, strict=True)]
        t = F.pad(t, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        shape = tuple(t.shape)
        local = _unwindows(self.local(_windows(t, self.window)), self.window, shape)
        grid = _ungrids(self.grid(_grids(self.norm2(local), self.window)), self.window, shape)
        out = (local + grid)[:, :d, :h, :w].permute(0, 4, 1, 2, 3)  # (N, C, D, H, W)
        z1, z2 = (x + out).chunk(2, dim=1)
        y1 = z1 + self.f(z2)
        return torch.cat([y1, z2 + self.g(y1)], dim=1)


def _encoder(in_channels: int, width: int) -> nn.Sequential:
    quarter, half = width // 4, width // 2
    return nn.Sequential(
        nn.Conv3d(in_channels, quarter, 5, padding=2),
        nn.LeakyReLU(),
        nn.Conv3d(quarter, half, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv3d(half, half, 1),
        nn.LeakyReLU(),
        nn.Conv3d(half, width, 3, stride=(1, 2, 2), padding=1),
        nn.LeakyReLU(),
    )


def _decoder(width: int) -> nn.Sequential:
    quarter, half = width // 4, width // 2
    return nn.Sequential(
        nn.ConvTranspose3d(width, half, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), output_padding=(0, 1, 1)),
        nn.LeakyReLU(),
        nn.Conv3d(half, half, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv3d(half, quarter, 1),
        nn.LeakyReLU(),
        nn.Conv3d(quarter, 1, 3, padding=1),
    )


def _variance_refiner() -> nn.Sequential:
    layers: list[nn.Module] = []
    widths = (1, 8, 16, 8, 1)
    for i in range(4):
        layers.append(nn.Conv3d(widths[i], widths[i + 1], 3, padding=1))
        if i < 3:
            layers.append(nn.LeakyReLU())
    return nn.Sequential(*layers)


class Prior(nn.Module):
    """One stage's prior: encoder → ``Σ depths`` :class:`MixBlock3D` → decoder(s): ``(N, c_in, T, H, W)`` →
    ``(N, T, H, W)`` (and the variance head's ``(N, T, H, W)`` when ``variance``)."""

    def __init__(self, config: CTMConfig, in_channels: int, variance: bool) -> None:
        super().__init__()
        self.encoder = _encoder(in_channels, config.channels)
        self.blocks = nn.Sequential(
            *[MixBlock3D(config.channels, config.heads, config.window) for depth in config.depths for _ in range(depth)]
        )
        self.decoder = _decoder(config.channels)
        self.variance = _decoder(config.channels) if variance else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        features = self.blocks(self.encoder(x))  # (N, C, T, H/2, W/2)
        recon = self.decoder(features).squeeze(1)  # (N, T, H, W)
        return recon, None if self.variance is None else self.variance(features).squeeze(1)


class CTMUnfolding(nn.Module):
    """CTM-SCI (S104) deep-unfolding network: ``(N, H, W)`` snapshot, masks → ``(N, S, T, H, W)``
    reconstructions and ``(N, T, H, W)`` log-variance; see the module docstring."""

    def __init__(self, config: CTMConfig) -> None:
        super().__init__()
        for value, what in ((config.frames, "frames"), (config.channels, "channels"), (config.heads, "heads")):
            check_int(value, what, "CTM-SCI")
        check_int(config.refine, "refine", "CTM-SCI", low=0)
        if config.channels % 4:
            raise ValueError(f"CTM-SCI: channels must be a multiple of 4, got {config.channels}")
        if len(config.window) != 3:
            raise ValueError(f"CTM-SCI: window must be (frames, height, width), got {config.window}")
        self.config = config
        self.first = Prior(config, 2, variance=True)
        self.stages = nn.ModuleList(Prior(config, 3, variance=False) for _ in range(config.refine))
        self.refiners = nn.ModuleList(_variance_refiner() for _ in range(config.refine))

    def forward(self, y: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        if y.dim() != 3 or y.shape[-1] % 2 or y.shape[-2] % 2:
            raise ValueError(f"CTM-SCI: snapshots must be (N, H, W) with even H and W, got {tuple(y.shape)}")
        masks = _masks_like(masks, y).to(y.dtype)
        if masks.shape[1] != self.config.frames:
            raise ValueError(f"CTM-SCI: built for {self.config.frames} frames, masks have {masks.shape[1]}")
        weight = masks.pow(2).sum(1)  # (N, H, W)
        data = torch.where(weight > 0, y / weight.clamp_min(1e-12), 0.0).unsqueeze(1) * masks  # Φᵀ(y ⊘ R)
        x = data_step(y.unsqueeze(1) * masks, y, masks)  # from Φᵀy
        x, log_var = self.first(torch.stack([x, data], dim=1))  # (N, 2, T, H, W) in
        stages = [x]
        s = log_var.unsqueeze(1)  # (N, 1, T, H, W)
        for prior, refiner in zip(self.stages, self.refiners, strict=True):
            x = data_step(x, y, masks)
            x, _ = prior(torch.stack([x, data, (refiner(s) + s).squeeze(1)], dim=1))  # (N, 3, T, H, W) in
            stages.append(x)
        return torch.stack(stages, dim=1), log_var


def _register(
    name: str, config: CTMConfig, summary: str, params: int | None, source: str, test_cfg: dict | None = None
) -> None:
    register_variant(
        name,
        CTMUnfolding,
        config,
        papers=("video-sci",),
        params=params,
        params_source=source,
        input_size=(config.frames, config.size, config.size),
        summary=summary,
        task="sci",
        takes_op=False,
        num_classes=0,
        test_size=16,
        test_cfg=test_cfg,
    )


_register(
    "ctm_sci",
    CTMConfig(),
    "CTM-SCI (S104): 4-stage unfolding, width 256, 2×4 conv-transformer mixture blocks per prior, variance head",
    81_934_904,
    "the released zsm1211/CTM-SCI model.py, Mix_For_SCI() with its defaults (counted; the paper states none)",
    test_cfg={"channels": 16, "depths": (1,), "window": (2, 4, 4), "refine": 1},
)
_register(
    "ctm_sci_tiny",
    CTMConfig(size=32, channels=32, depths=(1,), heads=4, window=(2, 4, 4), refine=3),
    "CTM-SCI (S104), small CPU configuration: width 32, one mixture block per prior, window (2, 4, 4)",
    None,
    "a small configuration of this repository (no published count)",
)
