"""CLIP-style causal text transformer, trained from scratch, pooled at the end-of-text token.

`TextTransformer(...)(tokens int64 [B, L]) -> [B, width]`, L <= context_length, texts padded on
the right with `pad_id`. The pooled vector is the final-norm state of the last non-padding token,
which the tokenizer guarantees is the end-of-text token; causal attention means padding never
influences it.
"""

from __future__ import annotations

import torch
from torch import nn

from unicl.models.layers import Block, run_blocks
from unicl.models.registry import register_text_family
from unicl.models.tower import Count, Ratio, TextTower, Width


class TextTransformer(TextTower):
    """Token + learned position embeddings, causal pre-norm blocks, final LayerNorm."""

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        context_length: int,
        width: Width = 512,
        layers: Count = 12,
        heads: Count = 8,
        mlp_ratio: Ratio = 4.0,
    ):
        super().__init__(vocab_size, pad_id, context_length)
        self.width = width
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        if length > self.context_length:
            raise ValueError(f"{length} tokens exceed the context length {self.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        x = self.norm(run_blocks(self.blocks, x, self.grad_checkpointing, is_causal=True))
        last = (tokens != self.pad_id).sum(dim=1).clamp(min=1) - 1
        return x[torch.arange(x.shape[0], device=x.device), last]

    def no_weight_decay(self) -> set[str]:
        """The token and position embeddings."""
        return {"token_embedding.weight", "positional_embedding"}

    def layer_groups(self) -> list[list[str]]:
        """The token and position embeddings, each block, the final norm."""
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        return self.groups_by_prefix([("token_embedding", "positional_embedding"), *blocks, "norm"])


register_text_family("transformer", TextTransformer)
