"""BatchAugment (kornia, on the device) and the deterministic EvalTransform / EvalDataset."""

from __future__ import annotations

import torch
from PIL import Image

from tests.data.data_corpus import EMOJI_TEST, FASHION, fashion_arrays
from unicl.data import BatchAugment, EvalDataset, EvalTransform, collate_skipping_bad


def demo_images(count: int) -> torch.Tensor:
    pixels = torch.from_numpy(fashion_arrays(count)[0].copy())
    return pixels[:, None].expand(-1, 3, -1, -1).contiguous()


def test_batch_augment_gives_normalised_float_crops():
    images = demo_images(16)
    out = BatchAugment(20, mean=(0.5,) * 3, std=(0.5,) * 3)(images)
    assert out.shape == (16, 3, 20, 20) and out.dtype == torch.float32
    assert out.min() >= -1.0 - 1e-5 and out.max() <= 1.0 + 1e-5


def test_only_image_label_samples_are_flipped():
    images = demo_images(8)
    augment = BatchAugment(
        28, mean=(0,) * 3, std=(1,) * 3, scale=(1, 1), ratio=(1, 1), jitter_p=0, flip_p=1
    )
    class_ids = torch.tensor([0, -1] * 4)
    out = augment(images, class_ids)
    expected = images.float() / 255
    assert torch.allclose(out[1::2], expected[1::2], atol=1e-5)
    assert torch.allclose(out[0::2], expected[0::2].flip(-1), atol=1e-5)


def test_eval_mode_and_eval_transform_are_deterministic():
    augment = BatchAugment(14).eval()
    images = demo_images(4)
    assert torch.equal(augment(images), augment(images))
    transform = EvalTransform(16)
    image = Image.fromarray(fashion_arrays(1)[0][0]).convert("RGB").resize((40, 28))
    assert transform(image).shape == (3, 16, 16)
    assert torch.equal(transform(image), transform(image))


def test_eval_dataset_gives_class_indices_or_captions():
    labelled = EvalDataset(f"{FASHION}#t10k", EvalTransform(16))
    image, class_id = labelled[0]
    assert image.shape == (3, 16, 16) and class_id == fashion_arrays(1)[1][0]
    assert len(labelled) == 2000 and len(labelled.class_names) == 10
    captioned = EvalDataset(EMOJI_TEST, EvalTransform(16))
    images, captions = collate_skipping_bad([captioned[0], None, captioned[1]])
    assert images.shape == (2, 3, 16, 16) and all(isinstance(c, str) for c in captions)
