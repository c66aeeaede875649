"""The periodic evaluation hook of training: every configured evaluator's metrics under its name."""

from types import SimpleNamespace

import pytest
import torch

from unicl.errors import UserInputError
from unicl.models import create_model
from unicl.train import load_training_config
from unicl.train.periodic_eval import evaluate_run

HELD_OUT = "data/demo/fashion-mnist#t10k"
CAPTIONS = "data/demo/emoji/test-000000.tar"


def test_zeroshot_retrieval_and_probe_metrics_are_reported_by_name(tmp_path):
    config = load_training_config(
        "configs/demo.yaml",
        [
            f"run.output_dir={tmp_path}",
            f"evaluation.zeroshot=[{{source: '{HELD_OUT}', name: fm}}]",
            f"evaluation.retrieval=[{{source: '{CAPTIONS}'}}]",
            f"evaluation.linear_probe=[{{train: '{HELD_OUT}', test: '{HELD_OUT}', name: fm}}]",
        ],
    )
    state = SimpleNamespace(
        model=create_model("unicl-tiny").eval(),
        config=config,
        context=SimpleNamespace(device=torch.device("cpu"), is_main=True, group=None),
    )
    rng_before = torch.get_rng_state()
    metrics = evaluate_run(state)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert set(metrics) == {
        "fm/zeroshot_top1",
        "fm/zeroshot_top5",
        "fm/zeroshot_mean_recall",
        "fm/probe_top1",
        *(f"test-000000/{d}_R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)),
    }
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    assert metrics["fm/probe_top1"] > 0.3  # random features still separate Fashion-MNIST
    assert (tmp_path / "confusion_fm.png").stat().st_size > 0


def test_a_probe_without_a_test_source_is_a_config_error():
    with pytest.raises(UserInputError, match=r"evaluation\.linear_probe\.test"):
        load_training_config(
            "configs/demo.yaml", [f"evaluation.linear_probe=[{{train: '{HELD_OUT}'}}]"]
        )
