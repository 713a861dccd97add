"""Training: the classification trainer, checkpoints, and evaluation."""

from convzoo.train.checkpoint import CheckpointError, build_from_checkpoint, read_checkpoint, save_checkpoint
from convzoo.train.trainer import TrainConfig, TrainResult, evaluate, train

__all__ = [
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "build_from_checkpoint",
    "evaluate",
    "read_checkpoint",
    "save_checkpoint",
    "train",
]
