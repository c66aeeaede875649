"""`unicl wise-ft`: one mixture written as a model, or a sweep scored on held-out data, on a real
tiny model fine-tuned by the real trainer from a saved one."""

import json

import pytest
import torch

from tests.data.data_corpus import write_image_folder
from unicl.cli.main import main
from unicl.evaluate import evaluate_zeroshot
from unicl.models import create_model, load
from unicl.models.interpolate import interpolate_weights
from unicl.train import load_training_config, train


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(zero-shot model dir, fine-tuned model dir, held-out Fashion-MNIST folder of 40 images):
    unicl-tiny saved, then fine-tuned on the demo data for 2 steps with the text tower locked and
    layer-wise decay on the image tower."""
    root = tmp_path_factory.mktemp("wise-ft")
    torch.manual_seed(0)
    create_model("unicl-tiny").save_pretrained(root / "zeroshot")
    config = load_training_config(
        "configs/demo.yaml",
        [
            f"model.name={root / 'zeroshot'}",
            "model.lock_text={}",
            "optim.layer_decay=0.7",
            f"run.output_dir={root / 'run'}",
            "data.batch_size=8",
            "data.num_workers=0",
            "schedule.steps=2",
            "schedule.warmup_steps=1",
            "evaluation.zeroshot=[]",
            "logging.progress=false",
        ],
    )
    finetuned = train(config).model_dir
    return root / "zeroshot", finetuned, write_image_folder(root / "held-out", 40)


def test_one_mixture_is_written_as_a_model(models, tmp_path, capsys):
    zeroshot, finetuned, _ = models
    out = tmp_path / "wise"
    assert (
        main(["wise-ft", str(zeroshot), str(finetuned), "--alpha", "0.3", "--out", str(out)]) == 0
    )
    assert capsys.readouterr().out == f"model (alpha 0.3): {out}\n"
    expected = interpolate_weights(load(zeroshot), load(finetuned), 0.3).state_dict()
    for name, value in load(out).state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert not (tmp_path / "wise.json").exists()
    card = (out / "README.md").read_text()  # the whole history, latest first
    steps = [
        "WiSE-FT interpolation (`unicl wise-ft`), alpha 0.3",
        "Trained with `unicl train` from",
        "objective `unicl`, 2 steps, 16 samples seen, global batch 8.",
        "| image-label | 8000 | MIT, Copyright (c) 2017 Zalando SE",
        "| image-text | 1000 | CC-BY 4.0 (Twemoji graphics",
        "Built from the config `unicl-tiny`",
    ]
    assert [card.index(step) for step in steps] == sorted(card.index(step) for step in steps)
    assert main(["wise-ft", str(zeroshot), str(finetuned), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"unicl: error: {out} already exists; choose another --out\n"


def test_a_sweep_scores_every_mixture_and_writes_the_table_beside_out(models, tmp_path, capsys):
    zeroshot, finetuned, held_out = models
    out = tmp_path / "sweep"
    args = ["wise-ft", str(zeroshot), str(finetuned), "--alphas", "0,0.5,1", "--out", str(out)]
    assert main([*args, "--eval-zeroshot", str(held_out), "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["alpha", "held-out", "top1", "held-out", "top5"]
    assert [line.split()[0] for line in printed[1:4]] == ["0", "0.5", "1"]
    assert printed[4] == f"results: {tmp_path / 'sweep.json'}"
    assert not out.exists()  # no model per alpha unless asked
    table = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["alpha"] for row in table["results"]] == [0.0, 0.5, 1.0]
    assert all(row["model"] is None for row in table["results"])
    first, last = table["results"][0], table["results"][-1]
    for row, model_dir in ((first, zeroshot), (last, finetuned)):
        expected = evaluate_zeroshot(load(model_dir).eval(), str(held_out))
        assert row["zeroshot"][str(held_out)] == expected
    assert first["zeroshot"][str(held_out)]["num_samples"] == 40


def test_a_sweep_writes_each_mixture_when_asked(models, tmp_path):
    zeroshot, finetuned, held_out = models
    out = tmp_path / "sweep"
    args = ["wise-ft", str(zeroshot), str(finetuned), "--alphas", "0.25,1", "--out", str(out)]
    assert main([*args, "--eval-zeroshot", str(held_out), "--save-models", "--json"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alpha-0.25", "alpha-1"]
    table = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["model"] for row in table["results"]] == [
        str(out / "alpha-0.25"),
        str(out / "alpha-1"),
    ]
    kept = load(out / "alpha-1").state_dict()
    assert all(torch.equal(v, kept[k]) for k, v in load(finetuned).state_dict().items())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alphas", "0,0.5"], "--alphas sweeps need at least one --eval-zeroshot SOURCE"),
        (["--alphas", "0,half", "--eval-zeroshot", "x"], "--alphas is '0,half'; give comma-"),
        (["--alphas", "0,1.5", "--eval-zeroshot", "x"], "--alphas is 0.0, 1.5; each must be in"),
        (["--alphas", "0,0", "--eval-zeroshot", "x"], "--alphas lists a value twice: 0,0"),
        (["--alpha", "-1"], "--alpha is -1.0; each must be in [0, 1]"),
    ],
)
def test_bad_mixing_options_fail_before_any_work(models, tmp_path, capsys, extra, message):
    zeroshot, finetuned, _ = models
    assert (
        main(["wise-ft", str(zeroshot), str(finetuned), "--out", str(tmp_path / "o"), *extra]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"unicl: error: {message}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_models_of_other_architectures_are_refused(models, tmp_path, capsys):
    zeroshot, _, _ = models
    create_model("unicl-tiny", embed_dim=64).save_pretrained(tmp_path / "other")
    assert (
        main(["wise-ft", str(zeroshot), str(tmp_path / "other"), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert "the models have different architectures: 'image_projection.weight' is" in err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()
