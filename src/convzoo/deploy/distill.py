"""Distilling a long convolution into a diagonal state-space recurrence (S84, Laughing Hyena Distillery).

A causal response ``h`` ``(C, K)`` is approximated by ``ĥ_0 = D``, ``ĥ_k = Re Σ_n R_n λ_n^(k-1)`` (k ≥ 1): a
diagonal linear recurrence of order ``d`` per channel, ``s_{t+1} = λ ⊙ s_t + x_t``,
``y_t = D x_t + Re(R · s_t)``, which generates each token in O(d) whatever the position.

Fitting (model-order reduction): the poles come from the ``m × m`` Hankel matrix of ``h_1 ... h_{2m-1}``
(``m = min(hankel_size, K // 2)``, default 256) by Kung's SVD method: its leading ``d`` singular directions; its
singular value ``σ_{d+1}`` bounds the best order-``d`` error from below, as in the paper's Hankel analysis. The
residues come from a least-squares fit of the whole response given those poles, optionally refined by gradient
descent on poles and residues together (the paper's modal interpolation). Departure: the paper fits by gradient
descent from a random modal initialisation; here the SVD provides the initialisation and ``refine_steps``
(default 0) the gradient phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.ops.long_conv import LongConv, fft_causal_conv

__all__ = [
    "DistilledConv",
    "ModalFit",
    "distill",
    "distillation_errors",
    "fit_modal",
    "hankel_singular_values",
    "modal_response",
]


@dataclass(frozen=True)
class ModalFit:
    """Poles ``λ`` and residues ``R`` ``(C, d)`` (complex128) and the direct term ``D`` ``(C,)`` (float64)."""

    poles: Tensor
    residues: Tensor
    direct: Tensor

    @property
    def order(self) -> int:
        return self.poles.shape[-1]


def _hankel(tail: Tensor, size: int) -> Tensor:
    """``H[c, i, j] = tail[c, i + j]`` for ``i, j < size``: ``(C, size, size)``."""
    index = torch.arange(size)[:, None] + torch.arange(size)[None, :]  # (size, size)
    return tail[:, index]


def _hankel_size(length: int, hankel_size: int) -> int:
    return max(1, min(hankel_size, length // 2))


def hankel_singular_values(response: Tensor, hankel_size: int = 256) -> Tensor:
    """Singular values ``(C, m)`` of the Hankel matrix of ``h_1 ... h_{2m-1}``, ``m = min(hankel_size, K // 2)``."""
    tail = response.detach().double()[:, 1:]  # (C, K - 1)
    return torch.linalg.svdvals(_hankel(tail, _hankel_size(response.shape[-1], hankel_size)))


def _powers(poles: Tensor, length: int) -> Tensor:
    """``λ_n^j`` for ``j < length``: ``(C, length, d)``."""
    steps = poles[:, None, :].expand(-1, max(length - 1, 0), -1)  # (C, length - 1, d)
    ones = torch.ones_like(poles)[:, None, :]  # (C, 1, d)
    return torch.cat([ones, torch.cumprod(steps, dim=1)], dim=1)[:, :length]


def modal_response(fit: ModalFit, length: int) -> Tensor:
    """The fitted response ``ĥ`` ``(C, length)``, float64."""
    tail = (_powers(fit.poles, length - 1) * fit.residues[:, None, :]).sum(-1).real  # (C, length - 1)
    return torch.cat([fit.direct[:, None], tail], dim=1)


def _residues(poles: Tensor, tail: Tensor) -> Tensor:
    """Least-squares ``R`` with ``Re Σ_n R_n λ_n^j ≈ tail[j]``; real unknowns ``[Re R, Im R]``, minimum norm."""
    basis = _powers(poles, tail.shape[-1])  # (C, K - 1, d)
    system = torch.cat([basis.real, -basis.imag], dim=-1)  # (C, K - 1, 2d)
    solution = torch.linalg.lstsq(system, tail[..., None], driver="gelsd").solution[..., 0]  # (C, 2d)
    order = poles.shape[-1]
    return torch.complex(solution[:, :order], solution[:, order:])


def _refine(fit: ModalFit, tail: Tensor, steps: int, lr: float) -> ModalFit:
    """Adam on log-radius, angle and residues of every mode, minimising ``||ĥ - h||²`` (the paper's modal fit)."""
    log_radius = fit.poles.abs().clamp_min(1e-12).log().clone().requires_grad_(True)
    angle = fit.poles.angle().clone().requires_grad_(True)
    residues = torch.view_as_real(fit.residues).clone().requires_grad_(True)  # (C, d, 2)
    optimizer = torch.optim.Adam([log_radius, angle, residues], lr=lr)
    best_loss, best = ((modal_response(fit, tail.shape[-1] + 1)[:, 1:] - tail) ** 2).sum().item(), fit
    for _ in range(steps):
        optimizer.zero_grad()
        poles = torch.polar(log_radius.clamp_max(0.0).exp(), angle)
        approx = (_powers(poles, tail.shape[-1]) * torch.view_as_complex(residues)[:, None, :]).sum(-1).real
        loss = ((approx - tail) ** 2).sum()
        if loss.item() < best_loss:  # keep the best iterate: Adam's first steps can overshoot a good start
            best_loss = loss.item()
            best = ModalFit(poles.detach(), torch.view_as_complex(residues.detach()).clone(), fit.direct)
        loss.backward()
        optimizer.step()
    return best


def fit_modal(
    response: Tensor, order: int, *, hankel_size: int = 256, refine_steps: int = 0, refine_lr: float = 1e-3
) -> ModalFit:
    """Fit an order-``order`` diagonal recurrence to each channel of the causal ``response`` ``(C, K)``."""
    check_int(order, "order", "distill")
    if response.dim() != 2 or response.shape[-1] < 3:
        raise ValueError(f"distill: expected a response of shape (C, K) with K ≥ 3, got {tuple(response.shape)}")
    size = _hankel_size(response.shape[-1], hankel_size)
    if order > size - 1:
        raise ValueError(
            f"distill: order must be at most {size - 1} for a filter of length {response.shape[-1]} "
            f"and hankel_size={hankel_size}, got {order}"
        )
    h = response.detach().double()
    tail = h[:, 1:]  # (C, K - 1)
    u, s, _ = torch.linalg.svd(_hankel(tail, size))  # (C, m, m), (C, m)
    observability = u[..., :order] * s[:, None, :order].sqrt()  # (C, m, d)
    # shift invariance O[1:] = O[:-1] A gives the state matrix; its eigenvalues are the poles
    state = torch.linalg.lstsq(observability[:, :-1], observability[:, 1:], driver="gelsd").solution  # (C, d, d)
    poles = torch.linalg.eigvals(state)  # (C, d)
    poles = poles / poles.abs().clamp_min(1.0)  # keep the recurrence stable: |λ| ≤ 1
    fit = ModalFit(poles, _residues(poles, tail), h[:, 0].clone())
    if refine_steps:
        fit = _refine(fit, tail, refine_steps, refine_lr)
    return fit


def relative_error(fit: ModalFit, response: Tensor) -> float:
    """``||ĥ_{1:} - h_{1:}||₂ / ||h_{1:}||₂`` over all channels: the error of the recurrent part (``D`` is exact)."""
    h = response.detach().double()
    error = modal_response(fit, h.shape[-1])[:, 1:] - h[:, 1:]
    return (error.norm() / h[:, 1:].norm().clamp_min(1e-300)).item()


def _response_of(source: LongConv | Tensor) -> Tensor:
    if isinstance(source, LongConv):
        with torch.no_grad():
            return source.impulse_response().double()
    return source.detach().double()


def distillation_errors(
    source: LongConv | Tensor, orders: tuple[int, ...] = (1, 2, 4, 8, 16, 32), **fit_options
) -> dict:
    """Relative ℓ2 error of the order-``d`` fit for each ``d`` in ``orders``: ``{d: error}``."""
    response = _response_of(source)
    return {d: relative_error(fit_modal(response, d, **fit_options), response) for d in orders}


class DistilledConv(nn.Module):
    """A distilled long convolution: ``forward`` applies ``ĥ`` by FFT, ``step`` runs the recurrence in O(C·d).

    ``relative_error`` is ``||ĥ - h|| / ||h||`` on the filter it was fitted to (length ``K``).
    """

    def __init__(self, fit: ModalFit, relative_error: float = float("nan")) -> None:
        super().__init__()
        self.register_buffer("poles", fit.poles, persistent=False)  # (C, d) complex128
        self.register_buffer("residues", fit.residues, persistent=False)  # (C, d) complex128
        self.register_buffer("direct", fit.direct, persistent=False)  # (C,) float64
        self.relative_error = relative_error

    @property
    def order(self) -> int:
        return self.poles.shape[-1]

    @property
    def channels(self) -> int:
        return self.poles.shape[0]

    def fit(self) -> ModalFit:
        return ModalFit(self.poles, self.residues, self.direct)

    def forward(self, x: Tensor) -> Tensor:
        """Offline output ``(N, C, L)`` for ``x`` ``(N, C, L)``, by FFT with the fitted response."""
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(f"distill: expected input (N, {self.channels}, L), got {tuple(x.shape)}")
        return fft_causal_conv(x, modal_response(self.fit(), x.shape[-1]).to(x.dtype))

    def init_state(self, batch: int) -> Tensor:
        """Zero state ``(N, C, d)``, complex128: the recurrence runs in double precision whatever the input dtype,
        so powers of the poles stay accurate over long generations (and no buffer is cast at every step)."""
        return torch.zeros(batch, self.channels, self.order, dtype=torch.complex128, device=self.poles.device)

    def step(self, x_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``y_t = D x_t + Re(R · s_t)``, ``s_{t+1} = λ s_t + x_t``: input ``(N, C)`` → ``(y_t (N, C), s_{t+1})``."""
        y = self.direct * x_t + (state * self.residues).sum(-1).real  # (N, C), float64
        return y.to(x_t.dtype), state * self.poles + x_t[..., None]

    def extra_repr(self) -> str:
        return f"channels={self.channels}, order={self.order}, relative_error={self.relative_error:.3g}"


def distill(source: LongConv | Tensor, order: int, **fit_options) -> DistilledConv:
    """Distil a trained ``long_conv`` (or a ``(C, K)`` response) into an order-``order`` recurrence."""
    response = _response_of(source)
    fit = fit_modal(response, order, **fit_options)
    return DistilledConv(fit, relative_error(fit, response))
