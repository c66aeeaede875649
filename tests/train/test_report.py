"""The metrics file and the end-of-run report."""

import importlib.util

import pytest

from unicl.errors import UserInputError
from unicl.train.logger import MetricsSink, read_metrics
from unicl.train.report import write_report


def _train_record(step, loss):
    return {"kind": "train", "step": step, "loss": loss, "lr": 0.1 / step, "logit_scale": 14.0}


def test_resumed_sink_drops_records_after_the_resumed_step(tmp_path):
    sink = MetricsSink(tmp_path, enabled=True, tensorboard=False)
    for step in (1, 2, 3, 4):
        sink.write(_train_record(step, 1.0))
    sink.write({"kind": "eval", "step": 4, "a/zeroshot_top1": 0.5})
    resumed = MetricsSink(tmp_path, enabled=True, tensorboard=False, resume_step=2)
    resumed.write(_train_record(3, 0.5))
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == [
        (1, 1.0),
        (2, 1.0),
        (3, 0.5),
    ]


def test_disabled_sink_writes_nothing(tmp_path):
    MetricsSink(tmp_path, enabled=False, tensorboard=False).write(_train_record(1, 1.0))
    assert not (tmp_path / "metrics.jsonl").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="installed")
def test_tensorboard_without_the_package_names_the_extra(tmp_path):
    with pytest.raises(UserInputError, match=r"unicl\[tensorboard\]"):
        MetricsSink(tmp_path, enabled=True, tensorboard=True)


def test_report_has_summary_final_evaluation_plots_and_config(tmp_path):
    sink = MetricsSink(tmp_path, enabled=True, tensorboard=False)
    for step in range(1, 6):
        sink.write(_train_record(step, 2.0 / step))
    sink.write({"kind": "eval", "step": 3, "fm/zeroshot_top1": 0.6})
    sink.write({"kind": "eval", "step": 5, "fm/zeroshot_top1": 0.8})
    path = write_report(tmp_path, {"steps": 5, "final loss": 0.4}, "model:\n  name: x\n")
    text = path.read_text()
    assert "| steps | 5 |" in text and "| final loss | 0.4 |" in text
    assert "## Evaluation at step 5" in text and "| fm/zeroshot_top1 | 0.8 |" in text
    assert "name: x" in text
    for plot in ("loss", "lr", "logit_scale", "eval"):
        assert f"({plot}.png)" in text
        assert (tmp_path / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"


def test_report_describes_the_real_streams_data_and_skips_a_one_point_curve(tmp_path):
    from unicl.data import UnifiedStream

    stream = UnifiedStream(
        ["data/demo/fashion-mnist", "data/demo/emoji/train-{000000..000003}.tar"],
        batch_size=64,
        image_size=28,
        balance=False,
    )
    sink = MetricsSink(tmp_path, enabled=True, tensorboard=False)
    sink.write(_train_record(1, 1.0))
    sink.write({"kind": "eval", "step": 1, "fm/zeroshot_top1": 0.5})
    text = write_report(tmp_path, {"steps": 1}, "", data=stream.describe()).read_text()
    assert "| idx source 'data/demo/fashion-mnist' | image-label | 8000 | 8000 |" in text
    assert "| image-text | 1000 | 1000 |" in text
    assert "Image-text pairs are 11.1% of an epoch" in text and "10 classes: t-shirt or top" in text
    assert "(eval.png)" not in text and not (tmp_path / "eval.png").exists()
    assert text.count("fm/zeroshot_top1") == 1
