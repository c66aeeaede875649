"""The training configuration: one YAML file with a few sections, validated before anything runs.

```yaml
model:      {name: unicl-tiny}                       # registered name or model directory
data:       {sources: [{path: ..., weight: 1}], batch_size: 64, accumulation_steps: 1}
objective:  {name: unicl}                            # a registered objective: unicl | ce | supcon
optim:      {lr: 5.0e-4, reference_batch: 512, weight_decay: 0.05, grad_clip: 5.0}
schedule:   {steps: 1000, warmup_steps: 50}
run:        {output_dir: runs/demo, precision: fp32, seed: 0}
checkpoint: {every_steps: 500, keep_last: 3}
evaluation: {every_steps: null, zeroshot: [...], retrieval: [...], linear_probe: [...]}
logging:    {every_steps: 10, tensorboard: false}
```

`load_training_config(path, overrides)` reads the file, applies `--set key=value` overrides and returns a
`TrainConfig`; `config_to_yaml` prints the resolved config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from unicl.config_checks import Range, build_dataclass, describe_yaml_error, require
from unicl.constants import MAX_SEED, MAX_THREADS
from unicl.data.readers import parse_source
from unicl.errors import UserInputError
from unicl.files import read_utf8
from unicl.train.config_evaluation import EvaluationConfig
from unicl.train.config_overrides import apply_override
from unicl.train.objective_registry import objective_class

MAX_CLASSES = 10_000_000
"""The most classes a `ce` head may have (ImageNet-21K has 21,841)."""


@dataclass
class LockConfig:
    """`model.lock_image` / `model.lock_text`: lock a tower as LiT does (Zhai et al. 2022).

    The tower's layer groups (`Tower.layer_groups()`: stem or embeddings, each block, final norm)
    are frozen (`requires_grad=False`, left out of the optimiser) except the last
    `unlocked_groups` (0: the whole tower). `freeze_bn_stats` keeps the BatchNorm layers of the
    locked groups in eval mode: they normalise with their running statistics and never update
    them. `projection` also locks the tower's projection into the shared space (keep it trainable
    when it is new, as with towers taken from other models). `cache_features` (text tower, locked
    whole): encode each distinct token sequence once, in eval mode, and reuse the output
    (`unicl.models.feature_cache`); for data whose texts repeat, as class prompts do."""

    unlocked_groups: Annotated[int, Range(0, 4096)] = 0
    freeze_bn_stats: bool = True
    projection: bool = False
    cache_features: bool = False


@dataclass
class ModelSection:
    """The `model:` section (the model itself is a `unicl.models.config.ModelConfig`).

    `name`: a registered model name (`unicl.models.list_models()`), a model config file or a
    saved model directory (fine-tuning); `overrides`: keys passed to `create_model` for a new
    model (e.g. `{vision: {drop_path: 0.2}}`); `grad_checkpointing` recomputes the encoder blocks
    in the backward pass (less activation memory, about a third more compute); `lock_image`,
    `lock_text`: a `LockConfig` mapping locking that tower (`{}`: all of it), null: train it."""

    name: str = "unicl-tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    grad_checkpointing: bool = False
    lock_image: LockConfig | None = None
    lock_text: LockConfig | None = None


@dataclass
class DataConfig:
    """`sources`: source strings or mappings as `unicl.data.parse_source` reads them (location,
    weight, classes, templates, ...). `batch_size` is per process and per micro-batch: the global
    batch of one optimiser step is `batch_size * accumulation_steps * world_size`, and every sample
    of it is a negative of every other (see `unicl.train.accumulation`). `num_workers`: DataLoader
    worker processes per training process (they live for the whole run); `prefetch_factor`:
    batches each worker prepares ahead. `balance`: the paper's
    balanced sampler (as many image-label as image-text samples per epoch); `merge_classes`: equal
    class names in two sources share a label; `unique_captions`: every caption its own label even
    when repeated (the paper's exact TargetM; by default identical captions share one);
    `max_bad_fraction`: the share of unreadable samples in an epoch past which the run stops;
    `resampled`: every worker draws shards and samples with replacement, without end
    (`unicl.data.resample`; OpenCLIP's `--dataset-resampled`), for corpora too large for epochs;
    `augment`: keyword arguments of `unicl.data.BatchAugment` (e.g. `{scale: [0.5, 1.0],
    jitter: 0.4, flip_p: 0.5}`)."""

    sources: list[Any] = field(default_factory=list)
    batch_size: int = 64
    accumulation_steps: int = 1
    num_workers: int = 2
    prefetch_factor: int = 2
    balance: bool = True
    merge_classes: bool = False
    unique_captions: bool = False
    max_bad_fraction: float = 0.01
    resampled: bool = False
    augment: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        require(len(self.sources) > 0, "data.sources", self.sources, "a non-empty list")
        for index, source in enumerate(self.sources):
            try:
                parse_source(source)
            except UserInputError as error:
                raise UserInputError(f"config key 'data.sources.{index}': {error}") from None
        require(self.batch_size > 0, "data.batch_size", self.batch_size, "> 0")
        require(
            0.0 <= self.max_bad_fraction <= 1.0,
            "data.max_bad_fraction",
            self.max_bad_fraction,
            "between 0 and 1",
        )
        require(
            self.accumulation_steps > 0,
            "data.accumulation_steps",
            self.accumulation_steps,
            "> 0",
        )
        require(self.num_workers >= 0, "data.num_workers", self.num_workers, ">= 0")
        require(self.prefetch_factor >= 1, "data.prefetch_factor", self.prefetch_factor, ">= 1")


@dataclass
class ObjectiveConfig:
    """`name`: a registered training objective (`unicl.train.objective_registry`): `unicl`, the
    UniCL loss over images and texts (the default); `unicl-sigmoid`, the label-aware sigmoid
    loss (`unicl.objective.sigmoid`) over the same; the paper's baselines: `clip` (the CLIP loss
    over the same images and texts, every sample its own positive), `multitask` (cross-entropy of
    a linear head on the image-label samples plus `clip_weight` times the CLIP loss on the
    image-text samples), and on the image tower only `ce` (linear classifier over the class ids,
    cross-entropy) and `supcon` (SupCon on two augmented views of each image, at `temperature`).
    `tile_size` bounds the memory of `unicl`, `unicl-sigmoid`, `clip` and `multitask`; `tile_precision` (`tf32` by
    default, `fp32` or `bf16`) is the precision of their tiles' matrix products
    (`unicl.objective.logsumexp`; the log-sum-exp accumulates in float32; TF32 only where the
    hardware has it, so plain float32 on CPUs); `tile_compile` compiles the tiles' elementwise
    work into fused kernels (`unicl.objective.tiles`; null, the default: as `run.compile`);
    `num_classes` sizes the head of `ce` and
    `multitask` (null: the number of classes of the training sources). An objective reads the
    keys it needs and ignores the others."""

    name: str = "unicl"
    tile_size: int | None = None
    tile_precision: Literal["fp32", "tf32", "bf16"] = "tf32"
    tile_compile: bool | None = None
    temperature: float = 0.1
    num_classes: Annotated[int, Range(2, MAX_CLASSES)] | None = None
    clip_weight: float = 1.0

    def validate(self) -> None:
        objective_class(self.name)  # an unregistered name raises, listing the registered ones
        require(self.temperature > 0, "objective.temperature", self.temperature, "> 0")
        require(self.clip_weight >= 0, "objective.clip_weight", self.clip_weight, ">= 0")
        if self.tile_size is not None:
            require(self.tile_size > 0, "objective.tile_size", self.tile_size, "> 0 or null")


@dataclass
class TowerScaleConfig:
    """`optim.tower_lr_scale`: each tower's learning rate as a share of the rate of the
    parameters outside the towers; null keeps what the model's config states
    (`unicl.models.config.TowerLRScale`: below 1 for a tower that comes pretrained)."""

    image: float | None = None
    text: float | None = None

    def validate(self) -> None:
        for side in ("image", "text"):
            value = getattr(self, side)
            if value is not None:
                require(value > 0, f"optim.tower_lr_scale.{side}", value, "> 0 or null")


@dataclass
class OptimConfig:
    """AdamW. The learning rate used is `lr * global_batch / reference_batch` (linear scaling
    rule; `reference_batch: null` uses `lr` as given). No weight decay on norms, biases,
    embeddings and the logit scale. `grad_clip` is a max global L2 norm (null: no clipping);
    `ema_decay` keeps an exponential moving average of the weights (null: none).

    Fine-tuning rates (`unicl.train.optim.lr_scales`): layer group `g` of a tower of `G` groups
    trains at `rate * t * layer_decay ** (G - 1 - g)` (layer-wise decay; 1: every layer at the
    tower's rate), with `t` the tower's `tower_lr_scale` (null: the model config's, below 1 for a
    pretrained tower); every parameter outside the towers (projections, logit scale, an
    objective's head) at `rate * head_lr_scale`."""

    lr: float = 5.0e-4
    reference_batch: int | None = 512
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1.0e-8
    grad_clip: float | None = 5.0
    ema_decay: float | None = None
    layer_decay: float = 1.0
    head_lr_scale: float = 1.0
    tower_lr_scale: TowerScaleConfig = field(default_factory=TowerScaleConfig)

    def validate(self) -> None:
        require(self.lr > 0, "optim.lr", self.lr, "> 0")
        require(0 < self.layer_decay <= 1, "optim.layer_decay", self.layer_decay, "in (0, 1]")
        require(self.head_lr_scale > 0, "optim.head_lr_scale", self.head_lr_scale, "> 0")
        if self.reference_batch is not None:
            require(self.reference_batch > 0, "optim.reference_batch", self.reference_batch, "> 0")
        require(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, ">= 0")
        require(all(0 <= b < 1 for b in self.betas), "optim.betas", self.betas, "in [0, 1)")
        require(self.eps > 0, "optim.eps", self.eps, "> 0")
        if self.grad_clip is not None:
            require(self.grad_clip > 0, "optim.grad_clip", self.grad_clip, "> 0 or null")
        if self.ema_decay is not None:
            require(0 < self.ema_decay < 1, "optim.ema_decay", self.ema_decay, "in (0, 1)")


@dataclass
class ScheduleConfig:
    """Linear warm-up from 0 over `warmup_steps`, then cosine decay to `min_lr_ratio * lr` at
    `steps` (optimiser steps, each of one global batch)."""

    steps: int = 1000
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0

    def validate(self) -> None:
        require(self.steps > 0, "schedule.steps", self.steps, "> 0")
        require(
            0 <= self.warmup_steps < self.steps,
            "schedule.warmup_steps",
            self.warmup_steps,
            f"in [0, schedule.steps={self.steps})",
        )
        require(
            0 <= self.min_lr_ratio <= 1, "schedule.min_lr_ratio", self.min_lr_ratio, "in [0, 1]"
        )


@dataclass
class RunConfig:
    """Where and how the run executes. `precision`: `fp32`, `bf16` (autocast, CPU or CUDA) or
    `fp16` (autocast and a gradient scaler, CUDA only). `max_nonfinite`: consecutive steps with
    a non-finite loss that are skipped before the run stops. `deterministic` asks PyTorch for
    deterministic kernels (bit-identical resumption on CPU). `timeout_minutes`: how long a
    process waits in a collective for the others (a rank writing a checkpoint, a slow data
    source) before the run fails instead of hanging; it is the process group's timeout, for NCCL
    and gloo alike. `compile` runs each tower's forward, and the tiled loss's elementwise work
    unless `objective.tile_compile` says otherwise, through `torch.compile` (the first steps pay
    for compilation; parameter names, checkpoints and saved models are those of the eager model,
    so a run may be resumed with it on or off).
    `sharding` on several processes: `ddp` keeps a full replica of the weights, gradients and
    optimiser state on every process; `fsdp` shards them over the processes (PyTorch's FSDP2,
    `unicl.train.sharding`), for towers too large to replicate. `on_collapse`: what a collapse or a
    divergence found by the health monitor (`unicl.train.health`) does: `stop` the run after a
    checkpoint (exit status 1) or `warn` and go on."""

    output_dir: str = "runs/unicl"
    seed: Annotated[int, Range(0, MAX_SEED)] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    deterministic: bool = False
    max_nonfinite: int = 5
    threads: Annotated[int, Range(1, MAX_THREADS)] | None = None
    compile: bool = False
    timeout_minutes: float = 30.0
    sharding: Literal["ddp", "fsdp"] = "ddp"
    on_collapse: Literal["stop", "warn"] = "stop"

    def validate(self) -> None:
        require(self.max_nonfinite > 0, "run.max_nonfinite", self.max_nonfinite, "> 0")
        require(self.timeout_minutes > 0, "run.timeout_minutes", self.timeout_minutes, "> 0")
        if self.precision == "fp16":
            require(
                self.device != "cpu",
                "run.precision",
                self.precision,
                "fp32 or bf16 on CPU (fp16 needs CUDA)",
            )


@dataclass
class CheckpointConfig:
    """A checkpoint every `every_steps` optimiser steps and at the end; the last `keep_last` are
    kept under `<output_dir>/checkpoints/`."""

    every_steps: int = 1000
    keep_last: int = 3

    def validate(self) -> None:
        require(self.every_steps > 0, "checkpoint.every_steps", self.every_steps, "> 0")
        require(self.keep_last > 0, "checkpoint.keep_last", self.keep_last, "> 0")


@dataclass
class LoggingConfig:
    """Metrics every `every_steps` steps to `metrics.jsonl` (and TensorBoard if `tensorboard`,
    which needs the `unicl[tensorboard]` extra); `progress` shows a progress bar."""

    every_steps: int = 10
    tensorboard: bool = False
    progress: bool = True

    def validate(self) -> None:
        require(self.every_steps > 0, "logging.every_steps", self.every_steps, "> 0")


@dataclass
class TrainConfig:
    """The whole training configuration; sections as in the module docstring."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataConfig = field(default_factory=DataConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    @property
    def output_dir(self) -> Path:
        return Path(self.run.output_dir)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Validate a raw mapping (as read from YAML) into a `TrainConfig`."""
    return build_dataclass(TrainConfig, raw, "")


def load_training_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read the YAML file at `path`, apply `key=value` overrides in order, and validate."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"training config {str(path)!r} does not exist; pass a YAML file")
    try:
        raw = yaml.safe_load(read_utf8(path)) or {}
    except yaml.YAMLError as error:
        raise UserInputError(
            f"training config {str(path)!r} is not valid YAML: {describe_yaml_error(error)}"
        ) from None
    if not isinstance(raw, dict):
        raise UserInputError(f"training config {str(path)!r} must be a mapping of sections")
    for assignment in overrides:
        apply_override(raw, assignment)
    return config_from_dict(raw)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Plain nested dict (lists for tuples) that `config_from_dict` reads back unchanged."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def config_to_yaml(config: TrainConfig) -> str:
    """The resolved config as YAML, in section order."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
