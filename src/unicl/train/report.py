"""The end-of-run report: `report.md` with a summary, the health conditions the run met (when
any), the final evaluation, the resolved config and PNG plots of loss, learning rate, logit scale
and evaluation metrics over steps (and the confusion matrices that zero-shot evaluation saved
beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from unicl.files import atomic_path, write_text_atomic
from unicl.train.health import CURVES
from unicl.train.logger import METRICS_FILE, read_metrics

REPORT_FILE = "report.md"
_TRAIN_PLOTS = (("loss", "training loss"), ("lr", "learning rate"), ("logit_scale", "logit scale"))


def write_report(
    output_dir: Path, summary: dict[str, Any], config_yaml: str, data: dict[str, Any] | None = None
) -> Path:
    """Write `report.md` and its plots under `output_dir` from its `metrics.jsonl`.

    `summary` holds the run's headline numbers (name -> value), printed as a table in order;
    `data` is the stream's description (`UnifiedStream.describe()`).
    """
    output_dir = Path(output_dir)
    records = read_metrics(output_dir / METRICS_FILE)
    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    lines = ["# Training report", "", "| | |", "| --- | --- |"]
    lines += [f"| {name} | {_format(value)} |" for name, value in summary.items()]
    health = [r for r in records if r["kind"] == "health"]
    if health:
        lines += _health_section(health, train, output_dir)
    if evals:
        final = evals[-1]
        lines += ["", f"## Evaluation at step {final['step']}", "", "| metric | value |"]
        lines += ["| --- | --- |"]
        lines += [f"| {k} | {_format(v)} |" for k, v in final.items() if k not in ("kind", "step")]
    if data is not None:
        lines += _data_section(data)
    lines += ["", "## Curves", ""]
    for key, title in _TRAIN_PLOTS:
        if _plot(train, [key], title, output_dir / f"{key}.png"):
            lines.append(f"![{title}]({key}.png)")
    metric_names = sorted({k for r in evals for k in r if k not in ("kind", "step")})
    # one evaluation is the table above; a curve needs two points
    if len(evals) > 1 and _plot(evals, metric_names, "evaluation", output_dir / "eval.png"):
        lines.append("![evaluation](eval.png)")
    for confusion in sorted(output_dir.glob("confusion_*.png")):
        lines.append(f"![{confusion.stem}]({confusion.name})")
    lines += ["", "## Configuration", "", "```yaml", config_yaml.rstrip(), "```", ""]
    path = output_dir / REPORT_FILE
    write_text_atomic(path, "\n".join(lines))
    return path


def _data_section(data: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Data",
        "",
        "| source | modality | samples | per epoch |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s['source']} | {s['modality']} | {s['samples']} | {s['per_epoch']} |"
        for s in data["sources"]
    ]
    classes = data["classes"]
    shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
    lines += [
        "",
        f"Image-text pairs are {data['image_text_share']:.1%} of an epoch, and so of an average "
        f"batch. {len(classes)} classes" + (f": {shown}." if classes else "."),
    ]
    return lines


def _health_section(
    health: list[dict[str, Any]], train: list[dict[str, Any]], output_dir: Path
) -> list[str]:
    """A row per condition the run met (health records of `metrics.jsonl`), each with a plot of
    the curves that show it (`unicl.train.health.CURVES`): its reference values as dashed lines,
    the step it began as a dotted one."""
    lines = [
        "",
        "## Health",
        "",
        "| condition | began at step | found at step | action | what happened |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['condition']} | {r['since']} | {r['step']} | "
        f"{'stopped the run' if r['action'] == 'stop' else 'warning'} | {r['message']} |"
        for r in health
    ]
    lines.append("")
    for record in health:
        name = f"health_{record['condition']}_{record['step']}.png"
        panels = CURVES[record["condition"]]
        if _plot_panels(train, panels, record, output_dir / name):
            lines.append(f"![{record['condition']}]({name})")
    return lines


def _plot_panels(
    records: list[dict[str, Any]], panels: tuple, event: dict[str, Any], path: Path
) -> bool:
    drawn = [(keys, _series(records, keys)) for keys in panels]
    drawn = [(keys, series) for keys, series in drawn if series]
    if not drawn:
        return False
    figure, axes = plt.subplots(len(drawn), 1, figsize=(6, 2.6 * len(drawn)), squeeze=False)
    for ax, (keys, series) in zip(axes[:, 0], drawn, strict=True):
        for key, (steps, values) in series.items():
            ax.plot(steps, values, marker="o" if len(steps) < 20 else None, label=key)
        for key, value in event["references"].items():
            if key in keys:
                ax.axhline(value, color="gray", linestyle="--", label=f"reference {value:.4g}")
        ax.axvline(event["since"], color="red", linestyle=":", label=f"began at {event['since']}")
        if len(keys) > 1:  # gradient norm and spreads: decades apart; zeros are left out
            ax.set_yscale("log", nonpositive="mask")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0, 0].set_title(f"{event['condition']} (step {event['step']})")
    axes[-1, 0].set_xlabel("step")
    _save(figure, path)
    return True


def _series(
    records: list[dict[str, Any]], keys: tuple[str, ...] | list[str]
) -> dict[str, tuple[tuple, tuple]]:
    """Per key, the steps and the values it has in `records` (keys with none left out)."""
    series = {}
    for key in keys:
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
        if points:
            series[key] = tuple(zip(*points, strict=True))
    return series


def _plot(records: list[dict[str, Any]], keys: list[str], title: str, path: Path) -> bool:
    series = _series(records, keys)
    if not series:
        return False
    figure, axes = plt.subplots(figsize=(6, 3.5))
    for key, (steps, values) in series.items():
        axes.plot(steps, values, marker="o" if len(steps) < 20 else None, label=key)
    axes.set_xlabel("step")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if len(series) > 1:
        axes.legend()
    _save(figure, path)
    return True


def _save(figure: plt.Figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path, ".png") as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
