"""Locality and weight sharing (S72, locality-sample-complexity): the DSD task, a locally connected layer, and the
experiment that trains an LCN, a CNN and an FCN on growing samples.

DSD (Dynamic Signal Distribution): an input of ``k`` patches of dimension ``d``; a fixed unit signal ``w*`` in
``R^d`` is added, times the label ``y = ±1``, to one patch chosen at random; everything else is Gaussian
noise. S72 proves a CNN needs O(k + d) samples, an LCN Ω(kd) and an FCN Ω(k²d).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.registry import ANALYSES

__all__ = [
    "dsd_task",
    "LocallyConnected2d",
    "dsd_models",
    "SampleComplexity",
    "sample_complexity",
    "sample_complexity_png",
]


def dsd_task(
    n: int, k: int, d: int, *, signal: float = 3.0, noise: float = 1.0, seed: int = 0, w_star: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` DSD samples: ``(x (n, 1, 1, k·d), y (n,) in {0, 1}, w* (d,))``; patch ``j`` is ``x[..., j·d:(j+1)·d]``."""
    for value, what in ((n, "n"), (k, "k"), (d, "d")):
        check_int(value, what, "dsd_task")
    generator = torch.Generator().manual_seed(seed)
    if w_star is None:
        w_star = torch.randn(d, generator=generator)
        w_star = w_star / w_star.norm()
    signs = torch.randint(0, 2, (n,), generator=generator)
    where = torch.randint(0, k, (n,), generator=generator)
    x = noise * torch.randn(n, k, d, generator=generator)  # (n, k patches, d)
    x[torch.arange(n), where] += signal * (2.0 * signs - 1.0).unsqueeze(1) * w_star
    return x.reshape(n, 1, 1, k * d), signs, w_star


class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: every output position has its own kernel.

    ``(N, C_in, H, W) → (N, C_out, H', W')`` for the fixed ``input_size`` (H, W). Weight ``(H'·W', C_out,
    C_in·kh·kw)``, bias ``(C_out, H', W')``. :meth:`tie` copies one convolution's kernel to every position, after
    which the layer equals that convolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_size: tuple[int, int],
        kernel_size: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0),
        bias: bool = True,
    ) -> None:
        super().__init__()
        name = "LocallyConnected2d"
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)
        out = [
            (s + 2 * p - kk) // st + 1 for s, p, kk, st in zip(input_size, padding, kernel_size, stride, strict=True)
        ]
        if min(out) < 1:
            raise ValueError(
                f"{name}: kernel {kernel_size} does not fit the input {tuple(input_size)} padded by {padding}"
            )
        self.input_size, self.output_size = tuple(input_size), tuple(out)
        fan_in = check_int(in_channels, "in_channels", name) * kernel_size[0] * kernel_size[1]
        self.weight = nn.Parameter(
            torch.randn(out[0] * out[1], check_int(out_channels, "out_channels", name), fan_in) / fan_in**0.5
        )
        self.bias = nn.Parameter(torch.zeros(out_channels, *out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(
                f"LocallyConnected2d: expected (N, C, {self.input_size[0]}, {self.input_size[1]}), got {tuple(x.shape)}"
            )
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (N, C_in·kh·kw, L)
        out = torch.einsum("ncl,loc->nol", patches, self.weight)  # (N, C_out, L)
        out = out.reshape(x.shape[0], -1, *self.output_size)  # (N, C_out, H', W')
        return out if self.bias is None else out + self.bias

    @torch.no_grad()
    def tie(self, conv: nn.Conv2d) -> LocallyConnected2d:
        """Give every position ``conv``'s kernel and bias (the weight sharing a CNN has)."""
        self.weight.copy_(conv.weight.reshape(conv.out_channels, -1).expand_as(self.weight))
        if self.bias is not None and conv.bias is not None:
            self.bias.copy_(conv.bias.view(-1, 1, 1).expand_as(self.bias))
        return self


class _PatchNet(nn.Module):
    def __init__(self, layer: nn.Module, width: int) -> None:
        super().__init__()
        self.layer, self.head = layer, nn.Linear(width, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.relu(self.layer(x)).sum(dim=(2, 3)))  # (N, width): pooled over patches


class _FullyConnected(nn.Module):
    def __init__(self, inputs: int, width: int) -> None:
        super().__init__()
        self.layer, self.head = nn.Linear(inputs, width), nn.Linear(width, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(F.relu(self.layer(x.flatten(1))))


def dsd_models(k: int, d: int, width: int = 8) -> dict[str, nn.Module]:
    """The three learners of S72 for DSD: a CNN (one kernel of size d, stride d), an LCN (its unshared twin) and
    an FCN (one dense layer of ``width·k`` units)."""
    return {
        "CNN": _PatchNet(nn.Conv2d(1, width, (1, d), stride=(1, d)), width),
        "LCN": _PatchNet(LocallyConnected2d(1, width, (1, k * d), (1, d), stride=(1, d)), width),
        "FCN": _FullyConnected(k * d, width * k),
    }


@dataclass(frozen=True)
class SampleComplexity:
    """Test error of each learner (rows) at each training-set size (columns)."""

    sizes: tuple[int, ...]
    errors: dict[str, tuple[float, ...]]

    def rows(self) -> list[tuple[object, ...]]:
        return [(name, *errors) for name, errors in self.errors.items()]


def _fit(model: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()


@ANALYSES.register(
    "locality_sample_complexity",
    kind="analysis",
    papers=("locality-sample-complexity",),
    summary="LCN, CNN and FCN test error against sample size on the DSD task (S72)",
)
def sample_complexity(
    k: int = 8, d: int = 8, sizes: Sequence[int] = (16, 32, 64, 128, 256), *, test: int = 2000, steps: int = 200,
    lr: float = 0.01, seed: int = 0, progress: bool = False,
) -> SampleComplexity:  # fmt: skip
    """Train CNN, LCN and FCN on ``sizes`` DSD samples (full-batch Adam, ``steps`` steps) and measure test error."""
    check_number(lr, "lr", "sample_complexity")
    _, _, w_star = dsd_task(1, k, d, seed=seed)
    x_test, y_test, _ = dsd_task(test, k, d, seed=seed + 1, w_star=w_star)
    errors: dict[str, list[float]] = {"CNN": [], "LCN": [], "FCN": []}
    iterator = list(sizes)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="sample sizes")
    for n in iterator:
        x, y, _ = dsd_task(check_int(n, "size", "sample_complexity"), k, d, seed=seed + 2 + n, w_star=w_star)
        torch.manual_seed(seed)
        for name, model in dsd_models(k, d).items():
            _fit(model, x, y, steps, lr)
            with torch.no_grad():
                errors[name].append(float((model(x_test).argmax(1) != y_test).float().mean()))
    return SampleComplexity(tuple(sizes), {name: tuple(e) for name, e in errors.items()})


def sample_complexity_png(result: SampleComplexity) -> bytes:
    """Test error against training-set size, one line per learner (log x axis)."""
    from convzoo.interpret.report import plot_png

    def draw(axes) -> None:
        for name, errors in result.errors.items():
            axes.plot(result.sizes, errors, marker="o", label=name)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("training samples")
        axes.set_ylabel("test error")
        axes.legend()

    return plot_png(draw)
