"""Re-CatVTON (S97, re-catvton): single-denoiser virtual try-on by spatial concatenation, with the garment half
injected from the clean garment, excluded from the loss, and a classifier-free guidance that acts on the person half.

One denoiser sees the person latent and the garment latent one above the other, ``[x_p | x_g]`` (``(N, C, 2H, W)``
for two ``(N, C, H, W)`` latents concatenated along the height, CatVTON's axis; any spatial ``dim`` may be given;
:func:`concat_halves`, and :func:`split_halves` undoes it), so the garment conditions the person through the
network's own spatial mixing. In CatVTON (its released ``model/pipeline.py``) both halves of the noisy latent are
denoised from noise, the clean garment enters only through the inpainting channels, the loss covers both halves,
and guidance zeroes the garment in those channels alone and extrapolates the whole latent, so the garment still
reaches the "unconditional" branch through the half being denoised. What Re-CatVTON changes, each a function here
over any denoiser ``ε(x, t, labels)`` (a registered ``diffusion`` backbone):

* time-aligned ground-truth garment (:func:`noised_garment`): at timestep ``t`` the garment half is the clean
  garment latent noised to ``t``, ``√ᾱ_t z_g + √(1−ᾱ_t) ε_g``, during training and at every sampling step, never
  the sampler's own (error-accumulating) estimate of it;
* loss on the person half only (:func:`tryon_loss`): ``mean‖ε_p − ε̂_p‖²`` over the person half of the output;
  the garment half of the prediction receives no gradient. With probability ``garment_dropout`` a training
  example's garment is replaced by the null garment (zeros) so the same network learns the unconditional branch;
* guidance on the person half (:func:`recat_guidance`): with ``c = [x_p | q_t(z_g)]`` and the null branch
  ``∅ = [x_p | q_t(0)] = [x_p | √(1−ᾱ_t) ε_g]`` (the same garment noise in both; no garment anywhere in the null
  branch), ``ε̂_p = ε_p(∅) + s · (ε_p(c) − ε_p(∅))``; the garment half of either prediction is discarded, so no guided
  (extrapolated) values ever enter the garment half: the next step re-injects it from ``z_g``
  (:func:`sample_tryon`).

Departures: the paper fine-tunes the Stable Diffusion 1.5 inpainting UNet on VAE latents with the masked person
and its mask as extra input channels; here the denoiser is any registered ``diffusion`` backbone (``re_catvton_dic_s``
wraps DiC-S) on latents or images, generating the person half from noise without an inpainting mask. The paper's
full text was not reachable while this was written (its abstract and its v2 abstract, which names the "guidance
leakage" that the person-half guidance and ground-truth injection remove, were); the guidance above is that reading
of it, stated as an equation so the test can check it by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models.registration import create_model, register_variant

__all__ = [
    "ReCatVTON",
    "ReCatVTONConfig",
    "concat_halves",
    "noised_garment",
    "recat_guidance",
    "sample_tryon",
    "split_halves",
    "tryon_loss",
]

Denoiser = Callable[[Tensor, Tensor, Tensor], Tensor]


class Diffusion(Protocol):
    """What these functions use of a noise schedule (``convzoo.train.diffusion.GaussianDiffusion`` has it)."""

    timesteps: int

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor: ...

    def spaced(self, steps: int) -> list[int]: ...

    def ddim_step(
        self, x: Tensor, eps: Tensor, t: int, t_prev: int, eta: float, noise: Tensor | None, clip: bool = False
    ) -> Tensor: ...


def concat_halves(person: Tensor, garment: Tensor, dim: int = -2) -> Tensor:
    """``[person | garment]`` along ``dim`` (the height by default): two ``(N, C, H, W)`` → ``(N, C, 2H, W)``."""
    if person.shape != garment.shape:
        raise ValueError(f"concat_halves: person {tuple(person.shape)} and garment {tuple(garment.shape)} differ")
    return torch.cat([person, garment], dim=dim)


def split_halves(x: Tensor, dim: int = -2) -> tuple[Tensor, Tensor]:
    """The person and garment halves of ``[person | garment]`` along ``dim``: ``(N, C, 2H, W)`` → two ``(N, C, H,
    W)``."""
    if x.shape[dim] % 2:
        raise ValueError(f"split_halves: dim {dim} of {tuple(x.shape)} is odd, not two equal halves")
    person, garment = x.chunk(2, dim=dim)
    return person, garment


def noised_garment(diffusion: Diffusion, garment0: Tensor | None, t: Tensor, noise: Tensor) -> Tensor:
    """The garment half at timestep ``t``: ``q_t(z_g) = √ᾱ_t z_g + √(1−ᾱ_t) ε_g``; ``None`` is the null garment
    (zeros), which leaves ``√(1−ᾱ_t) ε_g``."""
    clean = torch.zeros_like(noise) if garment0 is None else garment0
    return diffusion.q_sample(clean, t, noise)


def tryon_loss(
    denoiser: Denoiser,
    diffusion: Diffusion,
    person0: Tensor,
    garment0: Tensor,
    labels: Tensor,
    garment_dropout: float = 0.0,
    generator: torch.Generator | None = None,
    dim: int = -2,
) -> Tensor:
    """ε-prediction MSE on the person half only, at a uniformly drawn timestep per example; each garment is
    replaced by the null garment with probability ``garment_dropout`` (draws from ``generator``, else the global
    RNG)."""
    if not 0 <= garment_dropout < 1:
        raise ValueError(f"tryon_loss: garment_dropout must be in [0, 1), got {garment_dropout}")
    n, device = person0.shape[0], person0.device
    t = torch.randint(0, diffusion.timesteps, (n,), generator=generator).to(device)
    noise_p = torch.randn(person0.shape, generator=generator).to(device, person0.dtype)
    noise_g = torch.randn(garment0.shape, generator=generator).to(device, garment0.dtype)
    keep = (torch.rand(n, generator=generator) >= garment_dropout).to(device)
    garment0 = garment0 * keep.view(-1, *([1] * (garment0.dim() - 1))).to(garment0.dtype)  # dropped → zeros
    x = concat_halves(diffusion.q_sample(person0, t, noise_p), noised_garment(diffusion, garment0, t, noise_g), dim)
    eps_person, _ = split_halves(denoiser(x, t, labels), dim)  # the garment half is not scored
    return torch.mean((eps_person.float() - noise_p.float()) ** 2)


def recat_guidance(
    denoiser: Denoiser,
    diffusion: Diffusion,
    person_t: Tensor,
    garment0: Tensor,
    t: Tensor,
    labels: Tensor,
    scale: float,
    garment_noise: Tensor,
    dim: int = -2,
) -> Tensor:
    """The guided person-half noise ``ε_p(∅) + s (ε_p(c) − ε_p(∅))`` with ``c = [x_p | q_t(z_g)]`` and
    ``∅ = [x_p | q_t(0)]``, both garments noised with ``garment_noise``: ``(N, C, H, W)``. ``scale`` 1 evaluates the
    conditional branch alone."""
    if scale < 0:
        raise ValueError(f"recat_guidance: scale must be ≥ 0, got {scale}")
    cond = concat_halves(person_t, noised_garment(diffusion, garment0, t, garment_noise), dim)
    if scale == 1:
        return split_halves(denoiser(cond, t, labels), dim)[0]
    null = concat_halves(person_t, noised_garment(diffusion, None, t, garment_noise), dim)
    out = denoiser(torch.cat([cond, null]), torch.cat([t, t]), torch.cat([labels, labels]))
    eps_cond, eps_null = split_halves(out, dim)[0].chunk(2)  # person halves, (N, C, H, W) each
    return eps_null + scale * (eps_cond - eps_null)


@torch.no_grad()
def sample_tryon(
    denoiser: Denoiser,
    diffusion: Diffusion,
    garment0: Tensor,
    labels: Tensor,
    *,
    steps: int = 50,
    guidance: float = 2.0,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    clip: bool = True,
    dim: int = -2,
) -> Tensor:
    """DDIM sampling of the person half ``(N, C, H, W)`` for the clean garments ``garment0``; the garment half is
    re-injected from ``garment0`` at every step (:func:`noised_garment` with fresh noise), and the guidance is
    :func:`recat_guidance`."""
    device = garment0.device
    x = torch.randn(garment0.shape, generator=generator).to(device, garment0.dtype)
    timesteps = diffusion.spaced(steps)
    for t, t_prev in zip(timesteps, [*timesteps[1:], -1], strict=True):
        ts = torch.full((x.shape[0],), t, device=device)
        garment_noise = torch.randn(garment0.shape, generator=generator).to(device, garment0.dtype)
        eps = recat_guidance(denoiser, diffusion, x, garment0, ts, labels, guidance, garment_noise, dim)
        noise = torch.randn(x.shape, generator=generator).to(device, x.dtype) if t_prev >= 0 and eta > 0 else None
        x = diffusion.ddim_step(x, eps, t, t_prev, eta, noise, clip)
    return x.clamp(-1, 1) if clip else x


@dataclass(frozen=True)
class ReCatVTONConfig:
    backbone: str = "dic_s"  # a registered diffusion model
    in_channels: int = 4  # SD-VAE latents
    input_size: int = 32  # the person's (and the garment's) side; the denoiser sees 2·input_size × input_size
    dim: int = -2  # the concatenation axis: -2 height (CatVTON's), -1 width
    garment_dropout: float = 0.1  # null-garment probability in training, for the guidance
    backbone_cfg: tuple[tuple[str, Any], ...] = ()  # further config overrides of the backbone


class ReCatVTON(nn.Module):
    """Re-CatVTON (S97) around one registered ``diffusion`` backbone (built with one class, no label dropout, no
    learned variance: the garment is the condition). It is itself a denoiser over the concatenated halves:
    ``forward(x, t, labels=None)`` maps ``[x_p | x_g]`` ``(N, C, 2H, W)`` (``(N, C, H, 2W)`` with ``dim=-1``) and
    ``(N,)`` timesteps to the predicted noise of the same shape (labels are ignored), so :func:`tryon_loss`,
    :func:`recat_guidance` and :func:`sample_tryon` take it (or a wrapper of it) as their ``denoiser``."""

    def __init__(self, config: ReCatVTONConfig) -> None:
        super().__init__()
        check_int(config.in_channels, "in_channels", "Re-CatVTON")
        check_int(config.input_size, "input_size", "Re-CatVTON")
        if config.dim not in (-1, -2):
            raise ValueError(f"Re-CatVTON: dim must be -1 (width) or -2 (height), got {config.dim}")
        if not 0 <= config.garment_dropout < 1:
            raise ValueError(f"Re-CatVTON: garment_dropout must be in [0, 1), got {config.garment_dropout}")
        self.config = config
        overrides = dict(config.backbone_cfg)
        self.backbone = create_model(
            config.backbone,
            **{
                "in_channels": config.in_channels,
                "input_size": config.input_size,
                "classes": 1,
                "class_dropout": 0.0,
                "learn_sigma": False,
                **overrides,
            },
        )

    def forward(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.backbone(x, t, torch.zeros(x.shape[0], dtype=torch.long, device=x.device))

    def loss(self, diffusion: Diffusion, person0: Tensor, garment0: Tensor) -> Tensor:
        """:func:`tryon_loss` with the configured garment dropout and axis."""
        labels = torch.zeros(person0.shape[0], dtype=torch.long, device=person0.device)
        return tryon_loss(self, diffusion, person0, garment0, labels, self.config.garment_dropout, dim=self.config.dim)

    def sample(self, diffusion: Diffusion, garment0: Tensor, **options: Any) -> Tensor:
        """:func:`sample_tryon` for ``(N, C, H, W)`` clean garments."""
        labels = torch.zeros(garment0.shape[0], dtype=torch.long, device=garment0.device)
        return sample_tryon(self, diffusion, garment0, labels, dim=self.config.dim, **options)


register_variant(
    "re_catvton_dic_s",
    ReCatVTON,
    ReCatVTONConfig(),
    papers=("re-catvton",),
    params=None,
    params_source="the DiC-S backbone's own count less its label table; the paper's SD-1.5 UNet is not built here",
    input_size=(4, 64, 32),
    summary="Re-CatVTON (S97): DiC-S denoising [person | garment] side by side, person-half loss and guidance",
    task="tryon",
    takes_op=False,
    num_classes=0,
    test_size=16,
    test_cfg={"backbone_cfg": (("hidden_size", 8), ("depth", (1, 1, 1, 1, 1)))},
)
