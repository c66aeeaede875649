"""`unicl train`: the resolved config, one-line errors, and the exit status."""

import json

import pytest

from unicl.cli.main import main
from unicl.evaluate import evaluate_zeroshot
from unicl.models import load
from unicl.train.checkpoint import list_checkpoints, load_checkpoint


def test_print_config_shows_overrides_and_defaults(capsys):
    code = main(["train", "configs/demo.yaml", "--set", "optim.lr=3e-3", "--print-config"])
    out = capsys.readouterr().out
    assert code == 0
    assert "lr: 0.003" in out and "precision: fp32" in out and "name: unicl-tiny" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrate=1", "unknown config key 'optim.lrate'"),
        (
            "objective.name=clap",
            "'objective.name' is 'clap'; allowed values: 'unicl', 'unicl-sigmoid', 'clip'",
        ),
        ("data.batch_size=0", "'data.batch_size' is 0; it must be > 0"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(capsys, override, message):
    code = main(["train", "configs/demo.yaml", "--set", override, "--print-config"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1


def test_missing_config_file(capsys):
    assert main(["train", "no/such.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_resume_latest_without_checkpoints_is_an_error(capsys, tmp_path):
    code = main(
        ["train", "configs/demo.yaml", "--set", f"run.output_dir={tmp_path}", "--resume", "latest"]
    )
    assert code == 2
    assert "no checkpoint in" in capsys.readouterr().err


def test_a_new_run_never_overwrites_another_run(capsys, tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    assert main(["train", "configs/demo.yaml", "--set", f"run.output_dir={tmp_path}"]) == 2
    assert "already holds a run; continue it with --resume latest" in capsys.readouterr().err


@pytest.mark.parametrize("objective", ["clip", "multitask"])
def test_the_paper_baselines_train_a_dual_encoder_from_the_command(tmp_path, objective):
    """`objective.name: clip | multitask` on the demo's labels + captions: both towers are saved
    (zero-shot works), and multitask's class head is in the checkpoint."""
    overrides = [
        f"objective.name={objective}",
        f"run.output_dir={tmp_path}",
        "data.batch_size=16",
        "data.num_workers=0",
        "schedule.steps=2",
        "schedule.warmup_steps=1",
        "evaluation.zeroshot=[]",
    ]
    code = main(["train", "configs/demo.yaml", *(f"--set={item}" for item in overrides)])
    assert code == 0
    assert "image_only" not in json.loads((tmp_path / "model" / "config.json").read_text())
    model = load(tmp_path / "model")
    scores = evaluate_zeroshot(model, "data/demo/fashion-mnist?take=0:20#t10k", progress=False)
    assert 0.0 <= scores["top1"] <= 1.0
    saved = load_checkpoint(list_checkpoints(tmp_path)[-1])["objective"]
    if objective == "multitask":
        assert saved["head.weight"].shape == (10, model.embed_dim)
    else:
        assert not any(name.startswith("head.") for name in saved)
