"""`LockedTowerCache`: a locked tower's output per distinct input, computed once, row by row, in
eval mode; and `model.lock_text.cache_features` in a real training run."""

import pytest
import torch

from tests.train.test_locking import demo_config
from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.models.feature_cache import LockedTowerCache
from unicl.train import train
from unicl.train.state import lock_towers

PROMPTS = ["a photo of a shirt.", "a photo of a bag.", "a sketch of a bag.", "a photo of a shirt."]


@pytest.fixture
def locked_text_tower():
    torch.manual_seed(0)
    model = create_model("unicl-tiny")
    model.text_encoder.lock()
    return model


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda _module, inputs, _output: calls.append(len(inputs[0])))
    return calls


def test_each_distinct_row_is_encoded_once_on_its_own(locked_text_tower):
    model = locked_text_tower
    tower = model.text_encoder
    tokens = model.tokenize(PROMPTS)
    cache = LockedTowerCache(tower)
    calls = count_calls(tower)
    first = cache(tokens)
    assert calls == [1, 1, 1] and len(cache) == 3  # the repeated prompt is encoded once
    again = cache(tokens.flip(0))
    assert calls == [1, 1, 1]
    assert torch.equal(again, first.flip(0))
    with torch.no_grad():
        alone = torch.cat([tower(row[None]) for row in tokens])
        batched = tower(tokens)
    assert torch.equal(first, alone)
    torch.testing.assert_close(first, batched, rtol=1e-5, atol=1e-6)


def test_cache_runs_the_tower_in_eval_mode_and_keeps_its_mode():
    torch.manual_seed(0)
    model = create_model("unicl-tiny-minilm", context_length=16)  # MiniLM has dropout 0.1
    model.text_encoder.lock()
    model.train()
    cache = LockedTowerCache(model.text_encoder)
    tokens = model.tokenize(PROMPTS[:2])
    cached = cache(tokens)
    assert model.text_encoder.training
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(cached, model.text_encoder(tokens), rtol=1e-5, atol=1e-5)


def test_full_cache_still_encodes_every_row(locked_text_tower):
    model = locked_text_tower
    cache = LockedTowerCache(model.text_encoder, max_entries=1)
    calls = count_calls(model.text_encoder)
    tokens = model.tokenize(PROMPTS[:2])
    first = cache(tokens)
    second = cache(tokens)
    assert len(cache) == 1 and calls == [1, 1, 1]
    assert torch.equal(first, second)


def test_a_tower_with_trainable_parameters_is_refused():
    model = create_model("unicl-tiny")
    model.text_encoder.lock(unlocked_groups=1)
    with pytest.raises(ValueError, match="only a locked tower's outputs can be cached"):
        LockedTowerCache(model.text_encoder)


def test_encode_text_uses_the_cache_and_gives_the_towers_features(locked_text_tower):
    model = locked_text_tower.eval()
    tokens = model.tokenize(PROMPTS)
    with torch.no_grad():
        plain = model.encode_text(tokens, normalize=True)
        model.cache_text_features()
        cached = model.encode_text(tokens, normalize=True)
    assert len(model.text_cache) == 3
    torch.testing.assert_close(cached, plain, rtol=1e-5, atol=1e-6)


def test_cache_is_refused_where_features_are_not_fixed():
    config = demo_config("unicl-tiny", "runs/x", "model.lock_image={cache_features: true}")
    with pytest.raises(UserInputError, match=r"'model.lock_image.cache_features'.*only the text"):
        lock_towers(create_model("unicl-tiny"), config.model)
    config = demo_config(
        "unicl-tiny", "runs/x", "model.lock_text={cache_features: true, unlocked_groups: 1}"
    )
    with pytest.raises(UserInputError, match=r"unlocked_groups 1; only a tower locked whole"):
        lock_towers(create_model("unicl-tiny"), config.model)


def test_a_run_with_cached_text_features_trains_as_one_without(tmp_path):
    torch.manual_seed(0)
    create_model("unicl-tiny").save_pretrained(tmp_path / "start")
    runs = {
        cache: train(
            demo_config(
                tmp_path / "start",
                tmp_path / f"run-{cache}",
                f"model.lock_text={{cache_features: {str(cache).lower()}}}",
            )
        )
        for cache in (False, True)
    }
    plain, cached = (load(runs[cache].model_dir).state_dict() for cache in (False, True))
    start = load(tmp_path / "start").state_dict()
    assert not torch.equal(cached["image_projection.weight"], start["image_projection.weight"])
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], rtol=1e-4, atol=1e-5, msg=name)
    assert "model.safetensors" in {p.name for p in runs[True].model_dir.iterdir()}
