"""Evaluation shared by 2 gloo processes (each encodes its share, every rank receives all
features) gives the metrics of one process: training's evaluation hook, zero-shot, retrieval and
the linear probe on the real demo data and a real model."""

import json
import os
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp

from tests.conftest import free_port
from tests.train.conftest import join_two_process_group
from unicl.evaluate import Shards, encode_dataset
from unicl.evaluate.inputs import open_eval_dataset
from unicl.models import create_model
from unicl.train import load_training_config
from unicl.train.launch import close_process
from unicl.train.periodic_eval import evaluate_run

pytestmark = pytest.mark.distributed

HELD_OUT = "data/demo/fashion-mnist#t10k?take=0:301"  # odd: the ranks' shares differ in size
CAPTIONS = "data/demo/emoji/test-000000.tar"


def _state(output_dir, with_probe, is_main=True):
    probe = f"[{{train: '{HELD_OUT}', test: '{HELD_OUT}', name: fm}}]" if with_probe else "[]"
    config = load_training_config(
        "configs/demo.yaml",
        [
            f"run.output_dir={output_dir}",
            "evaluation.num_workers=0",
            "evaluation.batch_size=64",
            f"evaluation.zeroshot=[{{source: '{HELD_OUT}', name: fm}}]",
            f"evaluation.retrieval=[{{source: '{CAPTIONS}'}}]",
            f"evaluation.linear_probe={probe}",
        ],
    )
    torch.manual_seed(0)
    return SimpleNamespace(
        model=create_model("unicl-tiny").eval(),
        config=config,
        context=SimpleNamespace(device=torch.device("cpu"), is_main=is_main, group=None),
    )


def _worker(rank, port, directory, with_probe):
    context = join_two_process_group(rank, port)
    try:
        state = _state(directory / f"rank{rank}", with_probe, is_main=context.is_main)
        metrics = evaluate_run(state)
        model = state.model
        dataset = open_eval_dataset(HELD_OUT, model)
        encoded = encode_dataset(model, dataset, batch_size=64, shards=Shards())
        torch.save(
            {"metrics": metrics, "features": encoded.features, "targets": encoded.targets},
            directory / f"rank{rank}.pt",
        )
    finally:
        close_process()


@pytest.mark.parametrize("with_probe", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_two_processes_evaluate_like_one(tmp_path, with_probe):
    os.makedirs(tmp_path / "rank0")
    os.makedirs(tmp_path / "rank1")
    single_state = _state(tmp_path / "one", with_probe)
    os.makedirs(tmp_path / "one")
    expected = evaluate_run(single_state)
    dataset = open_eval_dataset(HELD_OUT, single_state.model)
    single = encode_dataset(single_state.model, dataset, batch_size=64)
    mp.spawn(_worker, args=(free_port(), tmp_path, with_probe), nprocs=2, join=True)
    assert ("fm/probe_top1" in expected) is with_probe
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["metrics"] == pytest.approx(expected, abs=1e-6), json.dumps(result["metrics"])
        torch.testing.assert_close(result["features"], single.features)
        assert result["targets"] == single.targets
    assert (tmp_path / "rank0" / "confusion_fm.png").exists()
    assert not (tmp_path / "rank1" / "confusion_fm.png").exists()
