"""Training: config, objectives, optimiser, schedule, accumulation, checkpoints, the loop, logging,
report.

Importing `unicl.train` registers the built-in objectives (`unicl`, `ce`, `supcon`); register more
with `register_objective` (see `unicl.train.objective_registry`).
"""

from unicl.train.builtin_objectives import CrossEntropyObjective, SupConObjective, UniCLObjective
from unicl.train.config import TrainConfig, config_to_yaml, load_training_config
from unicl.train.health import RunUnhealthy
from unicl.train.loop import TrainingDiverged
from unicl.train.objective_registry import (
    TrainingObjective,
    register_objective,
    registered_objectives,
    unregister_objective,
)
from unicl.train.trainer import TrainResult, train

__all__ = [
    "CrossEntropyObjective",
    "RunUnhealthy",
    "SupConObjective",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingObjective",
    "UniCLObjective",
    "config_to_yaml",
    "load_training_config",
    "register_objective",
    "registered_objectives",
    "train",
    "unregister_objective",
]
