"""The causal text transformer pools the end-of-text state, unaffected by padding."""

import pytest
import torch

from unicl.models.text_transformer import TextTransformer


@pytest.fixture
def encoder():
    return TextTransformer(vocab_size=50, pad_id=0, context_length=12, width=32, layers=2, heads=4)


def test_pooled_state_ignores_padding_and_its_length(encoder):
    short = torch.tensor([[1, 5, 6, 2, 0, 0]])
    longer = torch.tensor([[1, 5, 6, 2, 0, 0, 0, 0, 0, 0, 0, 0]])
    torch.testing.assert_close(encoder(short), encoder(longer))


def test_pooled_state_is_the_last_real_token_under_causal_attention(encoder):
    tokens = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 7, 8, 9, 10, 2]])
    pooled = encoder(tokens)
    assert pooled.shape == (2, 32)
    changed_after_end = encoder(torch.tensor([[1, 5, 6, 2, 0, 0], [1, 7, 8, 9, 10, 2]]))
    torch.testing.assert_close(pooled, changed_after_end)
    changed_before_end = encoder(torch.tensor([[1, 4, 6, 2, 0, 0], [1, 7, 8, 9, 10, 2]]))
    assert not torch.allclose(pooled[0], changed_before_end[0])
    torch.testing.assert_close(pooled[1], changed_before_end[1])


def test_more_tokens_than_the_context_are_refused(encoder):
    with pytest.raises(ValueError, match="exceed the context length 12"):
        encoder(torch.ones(1, 13, dtype=torch.int64))
