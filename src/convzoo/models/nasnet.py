"""NASNet-A (S26, Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition").

The searched NASNet-A normal and reduction cells (paper Fig. 4) stacked as the ImageNet architecture (Fig. 2):
a 3×3/2 conv stem, two reduction cells as the ImageNet stem, then three stages of N normal cells separated by
reduction cells, each reduction doubling the filters; ScheduledDropPath (§3: each path in a cell dropped with a
probability that grows linearly over training) regularises every non-identity operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int, check_number
from convzoo.layers.drop_path import drop_path
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, modules_inside_ops, register_variant

__all__ = ["NASNetConfig", "NASNetA", "ScheduledDropPath", "SameConv2d", "SamePool2d", "PADDINGS", "same_pads"]


@dataclass(frozen=True)
class NASNetConfig:
    """One NASNet-A network, named "N @ P" in the paper (N normal cells per stage, P penultimate filters).

    ``num_cells``: normal cells per stage (N). ``filters``: the first stage's cell filters F (P = 24 F: the last
    stage's cells concatenate 6 states of 4 F). ``stem_filters``: the 3×3/2 stem conv. ``drop_path_rate``: the
    ScheduledDropPath rate of the last cell at the end of training (1 − ``drop_path_keep_prob``; the official
    mobile config trains without it, 0.0, the large one with 0.3). ``drop_rate``: dropout before the classifier
    (0.5, the official ``dense_dropout_keep_prob``). ``eps``: BatchNorm epsilon (1e-3, TensorFlow's).
    ``skip_reduction_layer_input``: the official flag (False for Mobile, True for Large): the normal cell after
    each in-stage reduction cell reads, as its second input, the reduction cell's second input instead of
    the reduction cell's first (the same shapes, so the parameter count does not change).
    ``padding``: how the stride-2 separable convs and pools pad, one of :data:`PADDINGS` — "symmetric"
    (k // 2 on each side; the default), "same" (TensorFlow's SAME, as the official code: per input, the odd
    pixel of padding at an even side goes after; average pools count only the pixels inside) or "timm" (timm's
    ``nasnetalarge`` port: SAME, but its stride-2 average pools count the zero padding). The three agree at
    stride 1, and "same" equals "symmetric" wherever the stride-2 inputs have odd sides (331² input: all but
    the 42² input of the first in-stage reduction cell).
    """

    num_cells: int = 4
    filters: int = 44
    stem_filters: int = 32
    drop_path_rate: float = 0.0
    drop_rate: float = 0.5
    eps: float = 1e-3
    skip_reduction_layer_input: bool = False
    padding: str = "symmetric"


PADDINGS = ("symmetric", "same", "timm")


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of one axis: ``(before, after)`` so that the output has ⌈size / stride⌉ pixels,
    the odd pixel after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: Tensor, kernel: int, stride: int, value: float = 0.0) -> Tensor:
    top, bottom = same_pads(x.shape[-2], kernel, stride)
    left, right = same_pads(x.shape[-1], kernel, stride)
    return F.pad(x, (left, right, top, bottom), value=value)  # (N, C, H + top + bottom, W + left + right)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (no built-in padding) with TensorFlow's SAME padding computed per input:
    ``(N, C_in, H, W) → (N, C_out, ⌈H/s⌉, ⌈W/s⌉)``."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(_pad_same(x, self.kernel_size[0], self.stride[0]))


class SamePool2d(nn.Module):
    """k×k max or average pool with TensorFlow's SAME padding: ``(N, C, H, W) → (N, C, ⌈H/s⌉, ⌈W/s⌉)``.

    The max pool never picks the padding; the average pool divides by the pixels inside the image, or, with
    ``count_padding`` (timm's ``AvgPool2dSame``), by k² (the zero padding counted).
    """

    def __init__(self, kind: str, kernel: int, stride: int, count_padding: bool = False) -> None:
        super().__init__()
        self.kind, self.kernel, self.stride, self.count_padding = kind, kernel, stride, count_padding

    def forward(self, x: Tensor) -> Tensor:
        k, s = self.kernel, self.stride
        if self.kind == "max":
            return F.max_pool2d(_pad_same(x, k, s, float("-inf")), k, s)
        total = F.avg_pool2d(_pad_same(x, k, s), k, s)  # window sums / k²
        if self.count_padding:
            return total
        inside = F.avg_pool2d(_pad_same(x.new_ones(1, 1, *x.shape[-2:]), k, s), k, s)  # (1, 1, H', W'): n / k²
        return total / inside

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}, count_padding={self.count_padding}"


class ScheduledDropPath(nn.Module):
    """ScheduledDropPath (S26 §3): drop the path for whole samples with probability ``rate · layer_ratio · t``.

    ``layer_ratio`` = (cell index + 1) / (number of cells, the stem's and reduction cells counted), so deeper
    cells drop more; ``t`` = ``progress`` ∈ [0, 1], the fraction of training done (clipped at 1), set through
    :meth:`NASNetA.set_training_progress` (``convzoo.train`` calls it before every step). The kept samples are
    scaled by 1 / (1 − p). Identity in eval mode.
    """

    def __init__(self, rate: float, layer_ratio: float) -> None:
        super().__init__()
        self.rate = rate
        self.layer_ratio = layer_ratio
        self.progress = 0.0

    @property
    def p(self) -> float:
        """The drop probability now: ``rate · layer_ratio · min(1, progress)``."""
        return self.rate * self.layer_ratio * min(1.0, self.progress)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, layer_ratio={self.layer_ratio:.4f}, progress={self.progress}"


class _Ctx:
    """What every cell of one network shares: BN eps, the ``op=`` replacement, ScheduledDropPath's rate and count."""

    def __init__(self, cfg: NASNetConfig, op: str | None, total_cells: int) -> None:
        self.eps, self.op, self.rate, self.total_cells = cfg.eps, op, cfg.drop_path_rate, total_cells

    def bn(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.eps)


class ReluConvBN(nn.Sequential):
    """ReLU → 1×1 conv (no bias) → BN: how a cell adapts an input to its filter count."""

    def __init__(self, c_in: int, c_out: int, ctx: _Ctx) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), ctx.bn(c_out))


class FactorizedReduction(nn.Module):
    """ReLU → two stride-2 1×1 convs to C_out/2 each, the second on the input shifted by one pixel → concat → BN.

    Adapts the previous cell's output when it is at twice the resolution: ``(N, C_in, H, W) → (N, C_out, ⌈H/2⌉,
    ⌈W/2⌉)``. The shifted path reads pixels (1, 3, 5, ...) with a zero row/column past the end.
    """

    def __init__(self, c_in: int, c_out: int, ctx: _Ctx) -> None:
        super().__init__()
        self.path_1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.path_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, bias=False)
        self.bn = ctx.bn(c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[..., 1:, 1:]  # (N, C, H, W): x[i + 1, j + 1], zero past the end
        a = self.path_1(x[..., ::2, ::2])
        b = self.path_2(shifted[..., ::2, ::2])
        return self.bn(torch.cat([a, b], 1))  # (N, C_out, ⌈H/2⌉, ⌈W/2⌉)


class SepStack(nn.Module):
    """Two separable convs, each ReLU → k×k depthwise → 1×1 → BN (the paper's "sep k×k"); the first carries the stride.

    ``C_in → C_out → C_out``; ``op=`` replaces each depthwise k×k conv with ``create_op(op, C, C, k, stride)``.
    """

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, ctx: _Ctx, position: str) -> None:
        super().__init__()
        self.stride = stride
        layers: list[nn.Module] = []
        for i, (a, b, s) in enumerate(((c_in, c_out, stride), (c_out, c_out, 1))):

            def default(a: int = a, s: int = s) -> nn.Module:
                return nn.Conv2d(a, a, k, s, k // 2, groups=a, bias=False)

            depthwise = make_mixer(f"{position}.{i}", ctx.op, default, a, a, k, s)
            layers += [nn.ReLU(), depthwise, nn.Conv2d(a, b, 1, bias=False), ctx.bn(b)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _max_pool(stride: int) -> nn.Module:
    return nn.MaxPool2d(3, stride, 1)


def _avg_pool(stride: int) -> nn.Module:
    return nn.AvgPool2d(3, stride, 1, count_include_pad=False)  # TensorFlow's SAME average excludes the padding


def _pool(kind: str, stride: int, mode: str) -> nn.Module:
    """A 3×3 pool padded as ``mode`` says (stride 1: symmetric in every mode, SAME's own padding there)."""
    if mode == "symmetric" or stride == 1:
        return _max_pool(stride) if kind == "max" else _avg_pool(stride)
    return SamePool2d(kind, 3, stride, count_padding=mode == "timm" and kind == "avg")


def _depthwise(conv: nn.Conv2d, mode: str) -> nn.Conv2d:
    """``conv`` (a depthwise k×k) padded as ``mode`` says: symmetric k // 2, or SAME; the same weight tensor."""
    same = mode != "symmetric"
    if isinstance(conv, SameConv2d) == same:
        return conv
    k, s = conv.kernel_size[0], conv.stride[0]
    cls = SameConv2d if same else nn.Conv2d
    new = cls(conv.in_channels, conv.out_channels, k, s, 0 if same else k // 2, groups=conv.groups, bias=False)
    new.weight = conv.weight
    return new


class _Cell(nn.Module):
    """Shared by both cells: adapt the two inputs to ``filters`` channels, then run the five combinations.

    ``forward(cur, prev) → out``. ``cur`` (the last cell's output) goes through ReLU → 1×1 → BN; ``prev`` (the
    one before) through a factorised reduction when it is at twice the resolution, ReLU → 1×1 → BN when its
    channels differ, and is used as it is otherwise (``prev=None``: the first stem cell, whose ``prev`` is
    its own raw input, the stem conv's output).
    """

    def __init__(self, cur_channels: int, prev_channels: int | None, prev_reduced: bool, filters: int, ctx: _Ctx):
        super().__init__()
        self.conv_cur = ReluConvBN(cur_channels, filters, ctx)
        self.adapt_prev: nn.Module
        if prev_channels is None:
            self.adapt_prev = nn.Identity()
        elif prev_reduced:
            self.adapt_prev = FactorizedReduction(prev_channels, filters, ctx)
        elif prev_channels != filters:
            self.adapt_prev = ReluConvBN(prev_channels, filters, ctx)
        else:
            self.adapt_prev = nn.Identity()
        self.raw_prev = prev_channels is None

    def inputs(self, cur: Tensor, prev: Tensor | None) -> tuple[Tensor, Tensor]:
        h0 = self.conv_cur(cur)
        h1 = cur if self.raw_prev else self.adapt_prev(prev)
        return h0, h1


class NormalCell(_Cell):
    """NASNet-A normal cell (Fig. 4 left): ``(N, C, H, W), (N, C', H', W') → (N, 6 F, H, W)``.

    With h0 = adapted ``cur``, h1 = adapted ``prev``:
    c0 = sep5(h0) + sep3(h1); c1 = sep5(h1) + sep3(h1); c2 = avg3(h0) + h1; c3 = avg3(h1) + avg3(h1);
    c4 = sep3(h0) + h0; output concat[h1, c0, c1, c2, c3, c4]. ScheduledDropPath follows every operation
    except the identities.
    """

    def __init__(self, cur_channels, prev_channels, prev_reduced, filters, ctx: _Ctx, index: int, position: str):
        super().__init__(cur_channels, prev_channels, prev_reduced, filters, ctx)
        f = filters
        self.c0_left, self.c0_right = (
            SepStack(f, f, 5, 1, ctx, f"{position}.c0_left"),
            SepStack(f, f, 3, 1, ctx, f"{position}.c0_right"),
        )
        self.c1_left, self.c1_right = (
            SepStack(f, f, 5, 1, ctx, f"{position}.c1_left"),
            SepStack(f, f, 3, 1, ctx, f"{position}.c1_right"),
        )
        self.c2_left = _avg_pool(1)
        self.c3_left, self.c3_right = _avg_pool(1), _avg_pool(1)
        self.c4_left = SepStack(f, f, 3, 1, ctx, f"{position}.c4_left")
        self.drop = ScheduledDropPath(ctx.rate, (index + 1) / ctx.total_cells)
        self.out_channels = 6 * f

    def forward(self, cur: Tensor, prev: Tensor | None) -> Tensor:
        h0, h1 = self.inputs(cur, prev)
        d = self.drop
        c0 = d(self.c0_left(h0)) + d(self.c0_right(h1))
        c1 = d(self.c1_left(h1)) + d(self.c1_right(h1))
        c2 = d(self.c2_left(h0)) + h1
        c3 = d(self.c3_left(h1)) + d(self.c3_right(h1))
        c4 = d(self.c4_left(h0)) + h0
        return torch.cat([h1, c0, c1, c2, c3, c4], 1)  # (N, 6 F, H, W)


class ReductionCell(_Cell):
    """NASNet-A reduction cell (Fig. 4 right): ``(N, C, H, W), prev → (N, 4 F, ⌈H/2⌉, ⌈W/2⌉)``.

    c0 = sep5/2(h0) + sep7/2(h1); c1 = max3/2(h0) + sep7/2(h1); c2 = avg3/2(h0) + sep5/2(h1);
    c3 = avg3(c0) + c1; c4 = sep3(c0) + max3/2(h0); output concat[c1, c2, c3, c4].
    """

    def __init__(self, cur_channels, prev_channels, prev_reduced, filters, ctx: _Ctx, index: int, position: str):
        super().__init__(cur_channels, prev_channels, prev_reduced, filters, ctx)
        f, p = filters, filters if prev_channels is not None else cur_channels
        self.c0_left = SepStack(f, f, 5, 2, ctx, f"{position}.c0_left")
        self.c0_right = SepStack(p, f, 7, 2, ctx, f"{position}.c0_right")
        self.c1_left = _max_pool(2)
        self.c1_right = SepStack(p, f, 7, 2, ctx, f"{position}.c1_right")
        self.c2_left = _avg_pool(2)
        self.c2_right = SepStack(p, f, 5, 2, ctx, f"{position}.c2_right")
        self.c3_right = _avg_pool(1)
        self.c4_left = SepStack(f, f, 3, 1, ctx, f"{position}.c4_left")
        self.c4_right = _max_pool(2)
        self.drop = ScheduledDropPath(ctx.rate, (index + 1) / ctx.total_cells)
        self.out_channels = 4 * f

    def forward(self, cur: Tensor, prev: Tensor | None) -> Tensor:
        h0, h1 = self.inputs(cur, prev)
        d = self.drop
        c0 = d(self.c0_left(h0)) + d(self.c0_right(h1))
        c1 = d(self.c1_left(h0)) + d(self.c1_right(h1))
        c2 = d(self.c2_left(h0)) + d(self.c2_right(h1))
        c3 = d(self.c3_right(c0)) + c1
        c4 = d(self.c4_left(c0)) + d(self.c4_right(h0))
        return torch.cat([c1, c2, c3, c4], 1)  # (N, 4 F, ⌈H/2⌉, ⌈W/2⌉)


class NASNetA(ConvNet):
    """NASNet-A (S26, "Learning Transferable Architectures for Scalable Image Recognition"), ImageNet form.

    ``stem``: 3×3/2 conv (unpadded, no bias) → BN. Stages (``features_only``; each cell reads the two previous
    cells' outputs, across stage borders too): the two stem reduction cells' first (F/4 filters, stride 4,
    F channels), then the second (F/2) and N normal cells (F: stride 8, 6 F channels), a reduction cell and N
    normal cells (2 F: stride 16, 12 F), a reduction cell and N normal cells (4 F: stride 32, 24 F); then ReLU,
    global average pool, dropout and the classifier. NASNet-A Mobile is 4 @ 1056 (N = 4, F = 44, 32 stem filters).

    Follows the official TF-Slim ``nasnet`` code: BN eps 1e-3, no conv biases, average pools that exclude the
    padding, ScheduledDropPath on every non-identity operation with cells numbered over all 3 N + 4 cells.
    Departures: by default convolutions and pools pad symmetrically (k // 2), which is TensorFlow's SAME for
    odd input sizes but samples one pixel earlier for even ones at stride 2 (``padding="same"`` follows the
    official code, ``"timm"`` timm's port; :meth:`NASNetA.set_padding` switches a built model); the auxiliary
    classifier of the official training setup is not built (the published counts exclude it).

    ``op=`` replaces each separable conv's depthwise k×k (3, 5 or 7, stride 1 or 2) with
    ``create_op(op, C, C, k, stride)``.
    """

    def __init__(self, cfg: NASNetConfig, *, num_classes: int = 1000, in_chans: int = 3, op: str | None = None):
        super().__init__()
        n = check_int(cfg.num_cells, "num_cells", "nasnet")
        f = check_int(cfg.filters, "filters", "nasnet", low=4)
        if f % 4:
            raise ValueError(f"nasnet: filters must be a multiple of 4 (the stem cells use F/4), got {f}")
        check_int(cfg.stem_filters, "stem_filters", "nasnet")
        check_number(cfg.drop_path_rate, "drop_path_rate", "nasnet", low=0.0, low_open=False, high=1.0, high_open=True)
        check_number(cfg.drop_rate, "drop_rate", "nasnet", low=0.0, low_open=False, high=1.0, high_open=True)
        check_choice(cfg.padding, PADDINGS, "padding", "nasnet")
        if op is not None and cfg.padding != "symmetric":
            raise ValueError(f"nasnet: padding {cfg.padding!r} needs the default depthwise convs, not op={op!r}")
        ctx = _Ctx(cfg, op, total_cells=3 * n + 4)
        s = cfg.stem_filters
        self.stem = nn.Sequential(nn.Conv2d(in_chans, s, 3, 2, bias=False), ctx.bn(s))
        index = 0
        self.skip_cells: set[str] = set()  # the normal cells that follow an in-stage reduction cell
        stem0 = ReductionCell(s, None, False, f // 4, ctx, index, "stages.0.0")
        index += 1
        stem1 = ReductionCell(stem0.out_channels, s, True, f // 2, ctx, index, "stages.1.0")
        index += 1
        stages: list[list[_Cell]] = [[stem0], [stem1]]
        # (channels, reduced?) of the last two outputs: prev is stem0 at twice stem1's resolution
        prev, cur = (stem0.out_channels, True), (stem1.out_channels, False)
        for stage in range(3):
            filters = f * 2**stage
            if stage > 0:
                cell = ReductionCell(cur[0], prev[0], False, filters, ctx, index, f"stages.{stage + 1}.0")
                stages.append([cell])
                index += 1
                if cfg.skip_reduction_layer_input:  # the next cell reads the reduction cell's second input
                    self.skip_cells.add(f"{stage + 1}.1")
                    prev, cur = (prev[0], True), (cell.out_channels, False)
                else:
                    prev, cur = (cur[0], True), (cell.out_channels, False)
            for _ in range(n):
                position = f"stages.{stage + 1}.{len(stages[-1])}"
                cell = NormalCell(cur[0], prev[0], prev[1], filters, ctx, index, position)
                stages[-1].append(cell)
                index += 1
                prev, cur = (cur[0], False), (cell.out_channels, False)
        self.stages = nn.ModuleList(nn.ModuleList(cells) for cells in stages)
        self.feature_info = [
            FeatureInfo(f"stages.{i}", c, r)
            for i, (c, r) in enumerate(((f, 4), (6 * f, 8), (12 * f, 16), (24 * f, 32)))
        ]
        self.final_norm = nn.ReLU()
        self.head = ClassifierHead(24 * f, num_classes, drop=cfg.drop_rate)
        self._init_weights()
        self.set_padding(cfg.padding)

    def set_padding(self, mode: str) -> list[str]:
        """Pad every stride-2 separable conv and pool as ``mode`` says (one of :data:`PADDINGS`, see
        :class:`NASNetConfig`), in place: the modules are rebuilt around the same parameters. Returns what
        changed. A stride-2 depthwise conv replaced through ``op=`` only pads symmetrically."""
        check_choice(mode, PADDINGS, "padding", self.name)
        stacks = [(n, m) for n, m in self.named_modules() if isinstance(m, SepStack) and m.stride == 2]
        for name, stack in stacks:
            if mode != "symmetric" and type(stack.body[1]) not in (nn.Conv2d, SameConv2d):
                raise ValueError(
                    f"{self.name}: padding {mode!r} needs the default depthwise conv at {name}.body.1, "
                    f"not the op= {type(stack.body[1]).__name__}"
                )
        changed = []
        for name, stack in stacks:
            conv = stack.body[1]
            if type(conv) in (nn.Conv2d, SameConv2d) and type(new := _depthwise(conv, mode)) is not type(conv):
                stack.body[1] = new
                changed.append(f"{name}.body.1: {type(conv).__name__} -> {type(new).__name__}")
        for name, cell in self.named_modules():
            if isinstance(cell, ReductionCell):
                for part, kind in (("c1_left", "max"), ("c2_left", "avg"), ("c4_right", "max")):
                    old, new = getattr(cell, part), _pool(kind, 2, mode)
                    if repr(old) != repr(new):  # another kind, padding or count
                        setattr(cell, part, new)
                        changed.append(f"{name}.{part}: {old} -> {new}")
        self.padding = mode
        return changed

    def _init_weights(self) -> None:
        skip = modules_inside_ops(self)  # a replacement operator keeps its own initialisation
        for m in self.modules():
            if id(m) in skip:
                continue
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        cur = self.stem(x)
        prev: Tensor | None = None
        before: Tensor | None = None  # the second input of the last reduction cell
        outputs = []
        for i, stage in enumerate(self.stages):
            for j, cell in enumerate(stage):
                second = before if f"{i}.{j}" in self.skip_cells else prev
                if isinstance(cell, ReductionCell):
                    before = prev
                cur, prev = cell(cur, second), cur
            outputs.append(cur)
        return outputs

    def set_training_progress(self, fraction: float) -> None:
        """Set ScheduledDropPath's ``progress`` (training steps done / total steps) in every cell."""
        check_number(fraction, "fraction", self.name, low=0.0, low_open=False)
        for m in self.modules():
            if isinstance(m, ScheduledDropPath):
                m.progress = float(fraction)


register_variant(
    "nasnet_a_mobile",
    NASNetA,
    NASNetConfig(),
    papers=("nasnet",),
    params=5_300_000,
    params_source="S26 Table 2, NASNet-A (4 @ 1056): 5.3M parameters, 564M mult-adds",
    summary="NASNet-A Mobile 4 @ 1056 (S26, Learning Transferable Architectures): searched cells, ScheduledDropPath",
    test_cfg={"num_cells": 1, "filters": 16},
)

register_variant(
    "nasnet_a_large",
    NASNetA,
    NASNetConfig(num_cells=6, filters=168, stem_filters=96, drop_path_rate=0.3, skip_reduction_layer_input=True),
    papers=("nasnet",),
    params=88_900_000,
    params_source="S26 Table 2, NASNet-A (6 @ 4032): 88.9M parameters, 23.8B mult-adds (timm nasnetalarge: 88,753,150)",
    input_size=(3, 331, 331),
    summary="NASNet-A Large 6 @ 4032 (S26, Learning Transferable Architectures), 331² input",
    test_cfg={"num_cells": 1, "filters": 16, "stem_filters": 8},
)
