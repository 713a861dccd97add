"""What the audio families share: the ``audio`` task's registration and the conv-BN-ReLU blocks.

An ``audio`` model maps waveforms ``(N, 1, T)`` (float, [-1, 1]) to class logits ``(N, classes)``; the front end
that turns the waveform into the representation the network reads (the waveform itself, an STFT or a log-mel
spectrogram: :mod:`convzoo.layers.audio_frontend`) is the model's first module. Its config dataclass carries
``classes`` and ``sample_rate`` (and ``samples`` where the architecture depends on the clip length);
``create_model(name, classes=10, sample_rate=16000)`` builds another of the same variant.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from convzoo.models.registration import register_variant

__all__ = ["AUDIO_INPUT", "conv_bn_relu", "register_audio", "separable_bn_relu"]

AUDIO_INPUT = (1, 16000)  # one second at 16 kHz


def register_audio(
    name: str,
    family: type[nn.Module],
    config: Any,
    *,
    papers: tuple[str, ...],
    params: int | None,
    params_source: str,
    summary: str,
    input_size: tuple[int, ...] = AUDIO_INPUT,
    test_cfg: dict[str, Any] | None = None,
) -> None:
    """Register ``name`` as ``family(config)`` of kind ``"audio"``; keyword overrides replace config fields.

    ``params`` is the published count of the registered config (all parameters, BN affine included), ``None``
    where the paper gives none that this count can be compared with (``params_source`` says why).
    """
    register_variant(
        name,
        family,
        config,
        papers=papers,
        params=params,
        params_source=params_source,
        input_size=input_size,
        summary=summary,
        task="audio",
        takes_op=False,
        num_classes=config.classes,
        test_size=input_size[-1],
        test_cfg=test_cfg,
    )


def conv_bn_relu(
    dim: int, cin: int, cout: int, kernel: int | tuple[int, ...], stride: int | tuple[int, ...] = 1, **kw: Any
) -> nn.Sequential:
    """``Conv{dim}d`` (no bias, 'same' padding for odd kernels at stride 1) → BatchNorm → ReLU."""
    conv = (nn.Conv1d, nn.Conv2d)[dim - 1]
    norm = (nn.BatchNorm1d, nn.BatchNorm2d)[dim - 1]
    kernels = (kernel,) * dim if isinstance(kernel, int) else tuple(kernel)
    padding = kw.pop("padding", tuple(k // 2 for k in kernels))
    return nn.Sequential(conv(cin, cout, kernels, stride, padding, bias=False, **kw), norm(cout), nn.ReLU(inplace=True))


def separable_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    """Depthwise-separable 2-D conv (MobileNet): depthwise k×k → BN → ReLU → pointwise 1×1 → BN → ReLU."""
    return nn.Sequential(
        conv_bn_relu(2, cin, cin, kernel, groups=cin),
        conv_bn_relu(2, cin, cout, 1),
    )
