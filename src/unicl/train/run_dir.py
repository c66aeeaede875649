"""The run directory's rules: a new run never reuses a folder that holds anything, and a resumed
run continues the run it finds, refusing a config that would make it a different run.

A run directory holds `config.yaml` (the resolved config, written before the first step),
`metrics.jsonl`, `checkpoints/`, and at the end `model/` and `report.md`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from unicl.errors import UserInputError
from unicl.train.checkpoint import list_checkpoints, resolve_resume
from unicl.train.config import TrainConfig, config_from_dict, config_to_dict
from unicl.train.logger import METRICS_FILE

RUN_CONFIG = "config.yaml"
# Keys that may differ when a run is resumed: how it is watched (and what a collapse does), saved
# and evaluated, where and with how many readers it computes (an epoch interrupted with another
# worker count is finished as it was laid out), whether its towers are compiled, how much bad data it tolerates, the
# spelling of its folder, and how long it goes on (`schedule.steps`, with a note). Everything
# else defines the run.
RESUMABLE_CHANGES = (
    "logging.",
    "evaluation.",
    "checkpoint.",
    "run.device",
    "run.threads",
    "run.compile",
    "run.timeout_minutes",
    "run.on_collapse",
    "run.output_dir",
    "data.num_workers",
    "data.max_bad_fraction",
)


def start_point(config: TrainConfig, resume: str | None) -> tuple[list[Path], list[str]]:
    """The checkpoints to resume from, newest last (`--resume latest`: every complete one, so a
    damaged newest one can fall back to an older one; `--resume PATH`: that file; none for a run
    that starts at step 0), and notes for the user about what resuming changed.

    Without `resume` the output directory must be new or empty. With `--resume latest` in a run
    directory that has no checkpoint yet (stopped before the first one), the run starts again
    from step 0 with a note. A resumed run must keep every key that defines it.
    """
    output_dir = config.output_dir
    if output_dir.exists() and not output_dir.is_dir():
        raise UserInputError(
            f"run.output_dir {str(output_dir)!r} is a file; choose a folder for the run"
        )
    if resume is None:
        _refuse_used_folder(output_dir)
        return [], []
    saved = _saved_config(output_dir)
    notes = [] if saved is None else _resumable_changes(saved, config, output_dir)
    if resume == "latest" and saved is not None and not list_checkpoints(output_dir):
        notes.append(f"{output_dir} has no checkpoint yet; starting its run again from step 0")
        return [], notes
    newest = resolve_resume(resume, output_dir)
    return (list_checkpoints(output_dir) if resume == "latest" else [newest]), notes


def _refuse_used_folder(output_dir: Path) -> None:
    if not output_dir.is_dir():
        return
    markers = (RUN_CONFIG, METRICS_FILE)
    if list_checkpoints(output_dir) or any((output_dir / name).exists() for name in markers):
        raise UserInputError(
            f"run.output_dir {str(output_dir)!r} already holds a run; continue it with "
            "--resume latest, or start a new one elsewhere (--set run.output_dir=...)"
        )
    held = sorted(child.name for child in output_dir.iterdir())
    if held:
        raise UserInputError(
            f"run.output_dir {str(output_dir)!r} holds other files ({', '.join(held[:3])}"
            f"{', ...' if len(held) > 3 else ''}); choose a new or empty folder for the run"
        )


def _saved_config(output_dir: Path) -> TrainConfig | None:
    path = output_dir / RUN_CONFIG
    if not path.is_file():
        return None
    try:
        return config_from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, UnicodeDecodeError, UserInputError) as error:
        raise UserInputError(f"{path} is not a readable run config ({error}); restore it") from None


_UNSET = object()


def _setting(key: str, value: Any) -> str:
    return f"{key} unset" if value is _UNSET else f"{key}={value!r}"


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict):
        flat: dict[str, Any] = {}
        for key, value in values.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): values}


def _resumable_changes(saved: TrainConfig, config: TrainConfig, output_dir: Path) -> list[str]:
    """Notes on the allowed changes; a changed key that defines the run is refused, naming it
    and both values. A different `schedule.steps` (going on longer, or stopping sooner) is
    allowed with a note: the learning-rate schedule is stretched to the new length."""
    notes = []
    before, after = _flatten(config_to_dict(saved)), _flatten(config_to_dict(config))
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key, _UNSET), after.get(key, _UNSET)
        if old == new or key.startswith(RESUMABLE_CHANGES):
            continue
        if key == "schedule.steps":
            notes.append(f"continuing {output_dir} to {new} steps (it was set to {old})")
            continue
        raise UserInputError(
            f"cannot resume {str(output_dir)!r} with {_setting(key, new)}: the run was started "
            f"with {_setting(key, old)}; resume with the run's own settings or start a new run "
            "elsewhere"
        )
    return notes
