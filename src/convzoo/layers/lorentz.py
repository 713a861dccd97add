"""Fully hyperbolic CNN layers on the Lorentz model (S116, HCNN): convolution, batch norm and MLR.

Feature maps are points of the hyperboloid ``L^n_k = {x : <x, x>_L = -1/k, x_0 > 0}`` (curvature ``-k``,
``k > 0``), with the Lorentz inner product ``<x, y>_L = -x_0 y_0 + sum_i x_i y_i``. A feature map is
channels-first, ``(N, 1 + C, *S)``: channel 0 is the time coordinate ``x_0``, channels ``1..C`` the space
coordinates (the official code, kschwethelm/HyperbolicCV, is channels-last; the layout here is convzoo's).

These are registered as *layers*, not grid operators: their inputs and outputs must lie on the
hyperboloid, so they cannot take the contract's Euclidean ``randn`` input, zero padding or a free
``C_in -> C_out`` map of arbitrary tensors (``create_op`` semantics do not hold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import same_padding
from convzoo.core.validate import check_conv_args, check_int, is_int, is_number
from convzoo.registry import LAYERS

__all__ = [
    "LorentzBatchNorm",
    "LorentzConv",
    "LorentzMLR",
    "lorentz_inner",
    "lorentz_dist",
    "expmap",
    "logmap",
    "transport",
    "origin",
    "project",
    "centroid",
    "lorentz_direct_concat",
]

_EPS = {torch.float16: 1e-3, torch.bfloat16: 1e-2, torch.float32: 1e-6, torch.float64: 1e-12}


# --- manifold functions; points and tangent vectors carry their 1 + C coordinates in the LAST dim ---------------


def lorentz_inner(x: Tensor, y: Tensor, keepdim: bool = False) -> Tensor:
    """``<x, y>_L = -x_0 y_0 + <x_s, y_s>`` over the last dim."""
    product = x * y
    inner = product[..., 1:].sum(-1, keepdim=keepdim) - product[..., :1].sum(-1, keepdim=keepdim)
    return inner


def origin(space_dims: int, k: float, *, dtype=None, device=None) -> Tensor:
    """The hyperboloid's origin ``(1/sqrt(k), 0, ..., 0)``, shape ``(1 + space_dims,)``."""
    o = torch.zeros(1 + space_dims, dtype=dtype, device=device)
    o[0] = 1 / math.sqrt(k)
    return o


def project(space: Tensor, k: float) -> Tensor:
    """The hyperboloid point with space part ``space`` (..., C): time ``sqrt(1/k + |space|^2)`` prepended."""
    time = torch.sqrt(1 / k + (space * space).sum(-1, keepdim=True))
    return torch.cat([time, space], dim=-1)  # (..., 1 + C)


def lorentz_dist(x: Tensor, y: Tensor, k: float) -> Tensor:
    """Geodesic distance ``arccosh(-k <x, y>_L) / sqrt(k)``."""
    eps = _EPS.get(x.dtype, 1e-6)
    return torch.acosh((-k * lorentz_inner(x, y)).clamp_min(1 + eps)) / math.sqrt(k)


def expmap(x: Tensor, v: Tensor, k: float) -> Tensor:
    """Exponential map at ``x`` of the tangent ``v``: ``cosh(sqrt(k)|v|) x + sinh(sqrt(k)|v|) v / (sqrt(k)|v|)``."""
    eps = _EPS.get(x.dtype, 1e-6)
    norm = torch.sqrt(lorentz_inner(v, v, keepdim=True).clamp_min(eps**2)) * math.sqrt(k)  # sqrt(k)|v|_L
    return torch.cosh(norm) * x + torch.sinh(norm) / norm * v


def logmap(x: Tensor, y: Tensor, k: float) -> Tensor:
    """Logarithmic map at ``x`` of the point ``y``: ``d(x, y) · u / |u|_L`` with ``u = y + k <x, y>_L x``."""
    eps = _EPS.get(x.dtype, 1e-6)
    u = y + k * lorentz_inner(x, y, keepdim=True) * x
    norm = torch.sqrt(lorentz_inner(u, u, keepdim=True).clamp_min(eps**2))
    return lorentz_dist(x, y, k).unsqueeze(-1) * u / norm


def transport(x: Tensor, y: Tensor, v: Tensor, k: float) -> Tensor:
    """Parallel transport of ``v`` from ``T_x`` to ``T_y``: ``v + <y, v>_L / (1/k - <x, y>_L) · (x + y)``."""
    coeff = lorentz_inner(y, v, keepdim=True) / (1 / k - lorentz_inner(x, y, keepdim=True))
    return v + coeff * (x + y)


def centroid(x: Tensor, k: float, weights: Tensor | None = None) -> Tensor:
    """Lorentz centroid of the points ``x`` (M, 1 + C): the (weighted) Euclidean mean rescaled onto the hyperboloid.

    It minimises the weighted sum of squared Lorentzian distances (Law et al. 2019), as HCNN uses.
    """
    mean = x.mean(0) if weights is None else weights @ x  # (1 + C,)
    eps = _EPS.get(x.dtype, 1e-6)
    return mean / torch.sqrt((-k * lorentz_inner(mean, mean, keepdim=True)).clamp_min(eps))


def lorentz_direct_concat(points: Tensor, k: float) -> Tensor:
    """Lorentz direct concatenation (Qu et al. 2022) of ``K`` points (..., K, 1 + C) into one point (..., 1 + K·C).

    Space parts are concatenated; the time becomes ``sqrt(sum_i t_i^2 - (K - 1)/k)``, which keeps the result on the
    hyperboloid of the same curvature.
    """
    count = points.shape[-2]
    time = torch.sqrt((points[..., 0] ** 2).sum(-1, keepdim=True) - (count - 1) / k)  # (..., 1)
    return torch.cat([time, points[..., 1:].flatten(-2)], dim=-1)  # (..., 1 + K·C)


def _check_points(x: Tensor, channels: int, dim: int | None, name: str) -> None:
    if dim is not None and x.dim() != dim + 2:
        raise ValueError(f"{name}: expected a {dim + 2}-d input (N, 1 + C, *{dim} spatial sizes), got {tuple(x.shape)}")
    if x.dim() < 2 or x.shape[1] != channels:
        raise ValueError(
            f"{name}: expected {channels} channels (time + {channels - 1} space) in dim 1, got shape {tuple(x.shape)}"
        )


def _check_k(k: float, name: str) -> float:
    if not is_number(k) or not k > 0:
        raise ValueError(f"{name}: k (minus the curvature) must be a positive number, got {k!r}")
    return float(k)


# --- layers --------------------------------------------------------------------------------------------------------


@LAYERS.register("lorentz_conv", kind="layer", dims=(1, 2, 3), papers=("hyperbolic-cnn",))
class LorentzConv(nn.Module):
    """S116 "Fully Hyperbolic CNNs for Computer Vision" (HCNN) Lorentz conv: patch direct concatenation + Lorentz FC.

    Input ``(N, 1 + C_in, *S)`` on the hyperboloid, output ``(N, 1 + C_out, *ceil(S/stride))`` on it
    (``in_channels``/``out_channels`` count the time coordinate, as in the official code). For each patch of
    ``K = prod(kernel_size)`` points (padded with the origin, "same" padding):
    ``z = LDC(patch)`` in ``L^{K·C_in}``, ``y_s = W z + b`` (W acts on all ``1 + K·C_in`` coordinates),
    ``y = (sqrt(1/k + |y_s|^2), y_s)`` (Chen et al. 2022's Lorentz linear layer without its optional
    normalisation, the HCNN default). Initialisation from the official code: ``W, b ~ U(-s, s)``,
    ``s = sqrt(2 / (K·C_in))``. Departure: the official linear layer computes one extra output that it
    discards (it is overwritten by the time coordinate); this one computes only the ``C_out`` space outputs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 2,
        bias: bool = True,
        k: float = 1.0,
    ) -> None:
        super().__init__()
        name = "lorentz_conv"
        for what, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not is_int(value) or value < 2:
                raise ValueError(
                    f"{name}: {what} must be an int >= 2 (time + at least one space channel), got {value!r}"
                )
        self.kernel_size, self.stride = check_conv_args(
            name, in_channels, out_channels, kernel_size, stride, dim, odd_kernel=False
        )
        if any(s % 2 == 0 for s in self.kernel_size):
            raise ValueError(f"{name}: kernel_size must be odd and positive for 'same' padding, got {kernel_size!r}")
        self.in_channels, self.out_channels, self.dim, self.k = in_channels, out_channels, dim, _check_k(k, name)
        patch = math.prod(self.kernel_size)
        self.linear = nn.Linear(1 + patch * (in_channels - 1), out_channels - 1, bias=bias)
        bound = math.sqrt(2.0 / (patch * (in_channels - 1)))
        nn.init.uniform_(self.linear.weight, -bound, bound)
        if bias:
            nn.init.uniform_(self.linear.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        _check_points(x, self.in_channels, self.dim, "lorentz_conv")
        pads = [p for p in reversed(same_padding(self.kernel_size)) for _ in range(2)]
        # origin padding: time padded with 1/sqrt(k), space with 0
        time = F.pad(x[:, :1], pads, value=1 / math.sqrt(self.k))  # (N, 1, *S_padded)
        padded = torch.cat([time, F.pad(x[:, 1:], pads)], dim=1)  # (N, 1 + C_in, *S_padded)
        patches = padded
        for axis, (size, step) in enumerate(zip(self.kernel_size, self.stride, strict=True)):
            patches = patches.unfold(2 + axis, size, step)  # (N, 1 + C_in, *S_out, *kernel so far)
        patches = patches.flatten(2 + self.dim).movedim(1, -1)  # (N, *S_out, K, 1 + C_in)
        z = lorentz_direct_concat(patches, self.k)  # (N, *S_out, 1 + K·C_in)
        y = project(self.linear(z), self.k)  # (N, *S_out, 1 + C_out)
        return y.movedim(-1, 1)  # (N, 1 + C_out, *S_out)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"dim={self.dim}, k={self.k}"
        )


@LAYERS.register("lorentz_batch_norm", kind="layer", dims=(1, 2, 3), papers=("hyperbolic-cnn",))
class LorentzBatchNorm(nn.Module):
    """S116 "Fully Hyperbolic CNNs for Computer Vision" (HCNN) Lorentz batch norm: centroid + Fréchet variance.

    ``(N, 1 + C, *S)`` -> same shape, every pixel of every sample a point of ``L^C_k``. In training::

        mu    = centroid of all N·prod(S) points
        sigma = mean_i d(mu, x_i)                                   # Fréchet dispersion, as the official code
        x_i  -> exp_beta( PT_{o->beta}( gamma / (sigma + eps) · PT_{mu->o}( log_mu(x_i) ) ) )

    Eval mode uses the running centroid (updated as the weighted centroid of the old running mean and the
    batch centroid, weights ``1 - momentum``, ``momentum``) and the running dispersion. ``gamma`` is a scalar,
    initialised to 1; ``beta`` starts at the origin. Departure: the official code keeps ``beta`` as a
    Riemannian (geoopt) parameter; here ``beta`` is parametrised by its space part and projected, so any
    optimiser keeps it on the hyperboloid.
    """

    def __init__(self, channels: int, *, k: float = 1.0, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        name = "lorentz_batch_norm"
        check_int(channels, "channels", name, low=2)  # time + space
        if not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must lie in [0, 1], got {momentum!r}")
        self.channels, self.k, self.momentum, self.eps = channels, _check_k(k, name), momentum, eps
        self.beta_space = nn.Parameter(torch.zeros(channels - 1))
        self.gamma = nn.Parameter(torch.ones(()))
        self.register_buffer("running_mean", origin(channels - 1, self.k))
        self.register_buffer("running_var", torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        _check_points(x, self.channels, None, "lorentz_batch_norm")
        points = x.movedim(1, -1)  # (N, *S, 1 + C)
        flat = points.reshape(-1, self.channels)  # (M, 1 + C)
        if self.training:
            mean = centroid(flat, self.k)
            var = lorentz_dist(mean, flat, self.k).mean()
            with torch.no_grad():
                weights = torch.tensor([1 - self.momentum, self.momentum], dtype=flat.dtype, device=flat.device)
                both = torch.stack([self.running_mean.to(flat.dtype), mean.detach()])  # (2, 1 + C)
                self.running_mean.copy_(centroid(both, self.k, weights))
                self.running_var.copy_((1 - self.momentum) * self.running_var + self.momentum * var.detach())
        else:
            mean, var = self.running_mean.to(flat.dtype), self.running_var.to(flat.dtype)
        o = origin(self.channels - 1, self.k, dtype=flat.dtype, device=flat.device)
        beta = project(self.beta_space, self.k)
        tangent = transport(mean, o, logmap(mean, flat, self.k), self.k)  # (M, 1 + C) in T_o
        tangent = tangent * (self.gamma / (var + self.eps))
        out = expmap(beta, transport(o, beta, tangent, self.k), self.k)  # (M, 1 + C)
        return out.reshape(points.shape).movedim(-1, 1)  # (N, 1 + C, *S)

    def extra_repr(self) -> str:
        return f"{self.channels}, k={self.k}, momentum={self.momentum}"


@LAYERS.register("lorentz_mlr", kind="layer", dims=(1, 2, 3), papers=("hyperbolic-cnn",))
class LorentzMLR(nn.Module):
    """S116 "Fully Hyperbolic CNNs for Computer Vision" (HCNN) Lorentz MLR: scaled signed distance to class hyperplanes.

    Input ``(N, 1 + C)`` points (or ``(N, 1 + C, *S)``, classified per pixel), output ``(N, classes[, *S])``.
    Class ``c`` has a hyperplane through ``p_c = exp_o(a_c z_c / |z_c|)`` with normal ``z_c`` moved to ``p_c``::

        w   = (sinh(sqrt(k) a) |z|, cosh(sqrt(k) a) z)            # normal of H_c = {y : <w, y>_L = 0}
        d   = asinh(sqrt(k) <w, x>_L / |w|_L) / sqrt(k)          # signed distance of x to H_c
        logit_c = |w|_L · d

    Initialisation from the official code: ``a, z ~ U(-1/sqrt(C), 1/sqrt(C))``.
    """

    def __init__(self, channels: int, classes: int, *, k: float = 1.0) -> None:
        super().__init__()
        name = "lorentz_mlr"
        check_int(channels, "channels", name, low=2)  # time + space
        check_int(classes, "classes", name)
        self.channels, self.classes, self.k = channels, classes, _check_k(k, name)
        bound = 1 / math.sqrt(channels - 1)
        self.a = nn.Parameter(torch.empty(classes).uniform_(-bound, bound))
        self.z = nn.Parameter(torch.empty(classes, channels - 1).uniform_(-bound, bound))

    def hyperplane_normals(self) -> Tensor:
        """The normals ``w`` (classes, 1 + C) of the class hyperplanes, spacelike vectors of the ambient space."""
        sqrt_k = math.sqrt(self.k)
        time = torch.sinh(sqrt_k * self.a) * self.z.norm(dim=-1)  # (classes,)
        space = torch.cosh(sqrt_k * self.a).unsqueeze(-1) * self.z  # (classes, C)
        return torch.cat([time.unsqueeze(-1), space], dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        _check_points(x, self.channels, None, "lorentz_mlr")
        sqrt_k = math.sqrt(self.k)
        w = self.hyperplane_normals()
        w_norm = torch.sqrt(lorentz_inner(w, w).clamp_min(_EPS.get(w.dtype, 1e-6)))  # (classes,)
        points = x.movedim(1, -1)  # (N, *S, 1 + C)
        alpha = points[..., 1:] @ w[:, 1:].T - points[..., :1] * w[:, 0]  # <x, w>_L, (N, *S, classes)
        distance = torch.asinh(sqrt_k * alpha / w_norm) / sqrt_k
        return (w_norm * distance).movedim(-1, 1)  # (N, classes, *S)

    def extra_repr(self) -> str:
        return f"{self.channels}, {self.classes}, k={self.k}"
