"""Balanced mixture of SuperNets for the pooling architecture (S66, Javan/Roshtkhari, Toews & Pedersoli 2023,
"Balanced Mixture of SuperNets for Learning the CNN Pooling Architecture"): where a CIFAR ResNet-20 downsamples.

**Search space.** The ResNet-20 of the paper's CIFAR study is ``L = 10`` layers: a 3×3 conv–BN–ReLU stem (layer 0)
and nine basic residual blocks (layers 1–9), with the channel widths fixed per layer (16, 16, 16, 16, 32, 32, 32,
64, 64, 64) whatever the pooling, a global average pool and a linear classifier. A *pooling configuration* places
``P = 2`` 2×2 max-pools, each just before one of the layers 1–9 (never before the stem), so there are
``C(L − 1, P) = C(9, 2) = 36`` of them (:func:`pooling_configurations`); ``pool_at = (4, 7)`` is the usual ResNet-20
(a pool where the width doubles). A configuration is given as the sorted tuple ``pool_at`` of the layers a pool
precedes (the official code writes it as a 0/1 vector over the ten layers).

**SuperNet.** :class:`PoolingSupernet` holds one set of weights for every configuration: its
``forward(x, pool_at)`` pools before the layers of ``pool_at``. Pooling has no weights and every layer's width is
fixed, so a configuration's network is the SuperNet with the pools moved; :meth:`PoolingSupernet.extract` copies
the weights into the standalone classifier :class:`PoolingResNet` (registered ``pooling_resnet20``), which retrains
with ``convzoo train --model pooling_resnet20 --cfg pool_at=4,7``.

**Mixture and balancing.** :class:`PoolingMixture` holds ``K`` SuperNets (registered ``pooling_supernet_resnet20``,
``K = 4``) and a score matrix ``W`` (configurations × SuperNets, all 1 at the start), the running validation accuracy
of each (configuration, SuperNet) pair: ``W[a, m] ← d·W[a, m] + (1 − d)·acc`` (EMA, ``d = 0.9``) each time the pair
is trained on a batch and scored on a validation batch. Configuration ``a`` is routed to SuperNet ``m`` with
``p(m | a) = softmax_m(T·W[a, m])``, the temperature ``T`` rising linearly from 1 to 100 over training, *balanced*
(:func:`balance`) so that every SuperNet receives the same share of the configurations: the marginal
``p(m) = (1/|A|) Σ_a p(m | a)`` is driven to the uniform ``1/K`` by alternately dividing each column by its marginal
and renormalising each row (``Σ_m p(m | a) = 1``), until ``KL(p(m) ‖ U) ≤ 10⁻⁴``. The balanced matrix is
``p(m | a) ∝ softmax(T·W)[a, m] · c_m``: only a per-SuperNet factor changes, the preferences within a row keep
their order. Each training batch samples a configuration uniformly and a SuperNet from its balanced ``p(m | a)``.
The search then scores every configuration on the validation data with the SuperNet it is assigned to
(``argmax_m p(m | a)``) and ranks them.

BatchNorm is the official code's: no affine parameters and batch statistics in training and testing alike
(``track_running_stats=False``), so one SuperNet can serve configurations whose feature statistics differ; a
network scored this way needs batches of several images. Shapes: images ``(N, C, H, W)`` → logits
``(N, classes)``; each pool halves ``H`` and ``W`` (floor).

Departures from the official code (mehravehj/Balanced-Mixture-of-SuperNets, resnet20): the temperature follows
the training step rather than the epoch, and the balancing iterates from the current scores at every step rather
than reusing the marginals found at the start of the epoch (both reach the same balanced matrix for the same ``W``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number, is_int
from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import register_variant

__all__ = [
    "RESNET20_WIDTHS",
    "PoolingResNetConfig",
    "PoolingResNet",
    "PoolingSupernet",
    "PoolingMixtureConfig",
    "PoolingMixture",
    "pooling_configurations",
    "check_pool_at",
    "balance",
    "marginal_kl",
]

RESNET20_WIDTHS = (16, 16, 16, 16, 32, 32, 32, 64, 64, 64)  # the official resnet20 `channels_string`, per layer


def pooling_configurations(layers: int, pools: int) -> list[tuple[int, ...]]:
    """Every ``pool_at``: ``pools`` distinct layers among ``1 … layers − 1`` (sorted tuples, lexicographic order);
    there are ``C(layers − 1, pools)``."""
    check_int(layers, "layers", "pooling_configurations", low=2)
    check_int(pools, "pools", "pooling_configurations", low=0, high=layers - 1)
    return list(itertools.combinations(range(1, layers), pools))


def check_pool_at(pool_at: object, layers: int, owner: str) -> tuple[int, ...]:
    """``pool_at`` as a tuple if it is strictly increasing layer indices in ``1 … layers − 1``; ValueError otherwise."""
    if isinstance(pool_at, int) and not isinstance(pool_at, bool):
        pool_at = (pool_at,)
    if not isinstance(pool_at, tuple | list) or not all(is_int(i) for i in pool_at):
        raise ValueError(f"{owner}: pool_at must be a tuple of layer indices, got {pool_at!r}")
    pool_at = tuple(pool_at)
    if any(i < 1 or i >= layers for i in pool_at) or list(pool_at) != sorted(set(pool_at)):
        raise ValueError(
            f"{owner}: pool_at must be increasing layer indices in 1…{layers - 1} (a pool before the stem is not "
            f"in the search space), got {pool_at!r}"
        )
    return pool_at


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, affine=False, track_running_stats=False)


class PoolStem(nn.Sequential):
    """Layer 0: 3×3 conv (no bias) → BN → ReLU; ``(N, C_in, H, W)`` → ``(N, width, H, W)``."""

    def __init__(self, in_chans: int, width: int) -> None:
        super().__init__(nn.Conv2d(in_chans, width, 3, padding=1, bias=False), _bn(width), nn.ReLU(inplace=True))


class PoolBlock(nn.Module):
    """A basic residual block at stride 1: conv3×3–BN–ReLU–conv3×3–BN, plus the input (through a 1×1 conv–BN where
    the width changes), then ReLU; ``(N, C_in, H, W)`` → ``(N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = _bn(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = _bn(out_channels)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), _bn(out_channels))
            if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _check_widths(widths: object, owner: str) -> tuple[int, ...]:
    if not isinstance(widths, tuple | list) or len(widths) < 2:
        raise ValueError(f"{owner}: widths must be a tuple of at least 2 layer widths, got {widths!r}")
    for width in widths:
        check_int(width, "every width", owner)
    return tuple(widths)


@dataclass(frozen=True)
class PoolingResNetConfig:
    """One configuration as a standalone network: ``widths`` per layer (stem first; the official ResNet-20's) and
    ``pool_at``, the layers a 2×2 max-pool precedes (``(4, 7)``: the usual ResNet-20)."""

    widths: tuple[int, ...] = RESNET20_WIDTHS
    pool_at: tuple[int, ...] = (4, 7)


class PoolingResNet(ConvNet):
    """The network of one pooling configuration (S66): stem → stages split at the pools → average pool → linear.

    Stage ``s`` is the max-pool before it (for ``s > 0``) and the blocks up to the next pool, so stage ``s`` has
    stride ``2^s`` (stage 0 is empty, the identity, when the first pool precedes layer 1). Takes no ``op=``.
    """

    def __init__(
        self, cfg: PoolingResNetConfig, *, num_classes: int = 10, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        if op is not None:
            raise ValueError("pooling_resnet20 takes no op= (its search space is where it pools)")
        widths = _check_widths(cfg.widths, "PoolingResNet")
        self.pool_at = check_pool_at(cfg.pool_at, len(widths), "PoolingResNet")
        self.stem = PoolStem(in_chans, widths[0])
        bounds = (1, *self.pool_at, len(widths))
        stages, self.feature_info = [], []
        for s, (start, stop) in enumerate(itertools.pairwise(bounds)):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if s > 0 else []
            layers += [PoolBlock(widths[i - 1], widths[i]) for i in range(start, stop)]
            stages.append(nn.Sequential(*layers))
            self.feature_info.append(FeatureInfo(f"stages.{s}", widths[stop - 1], 2**s))
        self.stages = nn.ModuleList(stages)
        self.head = ClassifierHead(widths[-1], num_classes)


class PoolingSupernet(nn.Module):
    """One SuperNet (S66): the stem, ``L − 1`` blocks and the classifier shared by every pooling configuration.

    ``forward(x, pool_at)``: ``(N, C_in, H, W)`` → ``(N, classes)``, a 2×2 max-pool before each layer of
    ``pool_at``.
    """

    def __init__(self, widths: tuple[int, ...] = RESNET20_WIDTHS, *, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.widths = _check_widths(widths, "PoolingSupernet")
        self.in_chans = check_int(in_chans, "in_chans", "PoolingSupernet")
        self.num_classes = check_int(num_classes, "num_classes", "PoolingSupernet")
        self.stem = PoolStem(in_chans, widths[0])
        self.blocks = nn.ModuleList(PoolBlock(widths[i - 1], widths[i]) for i in range(1, len(widths)))
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: Tensor, pool_at: tuple[int, ...]) -> Tensor:
        pools = set(check_pool_at(pool_at, len(self.widths), "PoolingSupernet"))
        x = self.stem(x)  # (N, widths[0], H, W)
        for i, block in enumerate(self.blocks, start=1):
            if i in pools:
                x = F.max_pool2d(x, 2)  # (N, C, H/2, W/2)
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))  # (N, widths[-1]) → (N, classes)

    def extract(self, pool_at: tuple[int, ...]) -> PoolingResNet:
        """The standalone :class:`PoolingResNet` of ``pool_at`` holding copies of these weights."""
        net = PoolingResNet(
            PoolingResNetConfig(self.widths, tuple(pool_at)), num_classes=self.num_classes, in_chans=self.in_chans
        )
        net.stem.load_state_dict(self.stem.state_dict())
        standalone_blocks = [m for stage in net.stages for m in stage if isinstance(m, PoolBlock)]
        for mine, theirs in zip(self.blocks, standalone_blocks, strict=True):
            theirs.load_state_dict(mine.state_dict())
        net.head.fc.load_state_dict(self.fc.state_dict())
        net.name = "pooling_resnet20"
        return net.to(self.fc.weight)


def marginal_kl(probs: Tensor) -> float:
    """``KL(p(m) ‖ U)`` of the SuperNet marginal ``p(m) = mean_a p(m | a)`` of ``probs`` ``(A, K)`` to the uniform."""
    marginal = probs.mean(dim=0)  # (K,)
    return float((marginal * (marginal * probs.shape[1]).log()).sum().abs())


def balance(probs: Tensor, threshold: float = 1e-4, max_iterations: int = 100_000) -> Tensor:
    """The balanced assignment of S66: ``probs`` ``(A, K)`` (rows ``p(m | a)`` summing to 1, entries > 0) with each
    column divided by its marginal ``p(m) = mean_a p(m | a)`` and each row renormalised, repeated until
    ``KL(p(m) ‖ U) ≤ threshold``; returns the ``(A, K)`` balanced probabilities (rows still sum to 1)."""
    check_number(threshold, "threshold", "balance")
    if probs.dim() != 2 or not bool((probs > 0).all()):
        raise ValueError(f"balance: needs a 2-d matrix of positive probabilities, got shape {tuple(probs.shape)}")
    for _ in range(max_iterations):
        if marginal_kl(probs) <= threshold:
            return probs
        probs = probs / probs.mean(dim=0, keepdim=True)  # each SuperNet's column by its marginal
        probs = probs / probs.sum(dim=1, keepdim=True)  # Σ_m p(m | a) = 1 again
    raise RuntimeError(f"balance: KL to uniform still {marginal_kl(probs):.3g} > {threshold} after {max_iterations}")


@dataclass(frozen=True)
class PoolingMixtureConfig:
    """The mixture: ``supernets`` (K, 4 as in the official README's run), ``pools`` per configuration (2),
    layer ``widths`` (the official ResNet-20's), and the data's ``classes`` and ``in_channels`` (set by the task)."""

    widths: tuple[int, ...] = RESNET20_WIDTHS
    pools: int = 2
    supernets: int = 4
    classes: int = 10
    in_channels: int = 3


class PoolingMixture(nn.Module):
    """K SuperNets, the configurations and the score matrix of the balanced mixture (S66).

    Buffers (saved in checkpoints, so a resumed run continues exactly): ``configs`` ``(A, P)`` (every ``pool_at``),
    ``scores`` ``(A, K)`` float64 (``W``, the EMA of validation accuracy, starting at 1), ``counts`` ``(A, K)``
    (batches trained per pair), ``steps`` (batches trained) and ``temperature`` (the last one used).
    ``forward(x)`` is the current best configuration on its SuperNet, ``(N, C, H, W)`` → ``(N, classes)``.
    """

    def __init__(self, cfg: PoolingMixtureConfig) -> None:
        super().__init__()
        owner = "PoolingMixture"
        widths = _check_widths(cfg.widths, owner)
        check_int(cfg.supernets, "supernets", owner)
        check_int(cfg.pools, "pools", owner, low=0, high=len(widths) - 1)
        self.cfg = cfg
        self.supernets = nn.ModuleList(
            PoolingSupernet(widths, num_classes=cfg.classes, in_chans=cfg.in_channels) for _ in range(cfg.supernets)
        )
        configs = pooling_configurations(len(widths), cfg.pools)
        self.register_buffer("configs", torch.tensor(configs, dtype=torch.long).reshape(len(configs), cfg.pools))
        self.register_buffer("scores", torch.ones(len(configs), cfg.supernets, dtype=torch.float64))
        self.register_buffer("counts", torch.zeros(len(configs), cfg.supernets, dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("temperature", torch.ones((), dtype=torch.float64))
        self.progress = 0.0

    def config(self, index: int) -> tuple[int, ...]:
        """The ``pool_at`` of configuration ``index``."""
        return tuple(int(i) for i in self.configs[index])

    def set_training_progress(self, progress: float) -> None:
        """The fraction of training done (the trainer sets it before every step; the temperature follows it)."""
        self.progress = float(progress)

    def assignment(self, threshold: float = 1e-4) -> Tensor:
        """The balanced ``p(m | a)`` ``(A, K)`` of the scores at the current temperature."""
        probs = torch.softmax(self.scores * self.temperature, dim=1)  # (A, K), float64
        return balance(probs, threshold)

    def assigned(self, threshold: float = 1e-4) -> Tensor:
        """``(A,)``: the SuperNet each configuration is assigned to, ``argmax_m p(m | a)``."""
        return self.assignment(threshold).argmax(dim=1)

    def best(self, threshold: float = 1e-4) -> tuple[int, int]:
        """``(configuration, supernet)``: the configuration whose score on its assigned SuperNet is highest, among
        the pairs trained at least once (an untrained pair keeps its starting score 1; all count before any)."""
        supernet = self.assigned(threshold)  # (A,)
        own = self.scores.gather(1, supernet[:, None])[:, 0]  # (A,)
        trained = self.counts.gather(1, supernet[:, None])[:, 0] > 0  # (A,)
        if bool(trained.any()):
            own = own.masked_fill(~trained, -math.inf)
        index = int(own.argmax())
        return index, int(supernet[index])

    def record(self, index: int, supernet: int, accuracy: float, decay: float) -> None:
        """``W[a, m] ← decay · W[a, m] + (1 − decay) · accuracy`` and count the batch."""
        self.scores[index, supernet] = decay * self.scores[index, supernet] + (1 - decay) * accuracy
        self.counts[index, supernet] += 1

    def forward(self, x: Tensor) -> Tensor:
        index, supernet = self.best()
        return self.supernets[supernet](x, self.config(index))


# The count by hand from the official resnet20 create_model.py (3×3 convs without bias, 1×1 projections where the
# width changes, BN without affine parameters, 10 classes): stem 3·9·16 = 432; blocks 1-3: 3 × 2·16·16·9 = 13,824;
# block 4: 16·32·9 + 32·32·9 + 16·32 = 14,336; blocks 5-6: 2 × 2·32·32·9 = 36,864; block 7: 32·64·9 + 64·64·9 +
# 32·64 = 57,344; blocks 8-9: 2 × 2·64·64·9 = 147,456; classifier 64·10 + 10 = 650; total 270,906.
register_variant(
    "pooling_resnet20",
    PoolingResNet,
    PoolingResNetConfig(),
    papers=("pooling-supernets",),
    params=270_906,
    params_source="by hand from the official S66 resnet20 layer list (BN without affine); He et al.'s ResNet-20: 0.27M",
    input_size=(3, 32, 32),
    num_classes=10,
    takes_op=False,
    summary="ResNet-20 of S66 with 2×2 max-pools before the layers of pool_at (one pooling configuration)",
)

register_variant(
    "pooling_supernet_resnet20",
    PoolingMixture,
    PoolingMixtureConfig(),
    papers=("pooling-supernets",),
    params=4 * 270_906,
    params_source="K = 4 SuperNets of the ResNet-20 above (official README: main.py -nm 4)",
    input_size=(3, 32, 32),
    task="pooling-supernet",
    takes_op=False,
    num_classes=10,
    summary="balanced mixture of K ResNet-20 SuperNets over the C(9, 2) = 36 max-pool placements (S66)",
)
