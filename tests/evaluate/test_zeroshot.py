"""Zero-shot evaluation of a real model on real image files."""

import shutil

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from unicl.errors import UserInputError
from unicl.evaluate import build_zeroshot_classifier, classify, evaluate_zeroshot

NAMES = ["a blue square", "a green square", "a red square"]  # sorted, as folder classes are


def _sort_into_folders(paths, classes, root):
    """An ImageFolder tree at `root` with image `paths[i]` filed under `NAMES[classes[i]]`."""
    for name in NAMES:
        (root / name).mkdir(parents=True)
    for i, (path, label) in enumerate(zip(paths, classes, strict=True)):
        shutil.copy(path, root / NAMES[label] / f"{i}.png")
    return root


def test_top1_is_the_agreement_with_the_models_own_predictions(tiny_model, colour_folder, tmp_path):
    paths = sorted(colour_folder().rglob("*.png"))
    predicted = classify(tiny_model, paths, NAMES).argmax(dim=1).tolist()
    shifted = [(label + 1) % 3 for label in predicted]
    agree = evaluate_zeroshot(tiny_model, str(_sort_into_folders(paths, predicted, tmp_path / "a")))
    disagree = evaluate_zeroshot(
        tiny_model, str(_sort_into_folders(paths, shifted, tmp_path / "b"))
    )
    assert agree["top1"] == 1.0
    assert disagree["top1"] == 0.0
    assert agree["top5"] == disagree["top5"] == 1.0  # only 3 classes
    assert agree["num_samples"] == 18 and agree["num_classes"] == 3


TEMPLATES = ["a photo of a {}.", "a {} on a table.", "a drawing of the {}."]


def test_columns_are_normalised_template_averages(tiny_model):
    weights = build_zeroshot_classifier(tiny_model, NAMES, TEMPLATES, batch_size=4)
    assert weights.shape == (tiny_model.embed_dim, len(NAMES))
    torch.testing.assert_close(weights.norm(dim=0), torch.ones(3))
    with torch.no_grad():
        prompts = [t.format(NAMES[1]) for t in TEMPLATES]
        expected = tiny_model.encode_text(tiny_model.tokenize(prompts), normalize=True).mean(0)
    torch.testing.assert_close(weights[:, 1], F.normalize(expected, dim=0))


def test_builds_in_eval_mode_and_restores_the_training_mode(tiny_model):
    tiny_model.train()
    weights = build_zeroshot_classifier(tiny_model, NAMES, TEMPLATES)
    assert tiny_model.training
    assert not weights.requires_grad
    torch.testing.assert_close(
        weights, build_zeroshot_classifier(tiny_model.eval(), NAMES, TEMPLATES)
    )


def test_templates_without_a_placeholder_or_no_classes_are_refused(tiny_model):
    with pytest.raises(UserInputError, match="exactly one"):
        build_zeroshot_classifier(tiny_model, NAMES, ["a photo"])
    with pytest.raises(UserInputError, match="at least one class"):
        build_zeroshot_classifier(tiny_model, [], TEMPLATES)


def test_classify_accepts_files_and_pil_images_alike(tiny_model, colour_folder):
    root = colour_folder()
    paths = sorted(root.rglob("*.png"))[:4]
    from_paths = classify(tiny_model, paths, NAMES)
    from_images = classify(tiny_model, [Image.open(p) for p in paths], NAMES)
    assert from_paths.shape == (4, 3)
    assert torch.allclose(from_paths.sum(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(from_paths, from_images)


def test_evaluation_leaves_a_training_model_in_training_mode(tiny_model, colour_folder):
    tiny_model.train()
    try:
        evaluate_zeroshot(tiny_model, str(colour_folder()))
        assert tiny_model.training
    finally:
        tiny_model.eval()


def test_unreadable_images_are_skipped_and_counted(tiny_model, colour_folder, tmp_path):
    root = colour_folder()
    (root / "red" / "broken.png").write_bytes(b"not a png")
    result = evaluate_zeroshot(tiny_model, str(root), confusion_png=tmp_path / "confusion.png")
    assert result["skipped"] == 1 and result["num_samples"] == 18
    assert (tmp_path / "confusion.png").stat().st_size > 0


def test_captioned_data_is_refused_with_a_message(tiny_model, caption_manifest):
    with pytest.raises(UserInputError, match="needs images with class labels"):
        evaluate_zeroshot(tiny_model, str(caption_manifest))


@pytest.mark.parametrize(
    ("names", "message"),
    [([], "empty"), (["red", " "], "empty name"), (["red", "red", "blue"], "repeated")],
)
def test_bad_class_name_lists_are_refused(tiny_model, colour_folder, names, message):
    with pytest.raises(UserInputError, match=message):
        evaluate_zeroshot(tiny_model, str(colour_folder()), class_names=names)


def test_fewer_names_than_classes_is_refused(tiny_model, colour_folder):
    with pytest.raises(UserInputError, match="one name per class"):
        evaluate_zeroshot(tiny_model, str(colour_folder()), class_names=["blue", "green"])
