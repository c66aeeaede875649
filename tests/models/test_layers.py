"""Shared transformer layers: SDPA attention equals the textbook softmax(QK^T/sqrt(d))V."""

import pytest
import torch

from unicl.models.layers import Attention, DropPath, drop_path_rates


def reference_attention(attention, x, mask):
    q, k, v = attention.qkv(x).chunk(3, dim=-1)
    heads = attention.heads

    def split(t):
        return t.unflatten(-1, (heads, -1)).transpose(-3, -2)

    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + mask
    out = scores.softmax(-1) @ v
    return attention.proj(out.transpose(-3, -2).flatten(-2))


def test_attention_matches_the_reference_with_an_additive_mask_and_extra_batch_dims():
    attention = Attention(dim=16, heads=4)
    x = torch.randn(2, 3, 5, 16)
    mask = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(
        attention(x, attn_mask=mask), reference_attention(attention, x, mask)
    )


def test_causal_attention_matches_a_triangular_mask():
    attention = Attention(dim=16, heads=2)
    x = torch.randn(2, 6, 16)
    mask = torch.full((6, 6), float("-inf")).triu(1)
    torch.testing.assert_close(
        attention(x, is_causal=True), reference_attention(attention, x, mask)
    )


def test_drop_path_keeps_the_expectation_and_is_identity_in_eval():
    layer = DropPath(0.25)
    x = torch.ones(20000, 3)
    dropped = layer(x)
    assert dropped.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert (dropped == dropped[:, :1]).all()
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.03)
    assert torch.equal(layer.eval()(x), x)


def test_drop_path_rates_rise_linearly_to_the_total():
    assert drop_path_rates(0.2, 5) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert drop_path_rates(0.3, 1) == [0.0]
