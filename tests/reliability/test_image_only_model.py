"""A model trained with an image-only objective says so and refuses zero-shot use."""

from __future__ import annotations

from tests.reliability.conftest import run_unicl


def test_a_ce_model_is_marked_image_only_and_zero_shot_is_refused(tmp_path, labelled):
    run = tmp_path / "run"
    trained = run_unicl(
        "train", "configs/demo.yaml",
        "--set", "objective.name=ce", "--set", "schedule.steps=2", "--set", "schedule.warmup_steps=1",
        "--set", "data.batch_size=16", "--set", "evaluation.zeroshot=[]",
        "--set", f"run.output_dir={run}",
    )  # fmt: skip
    assert trained.status == 0, trained.stderr
    model = run / "model"
    assert '"image_only": true' in (model / "config.json").read_text()
    assert "image tower only" in (run / "report.md").read_text()
    for command in (
        ["eval", "zeroshot", model, "--data", labelled],
        ["predict", model, next(labelled.rglob("*.png")), "--labels", "black,white"],
    ):
        refused = run_unicl(*command)
        assert refused.status == 2
        assert "text tower was not trained" in refused.error_line
    info = run_unicl("info", model)
    assert info.status == 0 and "text tower was not trained" in info.stdout
