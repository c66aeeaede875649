"""Zero-shot classifier: per-class average of normalised prompt embeddings, re-normalised."""

import pytest
import torch
import torch.nn.functional as F

from unicl.errors import UserInputError
from unicl.models import build_zeroshot_classifier

CLASSES = ["coat", "sandal", "bag"]
TEMPLATES = ["a photo of a {}.", "a {} on a table.", "a drawing of the {}."]


def test_columns_are_normalised_template_averages(tiny_model):
    weights = build_zeroshot_classifier(tiny_model, CLASSES, TEMPLATES, batch_size=4)
    assert weights.shape == (tiny_model.embed_dim, len(CLASSES))
    torch.testing.assert_close(weights.norm(dim=0), torch.ones(3))
    with torch.no_grad():
        prompts = [t.format("sandal") for t in TEMPLATES]
        expected = tiny_model.encode_text(tiny_model.tokenize(prompts), normalize=True).mean(0)
    torch.testing.assert_close(weights[:, 1], F.normalize(expected, dim=0))


def test_builds_in_eval_mode_and_restores_the_training_mode(tiny_model):
    tiny_model.train()
    weights = build_zeroshot_classifier(tiny_model, CLASSES, TEMPLATES)
    assert tiny_model.training
    assert not weights.requires_grad
    torch.testing.assert_close(
        weights, build_zeroshot_classifier(tiny_model.eval(), CLASSES, TEMPLATES)
    )


def test_templates_without_a_placeholder_are_refused(tiny_model):
    with pytest.raises(UserInputError, match="exactly one"):
        build_zeroshot_classifier(tiny_model, CLASSES, ["a photo"])
    with pytest.raises(UserInputError, match="at least one class"):
        build_zeroshot_classifier(tiny_model, [], TEMPLATES)
