"""WiSE-FT weight interpolation: the endpoints bit for bit, the mean at 0.5, counters from the
fine-tuned model, and models of different architectures refused."""

import json

import pytest
import torch

from unicl.errors import UserInputError
from unicl.models import create_model
from unicl.models.interpolate import interpolate_weights
from unicl.models.tokenizer import resolve_tokenizer_path


@pytest.fixture(scope="module")
def pair():
    """unicl-tiny (ResNet with BatchNorm) and a "fine-tuned" copy: other weights, and BatchNorm
    statistics and counters moved by forward passes in training mode."""
    torch.manual_seed(0)
    zeroshot = create_model("unicl-tiny").eval()
    torch.manual_seed(1)
    finetuned = create_model("unicl-tiny").train()
    with torch.no_grad():
        for _ in range(3):
            finetuned.encode_image(torch.randn(4, 3, 32, 32))
    return zeroshot, finetuned.eval()


def bits(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().reshape(-1).view(torch.uint8)


def outputs(model) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    images, tokens = torch.randn(3, 3, 32, 32), model.tokenize(["a coat", "a boot", "a bag"])
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_the_endpoints_reproduce_their_model_bit_for_bit(pair, alpha):
    zeroshot, finetuned = pair
    expected = finetuned if alpha == 1.0 else zeroshot
    mixed = interpolate_weights(zeroshot, finetuned, alpha)
    reference = expected.state_dict()
    counters = finetuned.state_dict()  # integer buffers always come from the fine-tuned model
    for name, value in mixed.state_dict().items():
        source = reference if value.is_floating_point() else counters
        assert torch.equal(bits(value), bits(source[name])), name
    for got, want in zip(outputs(mixed.eval()), outputs(expected), strict=True):
        assert torch.equal(bits(got), bits(want))


def test_half_way_is_the_mean_and_counters_come_from_the_fine_tuned_model(pair):
    zeroshot, finetuned = pair
    a, b = zeroshot.state_dict(), finetuned.state_dict()
    mixed = interpolate_weights(zeroshot, finetuned, 0.5).state_dict()
    counters = [name for name in b if name.endswith("num_batches_tracked")]
    assert counters and all(int(b[name]) == 3 != int(a[name]) for name in counters)
    for name, value in mixed.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (a[name] + b[name]) / 2, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(value, b[name]), name
    quarter = interpolate_weights(zeroshot, finetuned, 0.25).state_dict()["logit_scale"]
    expected = 0.75 * a["logit_scale"] + 0.25 * b["logit_scale"]
    torch.testing.assert_close(quarter, expected)


def test_the_inputs_are_left_unchanged(pair):
    zeroshot, finetuned = pair
    before = [m.state_dict()["logit_scale"].clone() for m in pair]
    mixed = interpolate_weights(zeroshot, finetuned, 0.5)
    assert mixed is not finetuned and mixed.config == finetuned.config
    assert [m.state_dict()["logit_scale"] for m in pair] == before


def test_models_of_other_architectures_are_refused_naming_the_first_difference(pair):
    zeroshot, _ = pair
    deeper = create_model("unicl-tiny", vision={"layers": [1, 1, 1, 2]})
    with pytest.raises(
        UserInputError,
        match=r"^the models have different architectures: "
        r"'image_encoder\.stages\.3\.1\.body\.0\.weight' is only in the fine-tuned model$",
    ):
        interpolate_weights(zeroshot, deeper, 0.5)
    wider = create_model("unicl-tiny", embed_dim=64)
    with pytest.raises(
        UserInputError,
        match=r"'image_projection\.weight' is \(128, 256\) torch.float32 in the zero-shot model "
        r"and \(64, 256\) torch.float32 in the fine-tuned one",
    ):
        interpolate_weights(zeroshot, wider, 0.5)


def test_a_model_with_another_tokenizer_is_refused(pair, tmp_path):
    """Same shapes, but two token ids swapped: the text weights would be mixed across tokens."""
    zeroshot, _ = pair
    data = json.loads(resolve_tokenizer_path("bpe-4k").read_text())
    vocab = data["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[-2:]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    other = create_model("unicl-tiny", tokenizer=str(tmp_path / "tokenizer.json"))
    with pytest.raises(UserInputError, match="the models have different tokenizers"):
        interpolate_weights(zeroshot, other, 0.5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_alpha_outside_zero_to_one_is_refused(pair, alpha):
    with pytest.raises(UserInputError, match="it must be between 0 and 1"):
        interpolate_weights(*pair, alpha)
