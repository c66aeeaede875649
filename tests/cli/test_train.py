"""`unicl train`: the resolved config, one-line errors, and the exit status."""

import pytest

from unicl.cli.main import main


def test_print_config_shows_overrides_and_defaults(capsys):
    code = main(["train", "configs/demo.yaml", "--set", "optim.lr=3e-3", "--print-config"])
    out = capsys.readouterr().out
    assert code == 0
    assert "lr: 0.003" in out and "precision: fp32" in out and "name: unicl-tiny" in out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrate=1", "unknown config key 'optim.lrate'"),
        ("objective.name=clip", "'objective.name' is 'clip'; allowed values: 'unicl', 'ce'"),
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
