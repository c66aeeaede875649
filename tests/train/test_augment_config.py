"""`data.augment` reaches `BatchAugment` whole: RandAugment and mixing keys, and one-line errors."""

from __future__ import annotations

import pytest
import torch

from unicl.errors import UserInputError
from unicl.train import load_training_config
from unicl.train.launch import ProcessContext
from unicl.train.trainer import build_run

CPU = ProcessContext(device=torch.device("cpu"))


def demo_config(tmp_path, augment: str):
    return load_training_config(
        "configs/demo.yaml",
        ["data.num_workers=0", f"data.augment={augment}", f"run.output_dir={tmp_path}"],
    )


def test_randaugment_and_mixing_keys_reach_the_augmentation(tmp_path):
    augment = (
        "{randaugment: {n: 2, m: 9}, mixup: 0.8, cutmix: 1.0, mix_prob: 0.7, mix_switch_prob: 0.4}"
    )
    _, batches, augment = build_run(demo_config(tmp_path, augment), CPU)
    try:
        assert augment.mixes and augment.randaugment.m == 27
        assert (augment.mixer.mixup, augment.mixer.cutmix) == (0.8, 1.0)
        assert (augment.mixer.prob, augment.mixer.switch_prob) == (0.7, 0.4)
        batch = next(batches)
        images = augment(batch.images, batch.class_ids)
        mixed, partner, weight = augment.mix(images, batch.class_ids)
        assert (
            mixed.shape == images.shape and partner.shape == weight.shape == batch.class_ids.shape
        )
    finally:
        batches.close()


@pytest.mark.parametrize(
    "augment, message",
    [
        ("{mixpu: 0.8}", "unexpected keyword argument 'mixpu'"),
        ("{mixup: -1}", "mixup should be a Beta alpha >= 0 (0 = off), got -1"),
        ("{randaugment: {n: 2, m: 12}}", "randaugment.m should be a magnitude in (0, 10)"),
    ],
)
def test_bad_augment_keys_are_one_line_errors(tmp_path, augment, message):
    with pytest.raises(UserInputError) as error:
        build_run(demo_config(tmp_path, augment), CPU)
    text = str(error.value)
    assert text.startswith("config key 'data.augment': ") and message in text and "\n" not in text
