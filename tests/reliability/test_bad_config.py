"""Bad training configs and overrides: a one-line error before anything is written."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import run_unicl


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=.inf", "'optim.lr' is inf; it must be a finite number"),
        ("optim.weight_decay=nan", "'optim.weight_decay' is 'nan'; it must be a finite number"),
        ("optim.lr=[1", "--set optim.lr: the value '[1' is expected"),
        ("run.seed=-1", "'run.seed' is -1; it must be an integer in [0, 9223372036854775807]"),
        ("run.threads=1000000000000", "'run.threads' is 1000000000000; it must be an integer in"),
        ("objective.num_classes=10000000000", "'objective.num_classes' is 10000000000; it must"),
    ],
)
def test_non_finite_and_malformed_overrides_are_refused(tmp_path, override, message):
    run = tmp_path / "run"
    outcome = run_unicl(
        "train", "configs/demo.yaml", "--set", override, "--set", f"run.output_dir={run}"
    )
    assert outcome.status == 2
    assert message in outcome.error_line
    assert not run.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model: {name: caf\xe9}\n".encode("latin-1"), "is not UTF-8 text (invalid continuation"),
        (bytes(range(256)), "is not UTF-8 text (invalid start byte at byte 128)"),
        (b"model: {name: [unicl-tiny\n", "is not valid YAML: expected ',' or ']', but got"),
        (b"model: !!python/object/apply:os.system [ls]\n", "could not determine a constructor"),
    ],
)
def test_a_config_file_that_is_not_utf8_or_yaml_is_one_line(tmp_path, content, message):
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    outcome = run_unicl("train", config)
    assert outcome.status == 2
    assert message in outcome.error_line


def test_augmentation_arguments_kornia_refuses_are_one_line(tmp_path):
    run = tmp_path / "run"
    outcome = run_unicl(
        "train", "configs/demo.yaml", "--set", "data.augment={scale: [5, -1]}",
        "--set", "data.num_workers=0", "--set", f"run.output_dir={run}",
    )  # fmt: skip
    assert outcome.status == 2
    assert "config key 'data.augment': scale[0] should be smaller than scale[1]" in (
        outcome.error_line
    )
    assert not (run / "checkpoints").exists()
