"""CLIP-style causal text transformer pooled at the end-of-text token.

`TextTransformer(...)(tokens int64 [B, L]) -> [B, width]`, L <= context_length, texts padded on
the right with `pad_id`. The pooled vector is the final-norm state at the end-of-text token; causal
attention means that tokens after it (padding) never influence it. Where that token is found is
the `pool` option:

- `last` (the default): the last non-padding token, which unicl's own tokenizers guarantee is the
  end-of-text token (their padding token is a separate `<|pad|>`);
- `eot`: the first occurrence of the token `eot_id`, for tokenizers that pad with the end-of-text
  token itself (CLIP's, where "last non-padding token" would be wrong) — Hugging Face's
  `CLIPTextModel` rule when its `eos_token_id` is not 2 (position 0 when a text has none);
- `argmax`: the position of the largest token id, OpenAI's CLIP rule (and Hugging Face's for
  configs with `eos_token_id == 2`), which is the first end-of-text token when that token has the
  largest id of the vocabulary.

`act="quick_gelu"` gives CLIP's MLP activation, and `norm_eps` the epsilon of every LayerNorm
(PyTorch's 1e-5 by default; microsoft/UniCL's text encoder uses TensorFlow-style LayerNorms with
1e-12). The defaults build the same model as before these options existed.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from unicl.models.layers import Activation, Block, run_blocks
from unicl.models.registry import register_text_family
from unicl.models.tower import Count, NormEps, Ratio, TextTower, TokenId, Width

Pooling = Literal["last", "eot", "argmax"]


class TextTransformer(TextTower):
    """Token + learned position embeddings, causal pre-norm blocks, final LayerNorm, one token.

    Parameters (names as in the state dict): `token_embedding.weight [vocab_size, width]`,
    `positional_embedding [context_length, width]`, `blocks.N.*` (`layers.Block` with activation
    `act`), `norm` (the final LayerNorm, applied to every position before pooling); every
    LayerNorm has epsilon `norm_eps`.
    """

    def __init__(
        self,
        vocab_size: int,
        pad_id: int,
        context_length: int,
        width: Width = 512,
        layers: Count = 12,
        heads: Count = 8,
        mlp_ratio: Ratio = 4.0,
        act: Activation = "gelu",
        pool: Pooling = "last",
        eot_id: TokenId | None = None,
        norm_eps: NormEps = 1e-5,
    ):
        super().__init__(vocab_size, pad_id, context_length)
        if (pool == "eot") != (eot_id is not None):
            raise ValueError("text pool 'eot' needs eot_id (the end-of-text token id), and only it")
        if eot_id is not None and eot_id >= vocab_size:
            raise ValueError(f"eot_id {eot_id} is outside the tokenizer's {vocab_size} tokens")
        self.width = width
        self.pool = pool
        self.eot_id = eot_id
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio, act=act, norm_eps=norm_eps) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width, eps=norm_eps)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)

    def _pooled_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """int64 `[B]`: the position of each text's end-of-text token (see `pool`)."""
        if self.pool == "eot":
            return (tokens == self.eot_id).int().argmax(dim=1)
        if self.pool == "argmax":
            return tokens.argmax(dim=1)
        return (tokens != self.pad_id).sum(dim=1).clamp(min=1) - 1

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        if length > self.context_length:
            raise ValueError(f"{length} tokens exceed the context length {self.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        x = self.norm(run_blocks(self.blocks, x, self.grad_checkpointing, is_causal=True))
        return x[torch.arange(x.shape[0], device=x.device), self._pooled_positions(tokens)]

    def no_weight_decay(self) -> set[str]:
        """The token and position embeddings."""
        return {"token_embedding.weight", "positional_embedding"}

    def layer_groups(self) -> list[list[str]]:
        """The token and position embeddings, each block, the final norm."""
        blocks = [f"blocks.{i}" for i in range(len(self.blocks))]
        return self.groups_by_prefix([("token_embedding", "positional_embedding"), *blocks, "norm"])


register_text_family("transformer", TextTransformer)
