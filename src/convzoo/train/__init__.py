"""Training: the classification trainer, checkpoints, evaluation, and a checkpoint's predictions."""

from convzoo.train.checkpoint import CheckpointError, build_from_checkpoint, read_checkpoint, save_checkpoint
from convzoo.train.inference import CheckpointEval, Prediction, evaluate_checkpoint, predict
from convzoo.train.trainer import TrainConfig, TrainResult, evaluate, train

__all__ = [
    "CheckpointError",
    "CheckpointEval",
    "Prediction",
    "TrainConfig",
    "TrainResult",
    "build_from_checkpoint",
    "evaluate",
    "evaluate_checkpoint",
    "predict",
    "read_checkpoint",
    "save_checkpoint",
    "train",
]
