"""Everything a run holds between steps, how it is built from the config, and how it round-trips
through a checkpoint (model, head, optimiser, scheduler, scaler, EMA, data position, RNG)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from unicl import process_group
from unicl.errors import UserInputError
from unicl.train.checkpoint import capture_rng_state, restore_rng_state
from unicl.train.config import (
    LockConfig,
    ModelSection,
    ObjectiveConfig,
    TrainConfig,
    config_to_dict,
)
from unicl.train.launch import ProcessContext
from unicl.train.objective_registry import TrainingObjective, build_objective
from unicl.train.optim import build_optimizer, build_scheduler, scaled_lr
from unicl.train.precision import Precision, build_precision
from unicl.train.sharding import ShardedObjective, full_state, load_full_state

CHECKPOINT_FORMAT = 2
"""The version of the checkpoint payload; checkpoints of another version are refused."""


@dataclass
class Counters:
    """Progress that a checkpoint restores: optimiser steps taken (skipped ones included),
    samples seen (global), steps skipped for a non-finite loss (total and in a row), and
    training time in seconds."""

    step: int = 0
    samples: int = 0
    skipped_steps: int = 0
    nonfinite_in_a_row: int = 0
    elapsed_s: float = 0.0


@dataclass
class TrainingState:
    """The live objects of a run. `module` is `objective`, or its DDP wrapper on several
    processes (with `run.sharding: fsdp`, `objective` itself, sharded, and `sharded` what the
    sharded run keeps beside it); `ema` averages `objective.model`'s weights when
    `optim.ema_decay` is set; `stream` is the data stream (with `state_dict()`/
    `load_state_dict()`)."""

    config: TrainConfig
    context: ProcessContext
    objective: TrainingObjective
    module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    ema: AveragedModel | None
    stream: Any
    counters: Counters
    sharded: ShardedObjective | None = None

    @property
    def model(self) -> nn.Module:
        """The model to evaluate and export: the EMA weights when kept, else the trained ones.
        Collective with `run.sharding: fsdp` (the weights are gathered): every rank asks."""
        if self.sharded is not None:
            return self.sharded.full_model(self.objective)
        return self.ema.module if self.ema is not None else self.objective.model

    @property
    def global_batch(self) -> int:
        """Samples per optimiser step over all processes."""
        return global_batch(self.config, self.context)

    def state_dict(self) -> dict[str, Any]:
        """A checkpoint payload. Collective under torch.distributed: every rank must call it,
        since each rank's data position and RNG state are gathered into the payload."""
        local = {"data": self.stream.state_dict(), "rng": capture_rng_state()}
        per_rank = process_group.gather_objects(local, self.context.group)
        if self.sharded is not None:
            objective, optimizer = full_state(self.objective, self.optimizer)
        else:
            objective, optimizer = self.objective.state_dict(), self.optimizer.state_dict()
        return {
            "format": CHECKPOINT_FORMAT,
            "counters": vars(self.counters).copy(),
            "world_size": self.context.world_size,
            "objective": objective,
            "optimizer": optimizer,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "data": [item["data"] for item in per_rank],
            "rng": [item["rng"] for item in per_rank],
            "config": config_to_dict(self.config),
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        """Restore from `state_dict()`'s payload; the world size must be the one it was saved at
        (each rank resumes its own data position)."""
        if payload.get("format") != CHECKPOINT_FORMAT:
            raise UserInputError(
                f"the checkpoint has format {payload.get('format')!r}, not {CHECKPOINT_FORMAT}: "
                "it was not written by this version of `unicl train`; start a new run"
            )
        if payload["world_size"] != self.context.world_size:
            raise UserInputError(
                f"the checkpoint was written by {payload['world_size']} processes but this run "
                f"has {self.context.world_size}; resume with --nproc_per_node matching it"
            )
        if (payload["ema"] is None) != (self.ema is None):
            raise UserInputError(
                "optim.ema_decay differs between the checkpoint and the config; resume with the "
                "same setting"
            )
        if self.sharded is not None:
            load_full_state(
                self.objective, self.optimizer, payload["objective"], payload["optimizer"]
            )
        else:
            self.objective.load_state_dict(payload["objective"])
            self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.precision.scaler.load_state_dict(payload["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(payload["ema"])
        self.stream.load_state_dict(payload["data"][self.context.rank])
        restore_rng_state(payload["rng"][self.context.rank])
        self.counters = Counters(**payload["counters"])


def build_state(
    config: TrainConfig,
    context: ProcessContext,
    model: nn.Module,
    stream: Any,
    num_classes: int | None,
) -> TrainingState:
    """Wire a freshly created `model` and data `stream` into a trainable state on
    `context.device`: the towers locked as `model.lock_*` asks (before anything decides what is
    trained), the configured training objective over `context.group`, DDP (several processes),
    AdamW at the batch-scaled rate over the trainable parameters, the schedule, the precision
    policy, the optional EMA (an eager copy) and, with `run.compile`, compiled towers (and tiles,
    unless `objective.tile_compile` is set). With
    `run.sharding: fsdp` on several processes the objective is sharded instead of wrapped in DDP
    (`unicl.train.sharding`)."""
    lock_towers(model, config.model)
    objective = build_objective(
        model, objective_settings(config), num_classes=num_classes, group=context.group
    ).to(context.device)
    module: nn.Module = objective
    sharded = None
    if process_group.spans_processes(context.group) and config.run.sharding == "fsdp":
        refuse_with_fsdp(config)
        sharded = ShardedObjective(objective, context.device, context.group)
    elif process_group.spans_processes(context.group):
        module = DistributedDataParallel(
            objective,
            device_ids=[context.device.index] if context.device.type == "cuda" else None,
            process_group=context.group,
            find_unused_parameters=bool(unused_parameters(objective, context.device)),
        )
    lr = scaled_lr(config.optim, global_batch(config, context))
    optimizer = build_optimizer(objective, config.optim, lr)
    scheduler = build_scheduler(optimizer, config.schedule)
    ema = None
    if config.optim.ema_decay is not None:
        ema = AveragedModel(
            objective.model,
            multi_avg_fn=get_ema_multi_avg_fn(config.optim.ema_decay),
            use_buffers=True,
        )
    if config.run.compile:
        compile_towers(objective.model)
    return TrainingState(
        config=config,
        context=context,
        objective=objective,
        module=module,
        optimizer=optimizer,
        scheduler=scheduler,
        precision=build_precision(config.run.precision, context.device),
        ema=ema,
        stream=stream,
        counters=Counters(),
        sharded=sharded,
    )


def refuse_with_fsdp(config: TrainConfig) -> None:
    """`UserInputError` for the settings that sharded training does not support yet."""
    for key, value in (
        ("optim.ema_decay", config.optim.ema_decay is not None),
        ("run.compile", config.run.compile),
    ):
        if value:
            raise UserInputError(
                f"{key} is not supported with run.sharding: fsdp yet; remove it or use "
                "run.sharding: ddp"
            )


def lock_towers(model: nn.Module, section: ModelSection) -> None:
    """Apply `model.lock_image` and `model.lock_text` to `model`'s towers (`Tower.lock`) and,
    where asked, freeze their projections. Must run before DDP is built and the optimiser
    collects its parameters: both take only parameters that require gradients."""
    for side, lock in (("image", section.lock_image), ("text", section.lock_text)):
        if lock is None:
            continue
        tower = getattr(model, f"{side}_encoder")
        depth = len(tower.layer_groups())
        if lock.unlocked_groups > depth:
            raise UserInputError(
                f"config key 'model.lock_{side}.unlocked_groups' is {lock.unlocked_groups}; the "
                f"{side} tower ({type(tower).__name__}) has {depth} layer groups, so it must be "
                f"at most {depth}"
            )
        tower.lock(lock.unlocked_groups, lock.freeze_bn_stats)
        if lock.projection:
            getattr(model, f"{side}_projection").requires_grad_(False)
        if lock.cache_features:
            _cache_features(model, side, lock)


def _cache_features(model: nn.Module, side: str, lock: LockConfig) -> None:
    key = f"model.lock_{side}.cache_features"
    if side == "image":
        raise UserInputError(
            f"config key '{key}' is true; only the text tower's features can be cached (an "
            "image's features change with every augmented view): set it on model.lock_text"
        )
    if lock.unlocked_groups:
        raise UserInputError(
            f"config key '{key}' is true with unlocked_groups {lock.unlocked_groups}; only a "
            "tower locked whole gives fixed features: set unlocked_groups to 0 or drop the cache"
        )
    model.cache_text_features()


def objective_settings(config: TrainConfig) -> ObjectiveConfig:
    """`config.objective` with `tile_compile` resolved: when unset, as `run.compile`."""
    if config.objective.tile_compile is not None:
        return config.objective
    return replace(config.objective, tile_compile=config.run.compile)


def compile_towers(model: nn.Module) -> None:
    """Compile the forward of `model`'s image and text towers in place (`nn.Module.compile`,
    TorchInductor). The modules and their parameters stay where they are, so state-dict names
    carry no `_orig_mod.` prefix: checkpoints, the EMA (which averages parameters) and the saved
    model are those of the eager model. DDP, built around the objective, sees the same
    parameters; accumulation's no-gradient and gradient passes compile one graph each."""
    for side in ("image", "text"):
        getattr(model, f"{side}_encoder").compile()


def global_batch(config: TrainConfig, context: ProcessContext) -> int:
    """`data.batch_size * data.accumulation_steps * world_size`: one optimiser step's samples."""
    return config.data.batch_size * config.data.accumulation_steps * context.world_size


def unused_parameters(objective: TrainingObjective, device: torch.device) -> list[str]:
    """Trainable parameters that the objective's loss does not reach (a baseline's unused text tower,
    a Hugging Face tower's pooler), found by one probe step on two blank samples in eval mode
    (no running statistics or random numbers are touched). DDP must search for unused parameters
    after every backward exactly when this list is not empty. Collective under torch.distributed
    (the loss gathers), so every rank calls it."""
    size = objective.model.image_size
    probe = SimpleNamespace(
        images=torch.zeros(2, 3, size, size, dtype=torch.uint8),
        texts=["a photo.", "a photo."],
        class_ids=torch.zeros(2, dtype=torch.long),
        labels=torch.zeros(2, dtype=torch.long),
        tokens=None,
    )
    was_training = objective.training
    objective.eval()
    try:
        inputs = objective.prepare(probe, lambda images, class_ids: images.float(), device)
        features, shared = objective(inputs)
        objective.loss(features, shared, inputs).backward()
        unused = [
            name
            for name, param in objective.named_parameters()
            if param.requires_grad and param.grad is None
        ]
    finally:
        objective.zero_grad(set_to_none=True)
        objective.train(was_training)
    return unused
