"""Training: config, optimiser, schedule, accumulation, checkpoints, the loop, logging, report."""

from unicl.train.config import TrainConfig, config_to_yaml, load_training_config
from unicl.train.loop import TrainingDiverged
from unicl.train.trainer import TrainResult, train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "config_to_yaml",
    "load_training_config",
    "train",
]
