"""BatchAugment.mix (label-aware mixup / cutmix) and RandAugment, against explicit loops on the
demo images: Fashion-MNIST (image-label) and emoji (image-text) in one batch."""

from __future__ import annotations

import io

import pytest
import torch
from kornia.augmentation.auto import RandAugment
from PIL import Image

from tests.data.data_corpus import emoji_pairs
from tests.data.test_transforms import demo_images
from unicl.data import BatchAugment
from unicl.data.images import fit_square, to_rgb
from unicl.data.transforms import _timm_geometry
from unicl.objective import CAPTION_CLASS_ID

SIZE = 28


def mixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [12,3,28,28]: 8 Fashion-MNIST images (classes 0-7) with 4 emoji (captions) between."""
    emoji = [fit_square(to_rgb(Image.open(io.BytesIO(png))), SIZE) for _, png, _ in emoji_pairs(4)]
    fashion = list(demo_images(8))
    images = [fashion.pop(0) if row % 3 else emoji.pop(0) for row in range(12)]
    class_ids = torch.tensor([CAPTION_CLASS_ID if row % 3 == 0 else row for row in range(12)])
    return torch.stack(images), class_ids


def distinct_rows(images: torch.Tensor) -> torch.Tensor:
    """Float images whose rows share no pixel value (row r offset by 10 r), so that every output
    pixel tells which row it came from."""
    offsets = 10.0 * torch.arange(len(images))[:, None, None, None]
    return images.float() / 255 + offsets


def check_partners(partner: torch.Tensor, weight: torch.Tensor, class_ids: torch.Tensor) -> None:
    """Image-text rows keep themselves with weight 1; image-label rows are permuted among
    themselves and all carry the batch's one weight."""
    rows = torch.arange(len(class_ids))
    captions = class_ids == CAPTION_CLASS_ID
    assert partner.dtype == torch.int64 and weight.dtype == torch.float32
    assert torch.equal(partner[captions], rows[captions])
    assert torch.equal(weight[captions], torch.ones(int(captions.sum())))
    assert sorted(partner[~captions].tolist()) == rows[~captions].tolist()
    assert len(set(weight[~captions].tolist())) == 1


def test_mixup_rows_are_the_weighted_sum_of_image_and_partner():
    images, class_ids = mixed_batch()
    augment = BatchAugment(SIZE, mixup=0.8)
    x = augment(images, class_ids)
    for seed in range(10):
        torch.manual_seed(seed)
        out, partner, weight = augment.mix(x, class_ids)
        check_partners(partner, weight, class_ids)
        for i in range(len(x)):
            expected = weight[i] * x[i] + (1 - weight[i]) * x[partner[i]]
            assert torch.allclose(out[i], expected, atol=1e-6)
            if class_ids[i] == CAPTION_CLASS_ID:
                assert torch.equal(out[i], x[i])
        assert 0 < weight[1] < 1


def test_cutmix_pastes_one_box_whose_share_is_the_weight():
    images, class_ids = mixed_batch()
    x = distinct_rows(images)
    augment = BatchAugment(SIZE, cutmix=1.0)
    clipped = 0
    for seed in range(20):
        torch.manual_seed(seed)
        out, partner, weight = augment.mix(x, class_ids)
        check_partners(partner, weight, class_ids)
        boxes = []
        for i in range(len(x)):
            own = (out[i] == x[i]).all(dim=0)
            pasted = (out[i] == x[partner[i]]).all(dim=0)
            if partner[i] == i:
                assert own.all()
                continue
            assert (own ^ pasted).all()  # every pixel is the image's or its partner's
            assert weight[i] == pytest.approx(own.float().mean().item(), abs=1e-6)
            ys, xs = pasted.nonzero(as_tuple=True)
            if len(ys):
                box = torch.zeros_like(pasted)
                box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
                assert torch.equal(pasted, box)  # a rectangle
                clipped += int(ys.min() == 0 or xs.min() == 0 or ys.max() == SIZE - 1)
            boxes.append(pasted)
        assert all(torch.equal(box, boxes[0]) for box in boxes)  # one box per batch
    assert clipped > 0  # some boxes were clipped at the border, and still measured exactly


def test_mix_prob_and_switch_choose_per_batch():
    images, class_ids = mixed_batch()
    x = distinct_rows(images)
    kinds = {"none": 0, "mixup": 0, "cutmix": 0}
    augment = BatchAugment(SIZE, mixup=0.8, cutmix=1.0, mix_prob=0.5, mix_switch_prob=0.5)
    torch.manual_seed(0)
    for _ in range(200):
        out, partner, weight = augment.mix(x, class_ids)
        if torch.equal(out, x):
            assert torch.equal(partner, torch.arange(len(x))) and (weight == 1).all()
            kinds["none"] += 1
        else:
            cut = all(((out[i] == x[i]) | (out[i] == x[partner[i]])).all() for i in range(len(x)))
            kinds["cutmix" if cut else "mixup"] += 1
    assert all(60 <= count <= 140 for count in (kinds["none"], kinds["mixup"] + kinds["cutmix"]))
    assert abs(kinds["mixup"] - kinds["cutmix"]) < 0.3 * (kinds["mixup"] + kinds["cutmix"])
    never = BatchAugment(SIZE, mixup=0.8, cutmix=1.0, mix_prob=0.0)
    assert torch.equal(never.mix(x, class_ids)[0], x)


def test_mixing_repeats_with_the_seed_and_is_off_in_eval_or_unset():
    images, class_ids = mixed_batch()
    augment = BatchAugment(SIZE, randaugment={"n": 2, "m": 9}, mixup=0.8, cutmix=1.0)
    results = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        results.append(augment.mix(augment(images, class_ids), class_ids))
    assert all(torch.equal(a, b) for a, b in zip(results[0], results[1], strict=True))
    assert not torch.equal(results[0][0], results[2][0])
    x = distinct_rows(images)
    for unmixed in (augment.eval(), BatchAugment(SIZE)):
        out, partner, weight = unmixed.mix(x, class_ids)
        assert torch.equal(out, x) and torch.equal(partner, torch.arange(len(x)))
        assert (weight == 1).all()
    assert augment.mixes and BatchAugment(SIZE, cutmix=0.5).mixes and not BatchAugment(SIZE).mixes


def test_randaugment_changes_every_kind_of_sample_and_reads_timm_magnitudes():
    images, class_ids = mixed_batch()
    plain = BatchAugment(SIZE, scale=(1, 1), ratio=(1, 1), jitter_p=0, flip_p=0)
    strong = BatchAugment(
        SIZE, scale=(1, 1), ratio=(1, 1), jitter_p=0, flip_p=0, randaugment={"n": 3, "m": 9}
    )
    assert strong.randaugment.n == 3 and strong.randaugment.m == 27  # kornia's 0-30 scale
    torch.manual_seed(0)
    before = plain(images, class_ids)
    torch.manual_seed(0)
    after = strong(images, class_ids)
    changed = (after - before).abs().flatten(1).amax(dim=1) > 1e-3
    assert (
        changed[class_ids == CAPTION_CLASS_ID].all()
        and changed[class_ids != CAPTION_CLASS_ID].all()
    )
    assert torch.equal(strong.eval()(images), plain.eval()(images))


@pytest.mark.parametrize("m", [3, 9])
def test_randaugment_shears_and_translates_as_timm(m):
    """A vertical line through the centre of a 101-pixel image: timm shears it by the factor
    0.3 m / 10 (top and bottom rows 2 x 50 x 0.03 m apart) and shifts it by 0.45 m / 10."""
    line = torch.zeros(1, 3, 101, 101)
    line[..., 50] = 1
    policy = {name: [(name, low, high)] for [(name, low, high)] in _timm_geometry(m)}
    columns: dict[str, torch.Tensor] = {}
    for name in ("shear_x", "translate_x"):
        torch.manual_seed(0)
        out = RandAugment(n=1, m=3 * m, policy=[policy[name]])(line)[0, 0]
        rows = out[[0, 50, 100]]  # the line's centre of mass in three rows
        columns[name] = (rows * torch.arange(101)).sum(1) / rows.sum(1)
    top, middle, bottom = columns["shear_x"].tolist()
    assert middle == pytest.approx(50, abs=0.05)
    assert abs(top - bottom) == pytest.approx(100 * 0.03 * m, abs=0.1)
    shifts = (columns["translate_x"] - 50).abs().tolist()
    assert shifts == pytest.approx([101 * 0.045 * m] * 3, abs=0.1)


@pytest.mark.parametrize(
    "augment, message",
    [
        ({"mixup": -0.2}, "mixup should be a Beta alpha >= 0"),
        ({"cutmix": float("nan")}, "cutmix should be a Beta alpha >= 0"),
        ({"mix_prob": 1.5}, "mix_prob should be a probability in [0, 1]"),
        ({"mix_switch_prob": -0.1}, "mix_switch_prob should be a probability in [0, 1]"),
        ({"randaugment": {"n": 2}}, "randaugment should be {n: operations, m: magnitude 0-10}"),
        ({"randaugment": {"n": 2, "m": 10}}, "randaugment.m should be a magnitude in (0, 10)"),
        ({"randaugment": {"n": 1.5, "m": 9}}, "randaugment.n should be a whole number"),
        ({"randaugment": {"n": 0, "m": 9}}, "Expect `n` in [1, 15]"),
    ],
)
def test_bad_mixing_and_randaugment_values_are_refused(augment, message):
    with pytest.raises(ValueError, match=None) as error:
        BatchAugment(SIZE, **augment)
    assert message in str(error.value) and "\n" not in str(error.value)
