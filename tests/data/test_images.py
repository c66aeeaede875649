"""Decoding: transparency, JPEG draft decoding and the square fit the workers apply."""

from __future__ import annotations

import io

import numpy as np
import skimage.data
import torch
from PIL import Image, ImageOps

from tests.data.data_corpus import emoji_pairs, fashion_arrays
from unicl.data.images import fit_square, load_image


def test_transparent_emoji_are_composited_over_white():
    _, png, _ = emoji_pairs(1)[0]
    original = Image.open(io.BytesIO(png)).convert("RGBA")
    image = load_image(png, "emoji")
    assert image.mode == "RGB"
    corner_alpha = np.asarray(original)[0, 0, 3]
    assert corner_alpha == 0 and tuple(np.asarray(image)[0, 0]) == (255, 255, 255)


def test_large_jpegs_decode_at_a_reduced_scale_that_still_covers_the_crop(tmp_path):
    photo = Image.fromarray(fashion_arrays(1)[0][0]).resize((800, 640)).convert("RGB")
    path = tmp_path / "big.jpg"
    photo.save(path, quality=90)
    assert load_image(path, "big").size == (800, 640)
    drafted = load_image(path, "big", draft_size=100)
    assert drafted.size == (200, 160)
    assert fit_square(drafted, 100).shape == (3, 100, 100)


def test_fit_square_centre_crops_then_resizes():
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 10:30] = 255
    square = fit_square(Image.fromarray(pixels), 10)
    assert square.shape == (3, 10, 10) and square.dtype == torch.uint8
    assert square[:, :, 1:-1].min() == 255  # the black sides are cropped away, not squeezed in
    assert square.float().mean() > 240


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_drafted_photo_gives_the_same_crop_with_close_pixels():
    photo = jpeg(skimage.data.astronaut())  # 512 x 512
    full, drafted = load_image(photo, "full"), load_image(photo, "drafted", draft_size=224)
    assert full.size == (512, 512) and drafted.size == (256, 256)  # decoded at half scale
    exact, fast = fit_square(full, 224).int(), fit_square(drafted, 224).int()
    assert fast.shape == exact.shape == (3, 224, 224)
    difference = (fast - exact).abs().float()
    assert difference.mean() < 2.5 and difference.quantile(0.99) < 16


def test_the_fit_follows_pillows_bicubic_filter_within_two_levels():
    for pixels, size in [(skimage.data.astronaut(), 224), (fashion_arrays(1)[0][0], 32)]:
        image = Image.fromarray(pixels).convert("RGB")
        pillow = np.asarray(ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC))
        ours = fit_square(image, size).permute(1, 2, 0).numpy()
        assert np.abs(ours.astype(int) - pillow.astype(int)).max() <= 2
