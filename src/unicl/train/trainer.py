"""`train(config)`: a whole run from a `TrainConfig`, on one process or under torchrun.

Builds the model, the data stream and the augmentation, resumes if asked, runs the loop, and on
rank 0 writes under `run.output_dir`: `config.yaml` (resolved), `metrics.jsonl`, `checkpoints/`,
`model/` (the trained model, `unicl.models.load`-able; the EMA weights when kept) and `report.md`
with its plots. A run that the health monitor stops (`unicl.train.health`) writes its checkpoint
and `report.md` but no model, and raises `RunUnhealthy`.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unicl.data import Batch, BatchAugment, UnifiedStream
from unicl.data.stream import worker_death_as_error
from unicl.errors import UserInputError
from unicl.files import write_text_atomic
from unicl.models import create_model, load
from unicl.train.checkpoint import load_newest_intact, remove_partial_checkpoints
from unicl.train.config import TrainConfig, config_to_yaml
from unicl.train.health import RunUnhealthy
from unicl.train.launch import ProcessContext, close_process, init_process
from unicl.train.loop import run_loop
from unicl.train.objective_registry import objective_class
from unicl.train.optim import base_lr, tower_lr_scales
from unicl.train.periodic_eval import evaluate_run
from unicl.train.report import write_report
from unicl.train.run_dir import RUN_CONFIG, start_point
from unicl.train.signals import StopRequest
from unicl.train.state import TrainingState, build_state

MODEL_DIR = "model"


@dataclass
class TrainResult:
    """What a run produced. `stopped_by` is the signal that interrupted it (None if finished);
    `model_dir` and `report` are None on ranks other than 0 and for interrupted runs."""

    output_dir: Path
    step: int
    stopped_by: int | None
    checkpoint: Path | None
    model_dir: Path | None
    report: Path | None
    evaluation: dict[str, float]
    last_record: dict[str, Any]


def train(config: TrainConfig, resume: str | None = None) -> TrainResult:
    """Run training as configured; `resume` is `latest` or a checkpoint path."""
    context = init_process(config.run.device, config.run.timeout_minutes)
    try:
        return _train(config, context, resume)
    finally:
        close_process()


def build_run(
    config: TrainConfig, context: ProcessContext
) -> tuple[TrainingState, Iterator[Batch], BatchAugment]:
    """The state, the endless batch iterator and the augmentation of a fresh run (seeded)."""
    _configure_torch(config)
    _seed_everything(config.run.seed)
    model = _create_model(config)
    model.set_grad_checkpointing(config.model.grad_checkpointing)
    texts_used = objective_class(config.objective.name).trains_text_tower
    stream = UnifiedStream(
        config.data.sources,
        # one stream batch is one optimiser step on this rank; accumulation splits it into
        # `accumulation_steps` micro-batches of `data.batch_size`
        batch_size=config.data.batch_size * config.data.accumulation_steps,
        image_size=model.image_size,
        seed=config.run.seed,
        balance=config.data.balance,
        merge_classes=config.data.merge_classes,
        unique_captions=config.data.unique_captions,
        max_bad_fraction=config.data.max_bad_fraction,
        resampled=config.data.resampled,
        num_workers=config.data.num_workers,
        rank=context.rank,
        world_size=context.world_size,
        pin_memory=context.device.type == "cuda",
        prefetch_factor=config.data.prefetch_factor,
        tokenize=model.tokenizer if texts_used else None,  # in the workers, off this thread
    )
    augment = _build_augment(config, model).to(context.device)
    state = build_state(config, context, model, stream, num_classes=len(stream.class_names))
    _seed_everything(config.run.seed + context.rank)  # augmentation differs across ranks
    return state, _endless(stream), augment


def _train(config: TrainConfig, context: ProcessContext, resume: str | None) -> TrainResult:
    checkpoints, notes = start_point(config, resume)
    partial = remove_partial_checkpoints(config.output_dir) if context.is_main else []
    if partial:
        notes.append(f"removed {len(partial)} partly written checkpoint files of a killed run")
    state, batches, augment = build_run(config, context)
    if checkpoints:
        _, payload, skipped = load_newest_intact(checkpoints)
        notes += skipped
        state.load_state_dict(payload)
    notes += _slower_towers(state)
    if context.is_main:
        for note in notes:
            print(f"unicl: {note}", file=sys.stderr, flush=True)
    if context.is_main:
        write_text_atomic(config.output_dir / RUN_CONFIG, config_to_yaml(config))
    try:
        with StopRequest() as stop, worker_death_as_error():
            result = run_loop(state, batches, augment, evaluate_run, stop)
    finally:
        batches.close()
    model_dir = report = None
    if result.unhealthy is not None:
        _stop_unhealthy(state, result)
    trained = state.model if result.stopped_by is None else None  # every rank: gathered if sharded
    if context.is_main and trained is not None:
        model_dir = config.output_dir / MODEL_DIR
        if not state.objective.trains_text_tower:
            trained.config = dataclasses.replace(trained.config, image_only=True)
        trained.provenance = _provenance(state, result)
        trained.save_pretrained(model_dir)
        report = write_report(
            config.output_dir,
            _summary(state, result),
            config_to_yaml(config),
            data=state.stream.describe(),
        )
    return TrainResult(
        output_dir=config.output_dir,
        step=result.step,
        stopped_by=result.stopped_by,
        checkpoint=result.checkpoint,
        model_dir=model_dir,
        report=report,
        evaluation=result.evaluation,
        last_record=result.last_record,
    )


def _tower_scales(state: TrainingState) -> dict[str, float]:
    """Each tower's learning-rate scale by side (`image`, `text`)."""
    scales = tower_lr_scales(state.objective, state.config.optim)
    return {name.rsplit(".", 1)[-1].removesuffix("_encoder"): s for name, s in scales.items()}


def _slower_towers(state: TrainingState) -> list[str]:
    """A note for each tower that does not train at the base rate."""
    return [
        f"the {side} tower trains at {scale:g} x the learning rate (the model's tower_lr_scale; "
        f"--set optim.tower_lr_scale.{side}=... changes it)"
        for side, scale in _tower_scales(state).items()
        if scale != 1
    ]


def _stop_unhealthy(state: TrainingState, result) -> None:
    """Write the report of a run the health monitor stopped (rank 0), then raise
    `RunUnhealthy` with one line: what happened, what to try, where the checkpoint and report
    are."""
    config, event = state.config, result.unhealthy
    where = ""
    if state.context.is_main:
        summary = _summary(state, result)
        summary["trained model"] = (
            f"none: the run stopped at step {result.step} ({event.condition})"
        )
        report = write_report(
            config.output_dir, summary, config_to_yaml(config), data=state.stream.describe()
        )
        where = f"; checkpoint {result.checkpoint}, report {report}"
    raise RunUnhealthy(
        f"training stopped at step {result.step}: {event.line()} (run.on_collapse=warn goes on "
        f"instead){where}"
    )


def _create_model(config: TrainConfig) -> torch.nn.Module:
    """A registered name or model config file -> a new model; a saved model directory -> its
    weights (fine-tuning)."""
    name = config.model.name
    if Path(name).is_dir():
        if config.model.overrides:
            raise UserInputError(
                f"model.overrides apply to new models, not to the saved model {name!r}; remove them"
            )
        return load(name)
    return create_model(name, **config.model.overrides)


def _build_augment(config: TrainConfig, model: torch.nn.Module) -> BatchAugment:
    try:
        augment = BatchAugment(
            model.image_size, model.image_mean, model.image_std, **config.data.augment
        )
    except (TypeError, ValueError) as error:  # an unknown argument, a value kornia refuses
        raise UserInputError(f"config key 'data.augment': {error}") from None
    if augment.mixes and not objective_class(config.objective.name).mixes_images:
        raise UserInputError(
            f"objective {config.objective.name!r} has no targets for mixed images; turn off "
            "data.augment mixup and cutmix, or train with objective.name unicl or unicl-sigmoid"
        )
    return augment


def _endless(stream: UnifiedStream) -> Iterator[Batch]:
    """Batches across epochs (the stream advances its epoch after each pass; its workers live
    until this generator is closed). The stream draws no number from the global generators, so a
    resumed run's augmentation repeats exactly."""
    try:
        while True:
            yield from stream
    finally:
        stream.close()


def _configure_torch(config: TrainConfig) -> None:
    if config.run.threads is not None:
        torch.set_num_threads(config.run.threads)
    if config.run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _provenance(state: TrainingState, result) -> dict[str, Any]:
    """What the model card says of this run (`unicl.models.card`): where it started (with that
    model's own provenance as `base`), the objective, steps, samples, data and final evaluation."""
    config, counters = state.config, state.counters
    return {
        "kind": "trained",
        "started_from": config.model.name,
        "objective": config.objective.name,
        "steps": counters.step,
        "samples": counters.samples,
        "global_batch": state.global_batch,
        "data": [
            {key: source[key] for key in ("source", "modality", "samples", "licence")}
            for source in state.stream.describe()["sources"]
        ],
        "evaluation": result.evaluation,
        "base": state.model.provenance,
    }


def _summary(state: TrainingState, result) -> dict[str, Any]:
    config, counters = state.config, state.counters
    record = result.last_record
    summary = {
        "model": config.model.name,
        "objective": config.objective.name,
        "steps": counters.step,
        "samples seen": counters.samples,
        "global batch": state.global_batch,
        "processes": state.context.world_size,
        "trained parameters": sum(
            p.numel() for p in state.objective.parameters() if p.requires_grad
        ),
        "peak learning rate": base_lr(state.optimizer, "initial_lr"),
        "tower learning-rate scales": ", ".join(
            f"{side} {scale:g}" for side, scale in _tower_scales(state).items()
        ),
        "precision": config.run.precision,
        "final loss": record.get("loss"),
        "skipped steps (non-finite loss)": counters.skipped_steps,
        "training time (s)": round(counters.elapsed_s, 1),
        "throughput (samples/s)": counters.samples / max(counters.elapsed_s, 1e-9),
        "trained model": str(config.output_dir / MODEL_DIR),
    }
    if state.objective.trains_text_tower:
        summary["final logit scale"] = record.get("logit_scale")
    else:
        summary["trained model"] += " (image tower only: its text tower was not trained)"
    return summary
