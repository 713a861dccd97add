"""Training: one trainer for every task (``convzoo.train.task``), checkpoints, evaluation, predictions."""

from convzoo.train.checkpoint import CheckpointError, build_from_checkpoint, read_checkpoint, save_checkpoint
from convzoo.train.evaluate import evaluate
from convzoo.train.inference import CheckpointEval, Prediction, evaluate_checkpoint, predict
from convzoo.train.task import Task, get_task, task_names
from convzoo.train.trainer import TrainConfig, TrainResult, train

__all__ = [
    "CheckpointError",
    "CheckpointEval",
    "Prediction",
    "Task",
    "TrainConfig",
    "TrainResult",
    "build_from_checkpoint",
    "evaluate",
    "evaluate_checkpoint",
    "get_task",
    "predict",
    "read_checkpoint",
    "save_checkpoint",
    "task_names",
    "train",
]
