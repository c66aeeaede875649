"""Training: config, optimiser, schedule, accumulation, checkpoints, the loop, logging, report."""

from unicl.train.config import TrainConfig, load_config

__all__ = ["TrainConfig", "load_config"]
