"""Residual vector quantisation (S50's quantiser): a stack of codebooks, each quantising what the previous ones
left, with k-means initialisation and exponential-moving-average codebook updates.

``x`` ``(N, D, T)`` (D-dimensional vectors at T steps) → ``(quantised (N, D, T), codes (stages, N, T), losses)``.
Stage ``s`` picks, for the residual ``r_s = x − Σ_{j<s} q_j``, the nearest of its ``K`` codewords (squared
Euclidean distance); the output is ``Σ_s q_s`` passed straight through to ``x`` (``x + (q − x).detach()``) so the
encoder receives gradients. On the first training batch each codebook is initialised by ``kmeans_iters`` Lloyd
iterations on its residuals (seeded from the batch); afterwards, in training, codeword counts and sums follow an EMA
with ``decay`` and Laplace smoothing (the VQ-VAE-2 / SoundStream rule), and the commitment loss
``β · ||x − sg(q)||²`` is returned for the encoder. ``stages`` at inference may be fewer than built (bitrate
scalability): :meth:`ResidualVQ.bitrate` is ``steps_per_second · stages · log2(K)``.

Two options follow ESC (S50) and DAC: ``l2norm=True`` picks the nearest codeword by cosine (residual and codewords
l2-normalised for the search; the chosen codeword itself is used as stored); ``ema=False`` makes the codebooks an
``nn.Parameter`` learned by gradient through the codebook loss ``Σ_s ||sg(r_s) − q_s||²`` (added to the returned
loss; no EMA update), still k-means initialised on the first training batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number

__all__ = ["ResidualVQ"]


class ResidualVQ(nn.Module):
    """``stages`` codebooks of ``codebook_size`` codewords of dimension ``dim``; k-means init, EMA updates."""

    def __init__(
        self,
        dim: int,
        stages: int = 8,
        codebook_size: int = 1024,
        *,
        decay: float = 0.99,
        kmeans_iters: int = 10,
        commitment: float = 0.25,
        eps: float = 1e-5,
        l2norm: bool = False,
        ema: bool = True,
    ) -> None:
        super().__init__()
        owner = "ResidualVQ"
        self.dim = check_int(dim, "dim", owner)
        self.stages = check_int(stages, "stages", owner)
        self.codebook_size = check_int(codebook_size, "codebook_size", owner, low=2)
        self.decay = check_number(decay, "decay", owner, high=1.0, high_open=True)
        self.kmeans_iters = check_int(kmeans_iters, "kmeans_iters", owner, low=0)
        self.commitment = check_number(commitment, "commitment", owner, low=0.0, low_open=False)
        self.eps = eps
        self.l2norm, self.ema = bool(l2norm), bool(ema)
        if self.ema:
            self.register_buffer("codebooks", torch.zeros(stages, codebook_size, dim))
        else:
            self.codebooks = nn.Parameter(torch.zeros(stages, codebook_size, dim))
        self.register_buffer("ema_counts", torch.ones(stages, codebook_size))
        self.register_buffer("ema_sums", torch.zeros(stages, codebook_size, dim))
        self.register_buffer("initialised", torch.tensor(False))

    def bitrate(self, steps_per_second: float, stages: int | None = None) -> float:
        """Bits per second of the codes at ``steps_per_second`` vectors per second with ``stages`` codebooks."""
        return steps_per_second * (stages or self.stages) * math.log2(self.codebook_size)

    @staticmethod
    def nearest(vectors: Tensor, codebook: Tensor) -> Tensor:
        """Index of the nearest codeword of ``codebook`` ``(K, D)`` for each of ``vectors`` ``(M, D)``."""
        distances = vectors.square().sum(1, keepdim=True) - 2 * vectors @ codebook.T + codebook.square().sum(1)
        return distances.argmin(1)  # (M,)

    def _assign(self, vectors: Tensor, codebook: Tensor) -> Tensor:
        if self.l2norm:
            vectors, codebook = F.normalize(vectors, dim=1), F.normalize(codebook, dim=1)
        return self.nearest(vectors, codebook)

    @torch.no_grad()
    def _kmeans(self, vectors: Tensor) -> Tensor:
        generator = torch.Generator(device="cpu").manual_seed(0)
        pick = torch.randperm(vectors.shape[0], generator=generator)[: self.codebook_size].to(vectors.device)
        centres = vectors[pick]
        if centres.shape[0] < self.codebook_size:  # fewer vectors than codewords: repeat them
            centres = centres[torch.arange(self.codebook_size, device=vectors.device) % centres.shape[0]]
        for _ in range(self.kmeans_iters):
            assign = self._assign(vectors, centres)
            sums = torch.zeros_like(centres).index_add_(0, assign, vectors)
            counts = torch.bincount(assign, minlength=self.codebook_size).to(vectors.dtype)
            centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
        return centres

    def forward(self, x: Tensor, stages: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        stages = self.stages if stages is None else check_int(stages, "stages", "ResidualVQ", high=self.stages)
        n, d, t = x.shape
        flat = x.detach().permute(0, 2, 1).reshape(-1, d)  # (N·T, D)
        residual = flat
        quantised = torch.zeros_like(flat)
        codes = []
        codebook_loss = x.new_zeros(())
        initialise = self.training and not bool(self.initialised)
        for s in range(stages):
            if initialise:
                with torch.no_grad():
                    self.codebooks[s] = self._kmeans(residual).to(self.codebooks.dtype)
                    self.ema_sums[s] = self.codebooks[s]
                    self.ema_counts[s] = 1.0
            codebook = self.codebooks[s].to(flat.dtype)
            index = self._assign(residual, codebook)  # (N·T,)
            chosen = codebook[index]
            if not self.ema:
                codebook_loss = codebook_loss + (residual.detach() - chosen).square().mean()
            elif self.training:
                with torch.no_grad():
                    counts = torch.bincount(index, minlength=self.codebook_size).to(self.ema_counts.dtype)
                    sums = torch.zeros_like(self.ema_sums[s]).index_add_(0, index, residual.to(self.ema_sums.dtype))
                    self.ema_counts[s].mul_(self.decay).add_(counts, alpha=1 - self.decay)
                    self.ema_sums[s].mul_(self.decay).add_(sums, alpha=1 - self.decay)
                    total = self.ema_counts[s].sum()
                    smoothed = (self.ema_counts[s] + self.eps) / (total + self.codebook_size * self.eps) * total
                    self.codebooks[s] = self.ema_sums[s] / smoothed[:, None]
            quantised = quantised + chosen
            residual = residual - chosen
            codes.append(index.view(n, t))
        if initialise:
            self.initialised.fill_(True)
        q = quantised.view(n, t, d).permute(0, 2, 1)  # (N, D, T)
        loss = self.commitment * (x - q.detach()).square().mean() + codebook_loss
        return x + (q - x).detach(), torch.stack(codes), loss  # straight-through

    def decode(self, codes: Tensor) -> Tensor:
        """Vectors ``(N, D, T)`` from ``codes`` ``(stages, N, T)``."""
        q = sum(self.codebooks[s][codes[s]] for s in range(codes.shape[0]))  # (N, T, D)
        return q.permute(0, 2, 1)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, stages={self.stages}, codebook_size={self.codebook_size}, decay={self.decay}, "
            f"l2norm={self.l2norm}, ema={self.ema}"
        )
