"""HCNN Lorentz layers (S116): hyperboloid constraint, loop reference for the conv, BN identities, MLR geometry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.layers.lorentz import LorentzBatchNorm, LorentzConv, LorentzMLR


def _minkowski(x, y):
    """<x, y>_L over dim 1 of channels-first tensors (written here, independent of the module)."""
    return (x[:, 1:] * y[:, 1:]).sum(1) - x[:, 0] * y[:, 0]


def _points(n, c, *spatial, k=1.0, scale=0.7, seed=0):
    g = torch.Generator().manual_seed(seed)
    space = torch.randn(n, c, *spatial, generator=g, dtype=torch.float64) * scale
    time = torch.sqrt(1 / k + (space**2).sum(1, keepdim=True))
    return torch.cat([time, space], dim=1)  # (N, 1 + C, *S)


def _assert_on_hyperboloid(x, k):
    constraint = _minkowski(x.double(), x.double())
    # relative tolerance: the time coordinate can be large
    tolerance = (1e-9 if x.dtype == torch.float64 else 1e-5) * float(x[:, 0].detach().max()) ** 2
    torch.testing.assert_close(
        constraint.detach(), torch.full_like(constraint.detach(), -1 / k), rtol=0, atol=tolerance
    )
    assert (x[:, 0] > 0).all()


def _conv_reference(conv, x):
    """Per-output-pixel loop over the 2D patch: origin padding, direct concatenation, linear, time recomputed."""
    n, c, h, w = x.shape
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    ph, pw = kh // 2, kw // 2
    h_out, w_out = -(-h // sh), -(-w // sw)
    out = torch.zeros(n, conv.out_channels, h_out, w_out, dtype=x.dtype)
    o = torch.zeros(c, dtype=x.dtype)
    o[0] = 1 / math.sqrt(conv.k)
    for b in range(n):
        for i in range(h_out):
            for j in range(w_out):
                times, spaces = [], []
                for di in range(kh):
                    for dj in range(kw):
                        r, s = i * sh + di - ph, j * sw + dj - pw
                        point = x[b, :, r, s] if 0 <= r < h and 0 <= s < w else o
                        times.append(point[0])
                        spaces.append(point[1:])
                # the concatenated point satisfies -t^2 + sum |x_s|^2 = -1/k
                space = torch.cat(spaces)
                time = torch.sqrt(1 / conv.k + (space**2).sum())
                z = torch.cat([time.view(1), space])
                y_space = conv.linear.weight @ z + conv.linear.bias
                out[b, 0, i, j] = torch.sqrt(1 / conv.k + (y_space**2).sum())
                out[b, 1:, i, j] = y_space
    return out


@pytest.mark.parametrize(("stride", "k"), [(1, 1.0), (2, 0.5), (2, 2.0)])
def test_lorentz_conv_matches_loop_reference(stride, k):
    conv = LorentzConv(4, 5, 3, stride, k=k).double()
    x = _points(2, 3, 5, 6, k=k)
    torch.testing.assert_close(conv(x), _conv_reference(conv, x))


@pytest.mark.parametrize(
    ("dim", "stride", "dtype"), [(1, 1, torch.float64), (2, 2, torch.float32), (3, 2, torch.float64)]
)
def test_lorentz_layers_output_on_hyperboloid(dim, stride, dtype):
    k = 0.7
    conv = LorentzConv(4, 6, 3, stride, dim=dim, k=k).to(dtype)
    bn = LorentzBatchNorm(6, k=k).to(dtype)
    x = _points(2, 3, *(5,) * dim, k=k).to(dtype)
    y = conv(x)
    assert y.shape == (2, 6, *(-(-5 // stride),) * dim) and y.dtype == dtype
    _assert_on_hyperboloid(y, k)
    _assert_on_hyperboloid(bn(y), k)
    _assert_on_hyperboloid(bn.eval()(y), k)


def test_lorentz_batch_norm_identities():
    k = 1.5
    bn = LorentzBatchNorm(5, k=k, momentum=1.0).double()
    with torch.no_grad():
        bn.gamma.fill_(0.8)
        bn.beta_space.copy_(torch.tensor([0.3, -0.2, 0.5, 0.1]))
    x = _points(3, 4, 4, 5, k=k, scale=1.2)
    y = bn(x)
    _assert_on_hyperboloid(y, k)
    beta = torch.cat([torch.sqrt(1 / k + (bn.beta_space**2).sum()).view(1), bn.beta_space]).view(1, 5, 1, 1)
    mean = x.movedim(1, -1).reshape(-1, 5).mean(0)
    mean = mean / torch.sqrt(-k * (-(mean[0] ** 2) + (mean[1:] ** 2).sum()))  # the Lorentz centroid
    sigma = (torch.acosh(-k * _minkowski(mean.view(1, 5, 1, 1).expand_as(x), x)) / math.sqrt(k)).mean()
    # rescaling makes the mean geodesic distance to beta gamma·sigma/(sigma+eps) (exp, transport keep norms)
    distance = torch.acosh((-k * _minkowski(beta.expand_as(y), y)).clamp_min(1)) / math.sqrt(k)
    torch.testing.assert_close(distance.mean(), 0.8 * sigma / (sigma + bn.eps))
    # with momentum 1 the running centroid is the batch centroid: eval mode reproduces the training output
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.eval()(x), y)


def test_lorentz_batch_norm_centres_the_batch():
    """With gamma = sigma and beta = origin the batch centroid maps to the origin (log/exp at mu and o)."""
    k = 1.0
    bn = LorentzBatchNorm(4, k=k).double()
    x = _points(4, 3, 3, 3, k=k, scale=0.5, seed=2)
    y = bn(x)
    _assert_on_hyperboloid(y, k)
    # the tangent vectors at mu average to (almost) zero for a centroid, so outputs centre near the origin
    space_mean = y[:, 1:].mean(dim=(0, 2, 3))
    assert space_mean.abs().max() < 0.1


def test_small_stack_stays_on_the_hyperboloid_and_trains():
    k = 1.0
    layers = torch.nn.ModuleList(
        [
            LorentzConv(4, 7, 3, k=k),
            LorentzBatchNorm(7, k=k),
            LorentzConv(7, 9, 3, 2, k=k),
            LorentzBatchNorm(9, k=k),
        ]
    ).double()
    mlr = LorentzMLR(9, 3, k=k).double()
    x = _points(2, 3, 6, 6, k=k)
    for layer in layers:
        x = layer(x)
        _assert_on_hyperboloid(x, k)
    logits = mlr(x)
    assert logits.shape == (2, 3, 3, 3)
    F.cross_entropy(logits, torch.randint(0, 3, (2, 3, 3))).backward()
    for name, p in [*layers.named_parameters(), *mlr.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def _boost(n_space, direction, rapidity):
    """The Lorentz boost of the ambient space R^{1,n} along the unit space vector ``direction``."""
    b = torch.eye(1 + n_space, dtype=torch.float64)
    b[1:, 1:] += (math.cosh(rapidity) - 1) * torch.outer(direction, direction)
    b[0, 0] = math.cosh(rapidity)
    b[0, 1:] = math.sinh(rapidity) * direction
    b[1:, 0] = math.sinh(rapidity) * direction
    return b


def test_lorentz_mlr_is_the_signed_distance_to_the_class_hyperplane():
    """Build each class hyperplane by boosting the origin along z by a, then place points at known distances."""
    k, n = 0.8, 4
    mlr = LorentzMLR(1 + n, 2, k=k).double()
    g = torch.Generator().manual_seed(3)
    for c in range(2):
        a, z = mlr.a[c].item(), mlr.z[c].detach()
        boost = _boost(n, z / z.norm(), math.sqrt(k) * a)
        normal = boost @ torch.cat([torch.zeros(1, dtype=torch.float64), z])  # the tangent z moved to p_c
        unit = normal / torch.sqrt(-(normal[0] ** 2) + (normal[1:] ** 2).sum())
        for _ in range(5):
            # a random point q of the hyperplane: project a random point along the normal, rescale onto L
            y = torch.randn(1 + n, generator=g, dtype=torch.float64)
            y[0] = torch.sqrt(1 / k + (y[1:] ** 2).sum())
            inner = -y[0] * unit[0] + (y[1:] * unit[1:]).sum()
            q = y - inner * unit
            q = q / torch.sqrt(k * (q[0] ** 2 - (q[1:] ** 2).sum()))
            t = torch.randn((), generator=g, dtype=torch.float64).item() * 1.5
            # the geodesic from q along the unit normal meets the hyperplane orthogonally: distance |t|
            x = math.cosh(math.sqrt(k) * t) * q + math.sinh(math.sqrt(k) * t) / math.sqrt(k) * unit
            logits = mlr(x.view(1, 1 + n))
            norm = torch.sqrt(-(normal[0] ** 2) + (normal[1:] ** 2).sum())
            torch.testing.assert_close(logits[0, c], norm * t)


def test_lorentz_bad_arguments():
    with pytest.raises(ValueError, match=r"lorentz_conv: in_channels must be an int >= 2"):
        LorentzConv(1, 4)
    with pytest.raises(ValueError, match=r"lorentz_conv: kernel_size must be odd and positive"):
        LorentzConv(4, 4, 2)
    with pytest.raises(ValueError, match=r"lorentz_conv: k \(minus the curvature\) must be a positive number, got -1"):
        LorentzConv(4, 4, k=-1)
    with pytest.raises(ValueError, match=r"lorentz_conv: expected 4 channels \(time \+ 3 space\) in dim 1"):
        LorentzConv(4, 4)(torch.randn(1, 5, 3, 3))
    with pytest.raises(ValueError, match=r"lorentz_conv: expected a 4-d input"):
        LorentzConv(4, 4)(torch.randn(1, 4, 3))
    with pytest.raises(ValueError, match=r"lorentz_batch_norm: momentum must lie in \[0, 1\], got 2"):
        LorentzBatchNorm(4, momentum=2)
    with pytest.raises(ValueError, match=r"lorentz_mlr: classes must be a positive int, got 0"):
        LorentzMLR(4, 0)
