"""`unicl eval ...`, `unicl predict` and `unicl embed` as a user runs them."""

import json

import numpy as np
import pytest
from PIL import Image

from unicl.cli.main import main
from unicl.models import create_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    create_model("unicl-tiny").save_pretrained(directory)
    return directory


@pytest.fixture
def labelled(tmp_path):
    """An ImageFolder of 2 classes x 4 plain-colour images."""
    for name, colour in (("black", 0), ("white", 255)):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (20, 20), (colour, colour, abs(colour - 9 * i))).save(
                tmp_path / "data" / name / f"{i}.png"
            )
    return tmp_path / "data"


@pytest.fixture
def captioned(tmp_path):
    Image.new("RGB", (20, 20), "red").save(tmp_path / "red.png")
    Image.new("RGB", (20, 20), "blue").save(tmp_path / "blue.png")
    rows = [("red.png", "a red tile"), ("red.png", "red"), ("blue.png", "a blue tile")]
    manifest = tmp_path / "captions.csv"
    manifest.write_text("image,caption\n" + "".join(f"{i},{c}\n" for i, c in rows))
    return manifest


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("unicl: error: ") and error.count("\n") == 1
    return error


def test_zeroshot_writes_json_and_confusion_png_next_to_the_model(model_dir, labelled, capsys):
    assert main(["eval", "zeroshot", str(model_dir), "--data", str(labelled)]) == 0
    result = model_dir / "evaluation" / "zeroshot-data.json"
    saved = json.loads(result.read_text())
    assert saved["num_samples"] == 8 and 0.0 <= saved["top1"] <= 1.0
    assert result.with_suffix(".png").is_file()
    assert f"results: {result}" in capsys.readouterr().out


def test_linear_probe_and_retrieval_print_json(model_dir, labelled, captioned, tmp_path, capsys):
    out = tmp_path / "probe.json"
    argv = ["eval", "linear-probe", str(model_dir), "--train", str(labelled)]
    assert main([*argv, "--test", str(labelled), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_test"] == 8 and json.loads(out.read_text())["top1"] == printed["top1"]
    assert main(["eval", "retrieval", str(model_dir), "--data", str(captioned), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["num_images"] == 2 and printed["num_texts"] == 3


def test_predict_prints_top_k_labels_per_image(model_dir, labelled, capsys):
    images = sorted(str(p) for p in labelled.rglob("*.png"))[:2]
    argv = ["predict", str(model_dir), *images, "--labels", "cat, dog ,ship", "--top-k", "2"]
    assert main([*argv, "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    assert [p["image"] for p in predictions] == images
    assert all(
        len(p["labels"]) == 2 and set(p["labels"]) <= {"cat", "dog", "ship"} for p in predictions
    )
    assert main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0] == images[0] and table[1].strip().endswith("%")


def test_embed_writes_npy_and_index(model_dir, captioned, tmp_path, capsys):
    out = tmp_path / "captions.npy"
    argv = ["embed", str(model_dir), "--data", str(captioned), "--out", str(out)]
    assert main([*argv, "--modality", "text"]) == 0
    assert np.load(out).shape == (3, 128)
    assert len(out.with_suffix(".index.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "zeroshot", "{tmp}/nowhere", "--data", "{data}"], "does not exist"),
        (["eval", "zeroshot", "{tmp}", "--data", "{data}"], "config.json is missing"),
        (["eval", "zeroshot", "{model}", "--data", "{tmp}/missing"], "does not exist"),
        (["eval", "zeroshot", "{model}", "--data", "{captions}"], "needs images with class"),
        (["eval", "retrieval", "{model}", "--data", "{data}"], "needs images with captions"),
        (["eval", "zeroshot", "{model}", "--data", "{data}", "--templates", "x"], "templates"),
        (["eval", "zeroshot", "{model}", "--data", "{data}", "--batch-size", "0"], "batch-size"),
        (["eval", "zeroshot", "{model}", "--data", "{data}", "--device", "gpu7"], "device"),
        (["predict", "{model}", "{tmp}/no.png", "--labels", "a,b"], "no.png"),
        (["predict", "{model}", "{image}", "--labels", " , "], "label list is empty"),
        (["predict", "{model}", "{image}", "--labels-file", "{tmp}/x.txt"], "x.txt"),
        (["predict", "{model}", "{image}", "--labels", "a,a"], "repeated"),
        (
            ["embed", "{model}", "--data", "{data}", "--out", "{tmp}/e", "--modality", "text"],
            "no captions",
        ),
    ],
)
def test_wrong_inputs_give_one_line_errors(
    model_dir, labelled, captioned, tmp_path, capsys, argv, message
):
    image = next(labelled.rglob("*.png"))
    values = {"tmp": tmp_path, "model": model_dir, "data": labelled, "captions": captioned}
    values["image"] = image
    error = _one_line_error(capsys, [part.format(**values) for part in argv])
    assert message in error


def test_an_unreadable_image_is_named(model_dir, tmp_path, capsys):
    bad = tmp_path / "photo.png"
    bad.write_text("this is not an image")
    error = _one_line_error(capsys, ["predict", str(model_dir), str(bad), "--labels", "a,b"])
    assert "photo.png" in error and "unreadable" in error


def test_embed_texts_from_a_file_with_threads(model_dir, tmp_path, capsys):
    texts = tmp_path / "queries.txt"
    texts.write_text("a red tile\n\n  a blue tile  \n")
    out = tmp_path / "queries.npy"
    argv = ["embed", str(model_dir), "--texts", str(texts), "--out", str(out), "--threads", "1"]
    assert main(argv) == 0
    assert np.load(out).shape == (2, 128)
    index = [json.loads(line) for line in out.with_suffix(".index.jsonl").read_text().splitlines()]
    assert index == [{"row": 0, "text": "a red tile"}, {"row": 1, "text": "a blue tile"}]
