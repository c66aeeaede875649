"""The `evaluation` section of the training config: what a run scores, periodically and at the
end (`unicl.train.periodic_eval`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unicl.config_checks import require
from unicl.data.readers import parse_source
from unicl.errors import UserInputError


def require_source(value: Any, key: str) -> None:
    require(value is not None, key, None, "a source")
    try:
        parse_source(value)
    except UserInputError as error:
        raise UserInputError(f"config key '{key}': {error}") from None


@dataclass
class ZeroShotConfig:
    """A held-out image-label source (a source string or mapping, as in `data.sources`) scored by
    zero-shot classification with prompt classifiers from `templates` (a template set name or
    file; null: the source's own). `name` prefixes its metrics (default: the source's name)."""

    source: Any = None
    name: str | None = None
    templates: str | None = None

    def validate(self) -> None:
        require_source(self.source, "evaluation.zeroshot.source")


@dataclass
class RetrievalConfig:
    """An image-text source scored by image-to-text and text-to-image recall@1/5/10. `name`
    prefixes its metrics (default: the source's name)."""

    source: Any = None
    name: str | None = None

    def validate(self) -> None:
        require_source(self.source, "evaluation.retrieval.source")


@dataclass
class LinearProbeConfig:
    """A linear probe of the image tower: logistic regression fitted on the frozen features of the
    image-label source `train` (L2 chosen on a validation split), scored on `test`. `name` prefixes
    its metrics (default: the test source's name)."""

    train: Any = None
    test: Any = None
    name: str | None = None

    def validate(self) -> None:
        require_source(self.train, "evaluation.linear_probe.train")
        require_source(self.test, "evaluation.linear_probe.test")


@dataclass
class EvaluationConfig:
    """Evaluation every `every_steps` steps (null: only at the end) on the `zeroshot`,
    `retrieval` and `linear_probe` entries, `batch_size` images or texts at a time, reading
    images with `num_workers` DataLoader workers per process (null: `data.num_workers`). On
    several processes every rank encodes its share (`unicl.train.periodic_eval`)."""

    every_steps: int | None = None
    zeroshot: list[ZeroShotConfig] = field(default_factory=list)
    retrieval: list[RetrievalConfig] = field(default_factory=list)
    linear_probe: list[LinearProbeConfig] = field(default_factory=list)
    batch_size: int = 256
    num_workers: int | None = None

    def validate(self) -> None:
        if self.every_steps is not None:
            require(self.every_steps > 0, "evaluation.every_steps", self.every_steps, "> 0")
        require(self.batch_size > 0, "evaluation.batch_size", self.batch_size, "> 0")
        if self.num_workers is not None:
            require(
                self.num_workers >= 0, "evaluation.num_workers", self.num_workers, ">= 0 or null"
            )

    @property
    def enabled(self) -> bool:
        """True when any evaluation is configured."""
        return bool(self.zeroshot or self.retrieval or self.linear_probe)
