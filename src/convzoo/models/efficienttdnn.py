"""EfficientTDNN (S111, Wang et al. 2022, "EfficientTDNN: Efficient Architecture Search for Speaker
Recognition"): a TDNN supernet with elastic depth, dilation and width whose subnets run without retraining,
sampled under a MACs budget.

Waveform ``(N, 1, T)`` → log-mel features ``(N, mels, frames)`` → **trunk**: a stem ``Conv1d(mels, w, 5)`` and
``depth`` residual TDNN blocks ``x + ReLU(BN(Conv1d(w, w, 3, dilation d_i)))`` → **aggregation** of the blocks'
outputs (concatenated, ``depth · w`` channels) by a 1×1 conv to ``agg`` channels → statistics pooling (mean and
standard deviation over frames) → ``Linear(2·agg, embedding)`` → ReLU → ``Linear(embedding, classes)``.

The supernet holds the largest of every choice (``max_depth`` blocks, ``width`` channels, one kernel per block);
a subnet (:class:`TDNNChoice`: depth, one dilation per block, width) uses the first ``depth`` blocks, every conv
with its dilation, and the first ``w`` channels of every weight, BN statistic and aggregation column (weight
sharing: nothing is retrained). :meth:`EfficientTDNN.subnet_macs` counts a subnet's MACs analytically (equal to
:func:`convzoo.profile.count_macs`, tested); :meth:`EfficientTDNN.sample` draws random subnets and keeps the
largest under a budget.

``causal=True`` pads every temporal conv on the left only, so frame ``t`` of the trunk sees frames ≤ t, and
:meth:`EfficientTDNN.stream_trunk` runs the trunk chunk by chunk with the left context carried as state (equal to
the offline trunk, tested). The paper's model is not causal (speaker embeddings pool whole utterances); the causal
mode is convzoo's, for streaming front ends. Departures: statistics pooling without the attention of ECAPA-style
pooling; the supernet's widths here are set for small data; the published MACs (204 M … 1.45 G for VoxCeleb
utterances) are not compared.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.layers.audio_frontend import LogMel
from convzoo.models._audio import register_audio

__all__ = ["EfficientTDNN", "EfficientTDNNConfig", "TDNNChoice"]


@dataclass(frozen=True)
class TDNNChoice:
    """One subnet: its ``depth``, the ``dilations`` of its blocks (``len == depth``) and its ``width``."""

    depth: int
    dilations: tuple[int, ...]
    width: int


@dataclass(frozen=True)
class EfficientTDNNConfig:
    classes: int = 10
    sample_rate: int = 16000
    n_mels: int = 64
    width: int = 256
    max_depth: int = 4
    dilation_choices: tuple[int, ...] = (1, 2, 3, 4)
    width_choices: tuple[int, ...] = (64, 128, 192, 256)
    agg: int = 384
    embedding: int = 128
    causal: bool = False


class EfficientTDNN(nn.Module):
    """TDNN supernet: elastic depth, per-block dilation and width; subnets share the supernet's weights."""

    def __init__(self, config: EfficientTDNNConfig) -> None:
        super().__init__()
        owner = "EfficientTDNN"
        self.config = config
        w = check_int(config.width, "width", owner)
        depth = check_int(config.max_depth, "max_depth", owner)
        for choice in config.width_choices:
            check_int(choice, "width_choices", owner, high=w)
        for d in config.dilation_choices:
            check_int(d, "dilation_choices", owner)
        self.frontend = LogMel(config.sample_rate, n_mels=check_int(config.n_mels, "n_mels", owner))
        self.stem = nn.Conv1d(config.n_mels, w, 5, bias=False)
        self.stem_norm = nn.BatchNorm1d(w)
        self.blocks = nn.ModuleList(nn.Conv1d(w, w, 3, bias=False) for _ in range(depth))
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for _ in range(depth))
        self.aggregate = nn.Conv1d(depth * w, check_int(config.agg, "agg", owner), 1, bias=False)
        self.embed = nn.Linear(2 * config.agg, check_int(config.embedding, "embedding", owner))
        self.classifier = nn.Linear(config.embedding, check_int(config.classes, "classes", owner))
        self.choice = self.largest()

    # --- subnets ---------------------------------------------------------------------------------------------

    def largest(self) -> TDNNChoice:
        c = self.config
        return TDNNChoice(c.max_depth, (max(c.dilation_choices),) * c.max_depth, c.width)

    def check_choice(self, choice: TDNNChoice) -> TDNNChoice:
        c = self.config
        check_int(choice.depth, "depth", "EfficientTDNN", high=c.max_depth)
        if len(choice.dilations) != choice.depth or any(d not in c.dilation_choices for d in choice.dilations):
            raise ValueError(
                f"EfficientTDNN: dilations must be {choice.depth} of {c.dilation_choices}, got {choice.dilations}"
            )
        if choice.width not in c.width_choices:
            raise ValueError(f"EfficientTDNN: width must be one of {c.width_choices}, got {choice.width}")
        return choice

    def set_subnet(self, choice: TDNNChoice) -> None:
        """Run as the subnet ``choice`` from now on (weights shared, nothing retrained)."""
        self.choice = self.check_choice(choice)

    def subnet_macs(self, choice: TDNNChoice, frames: int) -> int:
        """MACs per clip of the subnet ``choice`` on ``frames`` feature frames (the log-mel front end's matrix
        product included)."""
        c, w = self.config, choice.width
        bins = self.frontend.n_fft // 2 + 1
        trunk_frames = frames if c.causal else frames - 4  # the stem's 5 taps, unpadded when not causal
        total = c.n_mels * bins * frames  # mel filter bank
        total += c.n_mels * w * 5 * trunk_frames  # stem
        total += choice.depth * w * w * 3 * trunk_frames  # blocks ('same' or causal padding keeps the frames)
        total += choice.depth * w * c.agg * trunk_frames  # aggregation 1×1
        return total + 2 * c.agg * c.embedding + c.embedding * c.classes

    def sample(self, budget: int, frames: int, *, tries: int = 200, seed: int = 0) -> TDNNChoice:
        """The subnet with the most MACs ≤ ``budget`` among ``tries`` random ones (``ValueError`` if none fits)."""
        rng = random.Random(seed)
        c = self.config
        best = None
        for _ in range(tries):
            depth = rng.randint(1, c.max_depth)
            choice = TDNNChoice(
                depth, tuple(rng.choice(c.dilation_choices) for _ in range(depth)), rng.choice(c.width_choices)
            )
            cost = self.subnet_macs(choice, frames)
            if cost <= budget and (best is None or cost > best[0]):
                best = (cost, choice)
        if best is None:
            smallest = TDNNChoice(1, (min(c.dilation_choices),), min(c.width_choices))
            raise ValueError(
                f"EfficientTDNN: no subnet fits {budget:,} MACs "
                f"(the smallest takes {self.subnet_macs(smallest, frames):,})"
            )
        return best[1]

    # --- forward ---------------------------------------------------------------------------------------------

    def _norm(self, norm: nn.BatchNorm1d, x: Tensor, w: int) -> Tensor:
        mean = None if norm.running_mean is None else norm.running_mean[:w]
        var = None if norm.running_var is None else norm.running_var[:w]
        return F.batch_norm(x, mean, var, norm.weight[:w], norm.bias[:w], self.training, norm.momentum, norm.eps)

    def _conv(self, conv: nn.Conv1d, x: Tensor, w_out: int, w_in: int, dilation: int, pad: bool) -> Tensor:
        weight = conv.weight[:w_out, :w_in]
        reach = dilation * (weight.shape[-1] - 1)
        if pad:
            x = F.pad(x, (reach, 0) if self.config.causal else (reach // 2, reach - reach // 2))
        return F.conv1d(x, weight, dilation=dilation)

    def trunk(self, features: Tensor) -> list[Tensor]:
        """The stem and block outputs ``[(N, w, frames'), ...]`` of features ``(N, mels, frames)``."""
        choice, w = self.choice, self.choice.width
        x = F.relu(
            self._norm(self.stem_norm, self._conv(self.stem, features, w, self.config.n_mels, 1, self.config.causal), w)
        )
        outs = []
        for i in range(choice.depth):
            y = self._conv(self.blocks[i], x, w, w, choice.dilations[i], True)
            x = x + F.relu(self._norm(self.norms[i], y, w))
            outs.append(x)
        return outs

    def stream_trunk(self, chunk: Tensor, state: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """Causal mode: the last block's output for the feature frames ``chunk`` ``(N, mels, t)``, given the left
        context ``state`` of the previous chunks (``None`` at the start); returns ``(output, new state)``."""
        if not self.config.causal:
            raise ValueError("EfficientTDNN: stream_trunk needs causal=True (a centred conv sees future frames)")
        choice, w = self.choice, self.choice.width
        reaches = [4] + [d * 2 for d in choice.dilations]
        if state is None:
            state = [
                chunk.new_zeros(chunk.shape[0], c, r)
                for c, r in zip([chunk.shape[1]] + [w] * choice.depth, reaches, strict=True)
            ]
        new_state = []
        x = torch.cat([state[0], chunk], dim=-1)  # (N, mels, 4 + t)
        new_state.append(x[..., x.shape[-1] - 4 :])
        x = F.relu(self._norm(self.stem_norm, F.conv1d(x, self.stem.weight[:w]), w))  # (N, w, t)
        for i in range(choice.depth):
            context = torch.cat([state[i + 1], x], dim=-1)  # (N, w, reach + t)
            new_state.append(context[..., context.shape[-1] - reaches[i + 1] :])
            y = F.conv1d(context, self.blocks[i].weight[:w, :w], dilation=choice.dilations[i])  # (N, w, t)
            x = x + F.relu(self._norm(self.norms[i], y, w))
        return x, new_state

    def forward(self, x: Tensor) -> Tensor:
        features = self.frontend(x)[:, 0]  # (N, mels, frames)
        outs = self.trunk(features)  # depth × (N, w, frames')
        w, full = self.choice.width, self.config.width
        columns = torch.cat([torch.arange(i * full, i * full + w) for i in range(len(outs))]).to(x.device)
        weight = self.aggregate.weight[:, columns]  # (agg, depth · w, 1)
        h = F.relu(F.conv1d(torch.cat(outs, dim=1), weight))  # (N, agg, frames')
        stats = torch.cat([h.mean(-1), h.var(-1, unbiased=False).clamp_min(1e-5).sqrt()], dim=1)  # (N, 2 · agg)
        return self.classifier(F.relu(self.embed(stats)))  # (N, classes)


register_audio(
    "efficienttdnn",
    EfficientTDNN,
    EfficientTDNNConfig(),
    papers=("efficienttdnn",),
    params=None,
    params_source="no published parameter count comparable here (the paper reports MACs of VoxCeleb subnets)",
    summary="EfficientTDNN supernet: elastic depth/dilation/width TDNN on log-mel, subnets sampled by MACs budget",
)
