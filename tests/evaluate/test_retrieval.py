"""Retrieval over image-text data with several captions per image."""

import pytest
import torch

from unicl.errors import UserInputError
from unicl.evaluate import embed_images, embed_texts, evaluate_retrieval, retrieval_recall
from unicl.evaluate.inputs import model_transform, read_images


def test_rows_naming_one_image_file_are_one_image_with_several_captions(
    tiny_model, caption_manifest
):
    result = evaluate_retrieval(tiny_model, str(caption_manifest), ks=(1, 3, 5))
    assert result["num_images"] == 3 and result["num_texts"] == 5
    assert result["text_to_image_R@3"] == 1.0  # every image is among the top 3 of 3
    assert result["image_to_text_R@5"] == 1.0  # every caption is among the top 5 of 5


def test_recall_equals_the_metric_on_separately_computed_embeddings(tiny_model, caption_manifest):
    folder = caption_manifest.parent
    images = read_images([folder / "red.png", folder / "green.png", folder / "blue.png"])
    transform = model_transform(tiny_model)
    image_features = embed_images(tiny_model, torch.stack([transform(i) for i in images]))
    captions = ["a red square", "something red", "a green square", "a blue square"]
    captions.append("something blue")
    text_features = embed_texts(tiny_model, captions)
    expected = retrieval_recall(
        image_features, text_features, torch.tensor([0, 0, 1, 2, 2]), ks=(1,)
    )
    assert evaluate_retrieval(tiny_model, str(caption_manifest), ks=(1,)) == pytest.approx(
        {**expected, "num_images": 3, "num_texts": 5, "skipped": 0}
    )


def test_labelled_data_is_refused(tiny_model, colour_folder):
    with pytest.raises(UserInputError, match="needs images with captions"):
        evaluate_retrieval(tiny_model, str(colour_folder()))
