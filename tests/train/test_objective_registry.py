"""The registry of training objectives: a new objective is one registered class, which the config
accepts by name and the real trainer trains; unknown names fail with the registered ones."""

import pytest
import torch

from unicl import process_group
from unicl.errors import UserInputError
from unicl.train import (
    TrainingObjective,
    load_training_config,
    register_objective,
    registered_objectives,
    train,
    unregister_objective,
)
from unicl.train.config import config_from_dict
from unicl.train.logger import read_metrics

TOY = "toy-alignment"


class ToyAlignment(TrainingObjective):
    """Pull each image towards its own text, no negatives: `mean_i (1 - <u_i, v_i>)` over the
    global batch (each rank returns `W * sum_local / N`)."""

    def prepare(self, batch, augment, device):
        return {
            "images": augment(batch.images.to(device), batch.class_ids),
            "tokens": self.model.tokenize(batch.texts).to(device),
        }

    def forward(self, inputs):
        images, texts, _ = self.model(inputs["images"], inputs["tokens"])
        return (images, texts), ()

    def loss(self, features, shared, inputs):
        images, texts = features
        count = process_group.sum_over_ranks(torch.tensor(len(images)), self.group)
        misalignment = (1 - (images.float() * texts.float()).sum(dim=1)).sum()
        return misalignment * process_group.world_size(self.group) / count


@pytest.fixture
def toy_objective():
    register_objective(TOY)(ToyAlignment)
    try:
        yield ToyAlignment
    finally:
        unregister_objective(TOY)


def test_a_registered_objective_trains_through_the_real_trainer(tmp_path, toy_objective):
    config = load_training_config(
        "configs/demo.yaml",
        [
            f"objective.name={TOY}",
            f"run.output_dir={tmp_path}",
            "data.batch_size=8",
            "data.num_workers=0",
            "schedule.steps=3",
            "schedule.warmup_steps=1",
            "evaluation.zeroshot=[]",
            "logging.every_steps=1",
            "logging.progress=false",
        ],
    )
    result = train(config)
    assert result.step == 3 and result.model_dir is not None
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert len(losses) == 3 and all(0 < loss < 2 for loss in losses)
    assert f"name: {TOY}" in (tmp_path / "config.yaml").read_text()


def test_an_unregistered_objective_is_refused_by_the_config():
    register_objective(TOY)(ToyAlignment)
    unregister_objective(TOY)
    assert TOY not in registered_objectives()
    with pytest.raises(UserInputError, match=f"'objective.name' is '{TOY}'"):
        config_from_dict({"data": {"sources": ["x"]}, "objective": {"name": TOY}})


def test_builtin_objectives_are_registered_in_order():
    assert registered_objectives()[:6] == [
        "unicl",
        "unicl-sigmoid",
        "clip",
        "multitask",
        "ce",
        "supcon",
    ]


def test_a_misspelled_objective_name_suggests_the_registered_one():
    with pytest.raises(
        UserInputError,
        match=r"'objective\.name' is 'supcn'; allowed values: .*'supcon'.*did you mean 'supcon'",
    ):
        config_from_dict({"data": {"sources": ["x"]}, "objective": {"name": "supcn"}})


def test_registration_refuses_taken_names_and_foreign_classes(toy_objective):
    with pytest.raises(ValueError, match="already registered"):
        register_objective(TOY)(ToyAlignment)
    with pytest.raises(TypeError, match="not a TrainingObjective"):
        register_objective("not-an-objective")(torch.nn.Linear)
    with pytest.raises(ValueError, match="no objective 'never-registered'"):
        unregister_objective("never-registered")


def test_an_objective_must_define_prepare_forward_and_loss():
    class Incomplete(TrainingObjective):
        def prepare(self, batch, augment, device):
            return {}

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(torch.nn.Linear(1, 1), None)
