"""Top-k prediction for image files, and embeddings written to .npy with an index."""

import json

import numpy as np
import pytest
import torch

from unicl.errors import UserInputError
from unicl.evaluate import classify, embed_images, export_embeddings, predict
from unicl.evaluate.inputs import model_transform, read_images

LABELS = ["cat", "dog", "red square", "ship"]


def test_predictions_are_the_most_probable_labels_in_order(tiny_model, colour_folder):
    paths = sorted(colour_folder().rglob("*.png"))[:3]
    probabilities = classify(tiny_model, paths, LABELS)
    predictions = predict(tiny_model, paths, LABELS, top_k=2)
    for prediction, row, path in zip(predictions, probabilities, paths, strict=True):
        assert prediction.image == str(path)
        assert prediction.labels[0] == LABELS[int(row.argmax())]
        assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)
        assert prediction.probabilities[0] == pytest.approx(row.max().item())


def test_top_k_beyond_the_label_count_returns_every_label(tiny_model, colour_folder):
    path = next(colour_folder().rglob("*.png"))
    (prediction,) = predict(tiny_model, [path], LABELS, top_k=10)
    assert sorted(prediction.labels) == sorted(LABELS)
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)


def test_a_missing_image_file_is_named_in_the_error(tiny_model, tmp_path):
    with pytest.raises(UserInputError, match=r"nowhere\.png.*missing"):
        predict(tiny_model, [tmp_path / "nowhere.png"], LABELS)


def test_image_embeddings_and_their_index(tiny_model, colour_folder, tmp_path):
    root = colour_folder()
    npy, index = export_embeddings(tiny_model, str(root), tmp_path / "out" / "emb")
    assert npy.name == "emb.npy" and index.name == "emb.index.jsonl"
    embeddings = np.load(npy)
    entries = [json.loads(line) for line in index.read_text().splitlines()]
    assert embeddings.shape == (18, tiny_model.embed_dim) and len(entries) == 18
    first = entries[0]
    transform = model_transform(tiny_model)
    (image,) = read_images([first["key"]])
    expected = embed_images(tiny_model, transform(image).unsqueeze(0))
    assert torch.allclose(torch.from_numpy(embeddings[0]), expected[0], atol=1e-5)
    assert first["row"] == 0 and first["class_name"] == "blue" and first["class_id"] == 0


def test_caption_embeddings_have_one_row_per_caption(tiny_model, caption_manifest, tmp_path):
    npy, index = export_embeddings(
        tiny_model, str(caption_manifest), tmp_path / "texts.npy", modality="text"
    )
    entries = [json.loads(line) for line in index.read_text().splitlines()]
    assert np.load(npy).shape[0] == 5
    assert [entry["text"] for entry in entries][:2] == ["a red square", "something red"]


def test_text_embeddings_of_labelled_data_are_refused(tiny_model, colour_folder, tmp_path):
    with pytest.raises(UserInputError, match="has no captions"):
        export_embeddings(tiny_model, str(colour_folder()), tmp_path / "e", modality="text")
