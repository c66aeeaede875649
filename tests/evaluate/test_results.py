"""Result files are written whole or not at all, and the confusion figure is a real PNG."""

import json

import torch
from PIL import Image

from unicl.evaluate.results import plot_confusion_matrix, write_json


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "results" / "zeroshot.json"
    write_json(target, {"top1": 0.5})
    write_json(target, {"top1": 0.75, "top5": 1.0})
    assert json.loads(target.read_text()) == {"top1": 0.75, "top5": 1.0}
    assert [p.name for p in target.parent.iterdir()] == ["zeroshot.json"]


def test_confusion_matrix_png_is_written(tmp_path):
    confusion = torch.tensor([[5, 1, 0], [0, 3, 3], [1, 0, 6]])
    path = plot_confusion_matrix(confusion, ["cat", "dog", "bird"], tmp_path / "confusion.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) > 100
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]


def test_confusion_matrix_png_for_many_classes_skips_cell_labels(tmp_path):
    confusion = torch.eye(25, dtype=torch.int64) * 3
    names = [f"class {i}" for i in range(25)]
    path = plot_confusion_matrix(confusion, names, tmp_path / "confusion.png")
    assert path.stat().st_size > 0
