"""Suite ``binary``: the packed XNOR 3×3 conv (S8 XNOR-Net) against fp32 and int8 convs, and XNOR ResNet-18.

Per ResNet-18 stage shape (64@56², 128@28², 256@14², 512@7²) and batch (1 and 8), three pairs:

- packed XNOR conv vs the fp32 3×3 conv (oneDNN);
- packed XNOR conv vs torch's int8 quantized 3×3 conv (``torch.ao.nn.quantized.Conv2d``, x86 engine,
  per-channel weights, per-tensor activations). Both sides take float input and return float output, so each
  pays for its own input conversion: packing the signs (and the K map) for XNOR, ``quantize_per_tensor`` and
  ``dequantize`` for int8 — the per-layer cost in a network that keeps float activations between layers,
  as XNOR-Net does (BN → BinActiv → BinConv);
- packed XNOR conv on the native kernel vs the pure-PyTorch packed path (what runs without a compiler);

and end to end, ``binarize``d XNOR ResNet-18 vs fp32 ResNet-18 at 224², batch 1 and 8, both in PyTorch's default
layout and both channels-last (``binarize(..., channels_last=True, fold_bn=True)``: the XNOR model's deploy form
also folds the BN before each binary conv into its packing; PyTorch's CPU max pooling is many times faster in
channels-last, which flatters neither side). "Packed XNOR" runs
the native kernel (``convzoo.kernels.binary_native``) when it is built, the pure-PyTorch path otherwise; the
side's label says which.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from convzoo.benchmarks._shapes import QUICK, RESNET18, feature_map
from convzoo.deploy.binarize import binarize
from convzoo.deploy.packed_binary import PackedBinaryConv
from convzoo.models import create_model
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import MODELS, SUITES

__all__ = ["binary_cases", "Int8Conv"]


class Int8Conv(nn.Module):
    """Float in, float out around torch's int8 conv: quantize (per tensor) → quantized conv → dequantize.

    Weights are quantised per output channel (symmetric int8), the input per tensor (quint8, scale from the
    input's range at construction) and the output per tensor (scale from the float conv's output range).
    The input uses 7 of the 8 bits (``reduce_range``, as PyTorch's x86 qconfig does): CPUs without VNNI
    multiply u8 × s8 pairs into saturating int16 sums, and a full 8-bit input overflows them (seen with
    ``ONEDNN_MAX_CPU_ISA=AVX2``: errors of 20 % of the output range).
    """

    def __init__(self, conv: nn.Conv2d, example: Tensor) -> None:
        super().__init__()
        from torch.ao.nn.quantized import Conv2d as QuantizedConv2d

        torch.backends.quantized.engine = "x86"
        weight = conv.weight.detach()
        scales = weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-8) / 127
        zeros = torch.zeros(weight.shape[0], dtype=torch.int64)
        qweight = torch.quantize_per_channel(weight, scales, zeros, 0, torch.qint8)
        with torch.no_grad():
            reference = conv(example)
        self.input_scale = float(example.abs().max()) / 63  # 7-bit range around zero point 64
        self.conv = QuantizedConv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None
        )
        self.conv.set_weight_bias(qweight, None if conv.bias is None else conv.bias.detach())
        self.conv.scale = float(reference.abs().max()) / 127
        self.conv.zero_point = 128

    def forward(self, x: Tensor) -> Tensor:
        quantized = torch.quantize_per_tensor(x, self.input_scale, 64, torch.quint8)
        return self.conv(quantized).dequantize()


def _packed(channels: int) -> PackedBinaryConv:
    binary = create_op("binary", channels, channels, 3, bias=False, mode="xnor")
    return PackedBinaryConv.from_binary(binary).eval()


def _versus_fp32(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    return (
        _packed(channels),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval(),
        feature_map(batch, channels, side),
    )


def _versus_int8(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    x = feature_map(batch, channels, side)
    dense = nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval()
    return _packed(channels), Int8Conv(dense, x).eval(), x


def _versus_torch_path(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    native = _packed(channels)
    fallback = _packed(channels)
    fallback.load_state_dict(native.state_dict())
    fallback.use_native = False
    return native, fallback, feature_map(batch, channels, side)


def _end_to_end(batch: int, quick: bool, channels_last: bool) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)

    def build(name: str) -> nn.Module:
        return create_model(name, **(MODELS.get(name).info.test_cfg if quick else {})).eval()

    xnor = binarize(build("xnor_resnet18"), channels_last=channels_last, fold_bn=channels_last)
    dense = build("resnet18")
    if channels_last:
        dense = dense.to(memory_format=torch.channels_last)
    side = 32 if quick else 224
    return xnor, dense, torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(0))


def _label(form: str) -> str:
    probe = PackedBinaryConv(1, 1, (3, 3), (1, 1))
    return f"{form} ({probe.path})"


@SUITES.register(
    "binary",
    kind="suite",
    papers=("xnor-net",),
    summary="packed XNOR 3×3 conv vs fp32 and int8 convs at ResNet-18 shapes; XNOR ResNet-18 vs fp32 ResNet-18",
)
def binary_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Per ResNet-18 stage shape and batch (1 and 8; 1 in quick mode): XNOR (A) vs fp32, int8 and the
    pure-PyTorch packed path (B); then XNOR ResNet-18 (A) vs ResNet-18 (B) end to end."""
    batches = (batch,) if batch else ((1,) if quick else (1, 8))
    shapes = QUICK if quick else RESNET18
    packed = _label("packed XNOR 3×3")
    cases = []
    for n in batches:
        for channels, side in shapes:
            shape = f"{n}x{channels}x{side}x{side}"
            cases.append(Case(f"{shape} fp32", packed, "fp32 3×3 conv", partial(_versus_fp32, channels, side, n)))
            cases.append(Case(f"{shape} int8", packed, "int8 3×3 conv", partial(_versus_int8, channels, side, n)))
            cases.append(
                Case(
                    f"{shape} packed-torch",
                    packed,
                    "packed XNOR 3×3 (packed-torch)",
                    partial(_versus_torch_path, channels, side, n),
                    same_output=True,
                )
            )
    side = 32 if quick else 224
    for n in batches:
        for channels_last in (False, True):
            layout = " channels-last" if channels_last else ""
            cases.append(
                Case(
                    f"{n}x3x{side}² resnet18{layout}",
                    _label("XNOR ResNet-18") + (" channels-last, BN folded" if channels_last else ""),
                    "fp32 ResNet-18" + layout,
                    partial(_end_to_end, n, quick, channels_last),
                )
            )
    return cases
