"""Top-k accuracy, confusion matrix, per-class recall and multi-caption retrieval recall."""

import math

import pytest
import torch

from unicl.evaluate.metrics import (
    classification_metrics,
    confusion_matrix,
    mean_per_class_recall,
    per_class_recall,
    retrieval_recall,
    topk_accuracy,
)


def test_topk_counts_a_row_when_the_target_is_among_the_k_best():
    logits = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.3, 0.8], [0.1, 0.7, 0.6]])
    targets = torch.tensor([0, 1, 2])
    accuracy = topk_accuracy(logits, targets, ks=(1, 2, 3))
    assert accuracy[1] == pytest.approx(1 / 3)
    assert accuracy[2] == pytest.approx(3 / 3)
    assert accuracy[3] == 1.0


def test_topk_with_k_beyond_the_number_of_classes_is_always_right():
    logits = torch.randn(7, 3)
    targets = torch.randint(0, 3, (7,))
    assert topk_accuracy(logits, targets, ks=(5,))[5] == 1.0


def test_confusion_matrix_rows_are_true_classes_and_columns_predictions():
    predictions = torch.tensor([0, 1, 1, 2, 2, 2])
    targets = torch.tensor([0, 0, 1, 2, 2, 1])
    confusion = confusion_matrix(predictions, targets, num_classes=4)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[2, 2], expected[1, 2] = 1, 1, 1, 2, 1
    assert torch.equal(confusion, expected)


def test_mean_per_class_recall_ignores_classes_without_samples():
    confusion = torch.tensor([[3, 1, 0], [0, 0, 0], [2, 0, 2]])
    recall = per_class_recall(confusion)
    assert recall[0].item() == pytest.approx(0.75)
    assert math.isnan(recall[1].item())
    assert recall[2].item() == pytest.approx(0.5)
    assert mean_per_class_recall(confusion) == pytest.approx(0.625)


def test_mean_per_class_recall_differs_from_accuracy_on_imbalanced_classes():
    targets = torch.tensor([0] * 9 + [1])
    logits = torch.zeros(10, 2)
    logits[:, 0] = 1.0  # always predicts the majority class
    metrics, confusion = classification_metrics(logits, targets, ks=(1,))
    assert metrics["top1"] == pytest.approx(0.9)
    assert metrics["mean_per_class_recall"] == pytest.approx(0.5)
    assert confusion.sum().item() == 10


def _brute_force_recall(images, texts, owner, k):
    similarity = images @ texts.T
    image_hits = []
    for i in range(images.shape[0]):
        captions = (owner == i).nonzero().squeeze(1)
        if len(captions):
            top = similarity[i].topk(k).indices
            image_hits.append(bool(torch.isin(top, captions).any()))
    text_hits = [
        bool((similarity[:, j].topk(k).indices == owner[j]).any()) for j in range(texts.shape[0])
    ]
    return sum(image_hits) / len(image_hits), sum(text_hits) / len(text_hits)


@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
def test_retrieval_recall_matches_a_brute_force_ranking(chunk_size):
    generator = torch.Generator().manual_seed(1)
    images = torch.nn.functional.normalize(torch.randn(12, 8, generator=generator), dim=1)
    owner = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11])
    texts = torch.nn.functional.normalize(
        images[owner] + 0.9 * torch.randn(len(owner), 8, generator=generator), dim=1
    )
    metrics = retrieval_recall(images, texts, owner, ks=(1, 5, 10), chunk_size=chunk_size)
    for k in (1, 5, 10):
        image_to_text, text_to_image = _brute_force_recall(images, texts, owner, k)
        assert metrics[f"image_to_text_R@{k}"] == pytest.approx(image_to_text)
        assert metrics[f"text_to_image_R@{k}"] == pytest.approx(text_to_image)


def test_an_image_is_found_when_any_one_of_its_captions_ranks_first():
    images = torch.eye(3)
    # image 0 has a bad caption (closest to image 1) and a good one; image 2 has none.
    texts = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.1, 0.9, 0.0]])
    owner = torch.tensor([0, 0, 1])
    metrics = retrieval_recall(images, texts, owner, ks=(1,))
    assert metrics["image_to_text_R@1"] == pytest.approx(1 / 2)  # image 1's best text is caption 0
    assert metrics["text_to_image_R@1"] == pytest.approx(2 / 3)  # caption 0 retrieves image 1
