"""The training config: sections, types and ranges are checked before anything runs."""

import pytest
import torch
import yaml

from unicl.errors import UserInputError
from unicl.train.config import config_from_dict, config_to_yaml, load_training_config
from unicl.train.launch import ProcessContext
from unicl.train.trainer import build_run

MINIMAL = {"data": {"sources": ["data/demo/fashion"]}}


def _with(**sections):
    raw = {"data": {"sources": ["data/demo/fashion"]}}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return raw


def test_minimal_config_gets_documented_defaults():
    config = config_from_dict(MINIMAL)
    assert config.model.name == "unicl-tiny"
    assert config.objective.name == "unicl"
    assert config.optim.betas == (0.9, 0.999)


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(UserInputError, match=r"'optim\.lrr'.*did you mean 'lr'"):
        config_from_dict(_with(optim={"lrr": 1e-3}))


def test_unknown_section_lists_allowed_sections():
    with pytest.raises(UserInputError, match=r"unknown config key 'optimizer'.*allowed keys"):
        config_from_dict({**MINIMAL, "optimizer": {}})


def test_unregistered_objective_names_key_and_registered_values():
    with pytest.raises(
        UserInputError,
        match=r"'objective\.name' is 'siglip'.*'unicl', 'unicl-sigmoid', 'clip', 'multitask', 'ce', 'supcon'",
    ):
        config_from_dict(_with(objective={"name": "siglip"}))


def test_a_negative_clip_weight_is_refused():
    with pytest.raises(UserInputError, match=r"'objective\.clip_weight' is -1"):
        config_from_dict(_with(objective={"name": "multitask", "clip_weight": -1.0}))


def test_wrong_type_is_named():
    with pytest.raises(UserInputError, match=r"'data\.batch_size' must be int, got 'big'"):
        config_from_dict(_with(data={"batch_size": "big"}))


def test_out_of_range_values_are_rejected():
    with pytest.raises(UserInputError, match=r"'schedule\.warmup_steps' is 200"):
        config_from_dict(_with(schedule={"steps": 100, "warmup_steps": 200}))
    with pytest.raises(UserInputError, match=r"'optim\.ema_decay' is 1\.5"):
        config_from_dict(_with(optim={"ema_decay": 1.5}))
    with pytest.raises(UserInputError, match=r"'data\.max_bad_fraction' is 2\.0"):
        config_from_dict(_with(data={"max_bad_fraction": 2.0}))
    with pytest.raises(UserInputError, match=r"'data\.prefetch_factor' is 0"):
        config_from_dict(_with(data={"prefetch_factor": 0}))


def test_bad_source_is_named_by_its_index():
    with pytest.raises(UserInputError, match=r"'data\.sources\.1'.*needs 'location'"):
        config_from_dict({"data": {"sources": ["a", {"weight": 2}]}})


def test_empty_sources_are_rejected():
    with pytest.raises(UserInputError, match=r"'data\.sources'.*non-empty list"):
        config_from_dict({"data": {"sources": []}})


def test_fp16_on_cpu_is_rejected():
    with pytest.raises(UserInputError, match=r"fp16 needs CUDA"):
        config_from_dict(_with(run={"device": "cpu", "precision": "fp16"}))


def test_yaml_exponent_without_dot_is_read_as_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {sources: [x]}\noptim: {lr: 1e-3}\n")
    assert load_training_config(path).optim.lr == 1e-3


def test_overrides_apply_in_order_and_reach_list_items(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"sources": ["a", {"location": "b"}]}}))
    config = load_training_config(
        path, ["optim.lr=2e-3", "data.sources.1.weight=3", "optim.betas=[0.9, 0.98]"]
    )
    assert config.optim.lr == 2e-3
    assert config.data.sources[1] == {"location": "b", "weight": 3}
    assert config.optim.betas == (0.9, 0.98)


def test_bad_override_syntax_and_index(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    with pytest.raises(UserInputError, match="key=value"):
        load_training_config(path, ["optim.lr"])
    with pytest.raises(UserInputError, match=r"index must be 0\.\.0"):
        load_training_config(path, ["data.sources.4.weight=1"])


def test_missing_file_and_invalid_yaml(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        load_training_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(UserInputError, match="not valid YAML"):
        load_training_config(bad)


def test_printed_config_reads_back_identically(tmp_path):
    config = config_from_dict(_with(optim={"lr": 1e-3, "ema_decay": 0.999}))
    path = tmp_path / "resolved.yaml"
    path.write_text(config_to_yaml(config))
    assert load_training_config(path) == config


def test_data_options_reach_the_stream():
    config = load_training_config(
        "configs/demo.yaml",
        [
            "data.unique_captions=true",
            "data.max_bad_fraction=0.25",
            "data.num_workers=0",
            "data.prefetch_factor=3",
        ],
    )
    context = ProcessContext(device=torch.device("cpu"))
    state, batches, _ = build_run(config, context)
    assert state.stream.unique_captions is True
    assert state.stream.bad_data.max_fraction == 0.25
    assert state.stream.prefetch_factor == 3
    batch = next(batches)  # tokenised by the stream for the objective, which trains the texts
    assert torch.equal(batch.tokens, state.objective.model.tokenize(batch.texts))
    batches.close()


@pytest.mark.parametrize(
    ("overrides", "compiled"),
    [
        ([], False),
        (["run.compile=true"], True),  # compiled towers compile the tiles too
        (["run.compile=true", "objective.tile_compile=false"], False),
        (["objective.tile_compile=true"], True),
    ],
)
def test_tile_options_reach_the_criterion(overrides, compiled):
    config = load_training_config(
        "configs/demo.yaml",
        [
            "data.num_workers=0",
            "objective.tile_size=8",
            "objective.tile_precision=bf16",
            *overrides,
        ],
    )
    state, batches, _ = build_run(config, ProcessContext(device=torch.device("cpu")))
    batches.close()
    criterion = state.objective.criterion
    assert (criterion.tile_size, criterion.tile_precision) == (8, "bf16")
    assert criterion.tile_compile is compiled


def test_tile_options_reach_the_clip_term_of_multitask():
    config = load_training_config(
        "configs/demo.yaml",
        [
            "data.num_workers=0",
            "objective.name=multitask",
            "objective.tile_size=8",
            "objective.tile_precision=bf16",
            "objective.tile_compile=true",
        ],
    )
    state, batches, _ = build_run(config, ProcessContext(device=torch.device("cpu")))
    batches.close()
    clip = state.objective.criterion.clip
    assert (clip.tile_size, clip.tile_precision, clip.tile_compile) == (8, "bf16", True)
