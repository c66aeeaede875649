"""Training objectives: the interface the training loop drives, and the registry of names.

A training objective wraps the model being trained with what turns it into one loss value per
step: how a data batch becomes step inputs, how they are encoded, how the encodings are scored,
and what is constrained after each update. `objective.name` in a training config selects one by
the name it was registered under:

    @register_objective("my-objective")
    class MyObjective(TrainingObjective):
        ...

The built-in objectives (`unicl`, `unicl-sigmoid`, `clip`, `multitask`, `ce`, `supcon`) live in `unicl.train.builtin_objectives`, which
`unicl.train` imports, so they are registered whenever training code is.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import nn

from unicl.config_checks import did_you_mean
from unicl.errors import UserInputError
from unicl.process_group import Group

if TYPE_CHECKING:
    from unicl.train.config import ObjectiveConfig

StepInputs = dict[str, torch.Tensor]
"""Per-sample tensors of one step on the training device, each with the batch as dimension 0."""
Encoded = tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]
"""`forward`'s output: (per-sample features, tensors shared by the whole batch)."""
Augment = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""uint8 images [B,3,h,w] and class ids [B] -> normalised float images (`BatchAugment`)."""


class TrainingObjective(nn.Module, abc.ABC):
    """The model being trained together with its loss; what DDP wraps and the optimiser updates.

    One optimiser step runs `prepare` once on the step's batch, then `forward` and `loss` once, or
    with `k` micro-batches `forward` on each chunk without gradients, then for each chunk `forward`
    again and `loss` on the whole batch (`unicl.train.accumulation`), then the optimiser step and
    `after_step`. Every rank of `group` runs the same calls in the same order.

    Constructed by the registry as `cls(model, config, num_classes=..., group=...)`: `config` is
    the `objective` section of the training config (read the keys you need), `num_classes` the
    size of the training class space (None if unknown), `group` the process group whose ranks
    share every global batch. `self.model` is what the run saves, evaluates and averages (EMA);
    parameters the objective adds (a classifier head) are trained and checkpointed, not exported.
    """

    trains_text_tower = True
    """False for objectives that train only the image tower: the saved model is then marked
    `image_only`, and zero-shot use of it is refused."""

    mixes_images = False
    """True for objectives that score mixed images (`data.augment` mixup or cutmix) against
    their mixed labels; a run with mixing and an objective without it is refused."""

    def __init__(
        self,
        model: nn.Module,
        config: ObjectiveConfig,
        *,
        num_classes: int | None = None,
        group: Group = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.group = group

    @abc.abstractmethod
    def prepare(self, batch: Any, augment: Augment, device: torch.device) -> StepInputs:
        """The step inputs of a data batch (`unicl.data.Batch`: uint8 `images`, `texts`,
        `class_ids`, TargetM `labels`, and `tokens` when the data workers tokenised the texts,
        else None), on `device`, every tensor with the batch as dimension 0:
        accumulation splits them into micro-batches along it. May draw random numbers (through
        `augment`); runs outside DDP and must not communicate. The trainer also calls it once on
        a probe batch of two blank image-label samples (see `unicl.train.state`)."""

    @abc.abstractmethod
    def forward(self, inputs: StepInputs) -> Encoded:
        """Encode `inputs` (the whole step or one micro-batch): `(per_sample, shared)`.
        `per_sample` tensors have the rows of `inputs` as dimension 0 (accumulation caches and
        concatenates them); `shared` tensors are the same for any rows (the logit scale) and
        carry gradients only in the last micro-step. DDP wraps this call, not `loss`: every
        parameter that the loss trains must be reached through these outputs (return a learnable
        scalar as `shared`, do not read it from `self` inside `loss`)."""

    @abc.abstractmethod
    def loss(
        self,
        features: tuple[torch.Tensor, ...],
        shared: tuple[torch.Tensor, ...],
        inputs: StepInputs,
    ) -> torch.Tensor:
        """The loss of the whole step's batch on this rank, a float32 scalar, from `features`
        (`forward`'s `per_sample` over all rows of `inputs`) and `shared`.

        It must be a function of the whole batch, not a sum over micro-batches: accumulation
        calls it with one chunk's features live and the others cached, and sums the gradients.
        Under DDP it returns this rank's share `loss_r` such that `mean_r loss_r` is the loss of
        the global batch (all ranks' rows) and DDP's average `mean_r d(loss_r)/d(theta)` is the
        global-batch gradient: e.g. gather features with `unicl.objective.gather_with_grad` (its
        backward sums every rank's gradient) and score this rank's rows, or weight a per-sample
        sum by `world_size / global count`. Every rank must make the same collectives over
        `self.group`; the loop logs the mean over ranks.

        `features` may hold NaN or infinity (the loop checks once per step, after the backward
        passes): return a non-finite loss for them rather than raising; the loop then skips the
        update on every rank."""

    def after_step(self) -> None:
        """After every optimiser step that updated the weights (skipped steps excluded), before
        the EMA update: constrain parameters (e.g. clamp the logit scale). Default: nothing."""

    def chance_loss(self, global_batch: int) -> float | None:
        """The loss of a step of `global_batch` samples when the encodings carry no information
        (every prediction uniform): what the health monitor (`unicl.train.health`) compares the
        loss with to tell a collapsed or diverging run. Default: None (unknown), which turns the
        loss-based checks off."""
        return None


_OBJECTIVES: dict[str, type[TrainingObjective]] = {}

T = TypeVar("T", bound=type[TrainingObjective])


def register_objective(name: str) -> Callable[[T], T]:
    """Class decorator: `objective.name: <name>` in a training config selects the class."""

    def register(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, TrainingObjective)):
            raise TypeError(f"objective {name!r}: {cls!r} is not a TrainingObjective subclass")
        if name in _OBJECTIVES:
            raise ValueError(
                f"objective {name!r} is already registered ({_OBJECTIVES[name].__qualname__})"
            )
        _OBJECTIVES[name] = cls
        return cls

    return register


def unregister_objective(name: str) -> None:
    """Remove `name` from the registry (e.g. a test's objective)."""
    if name not in _OBJECTIVES:
        raise ValueError(f"no objective {name!r} is registered")
    del _OBJECTIVES[name]


def registered_objectives() -> list[str]:
    """The registered names, in registration order."""
    return list(_OBJECTIVES)


def objective_class(name: str) -> type[TrainingObjective]:
    """The class registered as `name`; `UserInputError` naming the allowed values otherwise."""
    if name not in _OBJECTIVES:
        allowed = ", ".join(repr(known) for known in _OBJECTIVES)
        raise UserInputError(
            f"config key 'objective.name' is {name!r}; allowed values: {allowed}"
            + did_you_mean(name, _OBJECTIVES)
        )
    return _OBJECTIVES[name]


def build_objective(
    model: nn.Module, config: ObjectiveConfig, *, num_classes: int | None, group: Group
) -> TrainingObjective:
    """The objective `config.name` around `model`, training over the ranks of `group`."""
    return objective_class(config.name)(model, config, num_classes=num_classes, group=group)
