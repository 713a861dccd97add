"""Gaussian diffusion for the ``diffusion`` task: DDPM training (ε-prediction), DDPM and DDIM sampling with
classifier-free guidance, and the digits quality figures (S37, S63).

The forward process is DDPM's (Ho et al. 2020): ``T = 1000`` steps, β linear from 1e-4 to 0.02,
``x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε``; the network predicts ε and is trained with the mean squared error (the
"simple" loss; DiT and DiC add a learned variance trained by the VLB, which this loop does not: models are built
with ``learn_sigma=False``). Images live in [−1, 1].

Sampling runs over ``steps`` timesteps evenly spaced in ``[0, T)``. DDIM (Song et al. 2021) with ``eta`` (0:
deterministic, 1: DDPM's variance) and DDPM ancestral sampling (the posterior ``q(x_{t−1} | x_t, x₀)`` of the
respaced chain) are both here; at ``steps = T`` DDPM equals DDIM with ``eta = 1``. Classifier-free guidance
(Ho & Salimans 2021) runs the model on the label and on the null label and mixes the two predictions:
``ε̂ = ε_∅ + s (ε_y − ε_∅)`` (``guidance`` s = 1 is the conditional model alone).

Quality on digits (:func:`digits_quality`) is measured with a digits classifier trained by convzoo (any
``classify`` checkpoint on ``digits``): the fraction of class-conditional samples it labels as the class asked for,
and the Fréchet distance between the Gaussians fitted to its penultimate features of samples and of the real test
digits. That is a Fréchet distance in a small digits classifier's feature space, not ImageNet-Inception FID.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int

__all__ = [
    "GaussianDiffusion",
    "cfg_eps",
    "decode",
    "digits_quality",
    "frechet_distance",
    "load_sampler",
    "sample",
]

TIMESTEPS = 1000


def cfg_eps(eps_cond: Tensor, eps_uncond: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance: ``ε_∅ + s · (ε_y − ε_∅)``."""
    return eps_uncond + guidance * (eps_cond - eps_uncond)


class GaussianDiffusion:
    """DDPM's forward process with a linear β schedule; the schedule is held in float64."""

    def __init__(self, timesteps: int = TIMESTEPS, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        check_int(timesteps, "timesteps", "GaussianDiffusion", low=2)
        if not 0 < beta_start < beta_end < 1:
            raise ValueError(f"GaussianDiffusion: need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        self.timesteps = timesteps
        self.betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1 - self.betas, 0)  # ᾱ_t

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε`` for ``(N, ...)`` images and ``(N,)`` integer timesteps."""
        abar = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def loss(self, model: nn.Module, x0: Tensor, labels: Tensor) -> Tensor:
        """Mean squared error of the predicted noise at a uniformly drawn timestep per image (global torch RNG)."""
        t = torch.randint(0, self.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        eps = model(self.q_sample(x0, t, noise), t, labels)
        return torch.mean((eps[:, : x0.shape[1]].float() - noise.float()) ** 2)

    def spaced(self, steps: int) -> list[int]:
        """``steps`` timesteps evenly spaced from ``T − 1`` down to 0 (one step: ``T − 1`` only)."""
        check_int(steps, "steps", "sample", low=1)
        if steps > self.timesteps:
            raise ValueError(f"sample: steps must be ≤ {self.timesteps} (the training timesteps), got {steps}")
        last = self.timesteps - 1
        if steps == 1:
            return [last]
        return [round(last - i * last / (steps - 1)) for i in range(steps)]

    def predict_x0(self, x: Tensor, eps: Tensor, t: int, clip: bool) -> tuple[Tensor, Tensor]:
        """``x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t``; with ``clip`` it is clamped to the data range [−1, 1] and ε̂ is
        recomputed to agree with it (DDPM's and DiT's ``clip_denoised``)."""
        a = self.alphas_cumprod[t].item()
        x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        return x0, eps

    def ddim_step(
        self, x: Tensor, eps: Tensor, t: int, t_prev: int, eta: float, noise: Tensor | None, clip: bool = False
    ) -> Tensor:
        """One DDIM update from ``t`` to ``t_prev`` (``t_prev = −1``: to the data, ᾱ = 1) with noise scale ``eta``."""
        a = self.alphas_cumprod[t].item()
        a_prev = self.alphas_cumprod[t_prev].item() if t_prev >= 0 else 1.0
        x0, eps = self.predict_x0(x, eps, t, clip)
        sigma = eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))
        x_prev = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        return x_prev + sigma * noise if sigma > 0 and noise is not None else x_prev

    def ddpm_step(
        self, x: Tensor, eps: Tensor, t: int, t_prev: int, noise: Tensor | None, clip: bool = False
    ) -> Tensor:
        """One ancestral step: a draw of the posterior ``q(x_{t_prev} | x_t, x̂₀)`` of the respaced chain, whose
        β is ``1 − ᾱ_t / ᾱ_{t_prev}``."""
        a = self.alphas_cumprod[t].item()
        a_prev = self.alphas_cumprod[t_prev].item() if t_prev >= 0 else 1.0
        beta = 1 - a / a_prev
        x0, _ = self.predict_x0(x, eps, t, clip)
        mean = (math.sqrt(a_prev) * beta / (1 - a)) * x0 + (math.sqrt(1 - beta) * (1 - a_prev) / (1 - a)) * x
        variance = beta * (1 - a_prev) / (1 - a)
        return mean + math.sqrt(variance) * noise if variance > 0 and noise is not None else mean


@torch.no_grad()
def sample(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    labels: Tensor,
    shape: tuple[int, int, int],
    *,
    steps: int = 50,
    guidance: float = 2.0,
    method: str = "ddim",
    eta: float = 0.0,
    null_label: int,
    generator: torch.Generator | None = None,
    progress: Callable[[Any], Any] | None = None,
    batch_size: int = 256,
    clip: bool = True,
) -> Tensor:
    """Class-conditional samples ``(N, *shape)`` in [−1, 1] for the ``(N,)`` ``labels``.

    ``method`` is ``"ddim"`` (with ``eta``) or ``"ddpm"``; ``guidance`` is the classifier-free scale (1: no
    guidance, the null label is not evaluated); ``progress`` wraps the iterator over steps (a tqdm bar); ``clip``
    clamps each step's predicted clean image to [−1, 1].
    """
    if method not in ("ddim", "ddpm"):
        raise ValueError(f"sample: method must be 'ddim' or 'ddpm', got {method!r}")
    if guidance < 0:
        raise ValueError(f"sample: guidance must be ≥ 0, got {guidance}")
    if eta < 0:
        raise ValueError(f"sample: eta must be ≥ 0, got {eta}")
    device = next(model.parameters()).device
    channels = shape[0]
    timesteps = diffusion.spaced(steps)
    pairs = list(zip(timesteps, [*timesteps[1:], -1], strict=True))
    x = torch.randn((labels.shape[0], *shape), generator=generator).to(device)
    labels = labels.to(device)
    null = torch.full_like(labels, null_label)
    for t, t_prev in progress(pairs) if progress is not None else pairs:
        eps = torch.empty_like(x)
        for start in range(0, x.shape[0], batch_size):
            xs, ys = x[start : start + batch_size], labels[start : start + batch_size]
            ts = torch.full((xs.shape[0],), t, device=device)
            if guidance == 1:
                eps[start : start + batch_size] = model(xs, ts, ys)[:, :channels]
            else:
                out = model(torch.cat([xs, xs]), torch.cat([ts, ts]), torch.cat([ys, null[: xs.shape[0]]]))
                cond, uncond = out[:, :channels].chunk(2)
                eps[start : start + batch_size] = cfg_eps(cond, uncond, guidance)
        noise = torch.randn(x.shape, generator=generator).to(device) if t_prev >= 0 else None
        if method == "ddim":
            x = diffusion.ddim_step(x, eps, t, t_prev, eta, noise, clip)
        else:
            x = diffusion.ddpm_step(x, eps, t, t_prev, noise, clip)
    return x.clamp(-1, 1)


@dataclass
class Sampler:
    """A trained diffusion checkpoint ready to sample: the model (EMA weights when the run kept them), the image
    shape, the number of classes and the length of its noise schedule."""

    model: nn.Module
    shape: tuple[int, int, int]
    classes: int
    timesteps: int
    ema: bool
    output_size: int | None = None  # the data's side, when the model denoises smaller images (task option size)

    def decode(self, images: Tensor) -> Tensor:
        """Samples ``(N, C, s, s)`` at the data's size (see :func:`decode`)."""
        return decode(images, self.output_size or images.shape[-1])


def decode(images: Tensor, size: int) -> Tensor:
    """``(N, C, s, s)`` samples brought to ``size``² by bilinear upsampling (half-pixel centres), the map that made
    the ``digits`` images from their 8×8 scans; unchanged when already that size."""
    if images.shape[-1] == size:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def load_sampler(path: str, use_ema: bool = True) -> Sampler:
    """Rebuild a ``diffusion`` checkpoint (its EMA weights when it has them and ``use_ema``)."""
    from safetensors.torch import load_file

    from convzoo.train.checkpoint import build_from_checkpoint

    model, checkpoint = build_from_checkpoint(path)
    if checkpoint.task != "diffusion":
        raise ValueError(f"sample: {path!r} is a {checkpoint.task!r} checkpoint, not a diffusion one")
    ema = False
    state_file = checkpoint.path / "state.safetensors"
    if use_ema and state_file.exists():
        tensors = load_file(str(state_file))
        weights = {k.removeprefix("ema/module."): v for k, v in tensors.items() if k.startswith("ema/module.")}
        if weights:
            model.load_state_dict(weights)
            ema = True
    arch = checkpoint.architecture
    shape = (arch["channels"], arch["size"], arch["size"])
    return Sampler(model.eval(), shape, arch["classes"], arch["timesteps"], ema, arch.get("output_size"))


def frechet_distance(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """``‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)`` between Gaussians fitted to ``(N, D)`` feature rows."""
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"frechet_distance: need two (N ≥ 2, D) feature arrays, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular products: regularise as the FID reference code does
        offset = np.eye(a.shape[1]) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


@torch.no_grad()
def _classifier_outputs(classifier: nn.Module, images: Tensor) -> tuple[Tensor, Tensor]:
    """Penultimate features ``(N, D)`` and predicted classes ``(N,)`` of a convzoo classifier."""
    features, predictions = [], []
    for start in range(0, images.shape[0], 256):
        chunk = classifier.forward_features(images[start : start + 256])
        pooled = classifier.forward_head(chunk, pre_logits=True)  # (n, D)
        features.append(pooled)
        predictions.append(classifier.head.fc(pooled).argmax(1))
    return torch.cat(features), torch.cat(predictions)


def digits_quality(samples01: Tensor, labels: Tensor, classifier_checkpoint: str) -> dict[str, float]:
    """Quality of ``(N, 1, 32, 32)`` samples in [0, 1] asked for ``labels``, judged by a convzoo digits classifier:
    ``class_match`` (the fraction it labels as asked), ``frechet`` (Fréchet distance of its penultimate features to
    those of the real digits test split, which has 450 images) and the classifier's own test accuracy."""
    from convzoo.data.base import load_dataset
    from convzoo.train.checkpoint import build_from_checkpoint

    classifier, checkpoint = build_from_checkpoint(classifier_checkpoint)
    data = checkpoint.meta.get("data", {})
    if data.get("name") != "digits":
        raise ValueError(f"sample: the judge {classifier_checkpoint!r} was not trained on digits ({data.get('name')})")
    test = load_dataset("digits", "test")
    mean = torch.tensor(test.info.mean).view(1, -1, 1, 1)
    std = torch.tensor(test.info.std).view(1, -1, 1, 1)
    fake_features, predicted = _classifier_outputs(classifier, (samples01 - mean) / std)
    real_features, real_predicted = _classifier_outputs(classifier, test.images)
    return {
        "class_match": (predicted == labels).float().mean().item(),
        "frechet": frechet_distance(fake_features.numpy(), real_features.numpy()),
        "judge_test_acc": (real_predicted == test.labels).float().mean().item(),
        "feature_dim": float(real_features.shape[1]),
    }
