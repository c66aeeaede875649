"""The objectives that score mixed images, on the real demo stream, model and augmentation:
`prepare` mixes the image-label rows and records their partners' labels, and the step's loss is
the loss function's with that `LabelMix`; `unicl-sigmoid` gives the model its logit bias."""

from __future__ import annotations

import pytest
import torch

from unicl import LabelMix, label_sigmoid_loss, unicl_loss
from unicl.errors import UserInputError
from unicl.objective import CAPTION_CLASS_ID
from unicl.train import load_training_config
from unicl.train.launch import ProcessContext
from unicl.train.trainer import build_run

CPU = ProcessContext(device=torch.device("cpu"))


def demo_run(tmp_path, objective, augment="{mixup: 0.8, cutmix: 1.0}"):
    config = load_training_config(
        "configs/demo.yaml",
        [
            "data.num_workers=0",
            "data.batch_size=32",
            f"objective.name={objective}",
            f"data.augment={augment}",
            f"run.output_dir={tmp_path}",
        ],
    )
    return build_run(config, CPU)


@pytest.mark.parametrize("objective", ["unicl", "unicl-sigmoid"])
def test_a_mixed_step_scores_the_mixed_labels(tmp_path, objective):
    state, batches, augment = demo_run(tmp_path, objective)
    try:
        batch = next(batches)
    finally:
        batches.close()
    torch.manual_seed(5)
    inputs = state.objective.prepare(batch, augment, CPU.device)
    torch.manual_seed(5)  # the same draws, by hand
    images, partner, weight = augment.mix(augment(batch.images, batch.class_ids), batch.class_ids)
    torch.testing.assert_close(inputs["images"], images)
    assert torch.equal(inputs["mix_labels"], batch.labels[partner])
    assert torch.equal(inputs["mix_weights"], weight)
    captions = batch.class_ids == CAPTION_CLASS_ID
    assert torch.equal(inputs["mix_labels"][captions], batch.labels[captions])
    assert bool((weight < 1).any())  # mixup or cutmix mixed this batch (mix_prob 1)

    features, shared = state.objective(inputs)
    loss = state.objective.loss(features, shared, inputs)
    mix = LabelMix(batch.labels[partner], weight)
    if objective == "unicl":
        expected = unicl_loss(*features, batch.labels, shared[0], mix=mix)
        unmixed = unicl_loss(*features, batch.labels, shared[0])
    else:
        model = state.objective.model
        assert model.config.init_logit_bias == -10.0
        assert float(model.logit_scale.detach().exp()) == pytest.approx(1 / 0.07)
        expected = label_sigmoid_loss(*features, batch.labels, *shared, mix=mix)
        unmixed = label_sigmoid_loss(*features, batch.labels, *shared)
    torch.testing.assert_close(loss, expected)
    assert abs(float((loss - unmixed).detach())) > 1e-4


def test_an_objective_without_mixed_targets_refuses_mixing(tmp_path):
    with pytest.raises(UserInputError, match="objective 'clip' has no targets for mixed images"):
        demo_run(tmp_path, "clip")
