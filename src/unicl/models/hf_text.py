"""Pretrained Hugging Face language towers (`transformers`), loaded from local directories only.

`HFTextEncoder(...)(tokens int64 [B, L]) -> [B, hidden_size]`: the encoder's last hidden states,
mean-pooled over non-padding tokens or taken at the first ([CLS]) token. Weights are read only from
safetensors files in the directory; nothing is fetched from a hub.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from unicl.errors import UserInputError

POOLINGS = ("mean", "cls")


class HFTextEncoder(nn.Module):
    """A `transformers.AutoModel` text encoder; `freeze=True` locks it (LiT) in eval mode."""

    def __init__(
        self,
        path: str | os.PathLike,
        pad_id: int,
        pooling: str = "mean",
        freeze: bool = False,
        pretrained: bool = True,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise UserInputError(f"unknown text pooling {pooling!r}; choose one of {POOLINGS}")
        if not Path(path, "config.json").is_file():
            raise UserInputError(
                f"{path} is not a local Hugging Face model directory (no config.json in it)"
            )
        try:
            import transformers
        except ImportError as error:
            raise UserInputError(
                "pretrained text towers need the `transformers` package: pip install 'unicl[hf]'"
            ) from error
        options = dict(local_files_only=True, trust_remote_code=False)
        if pretrained:
            self.model = transformers.AutoModel.from_pretrained(
                str(path), use_safetensors=True, **options
            )
        else:
            config = transformers.AutoConfig.from_pretrained(str(path), **options)
            self.model = transformers.AutoModel.from_config(config)
        self.pad_id = pad_id
        self.pooling = pooling
        self.frozen = freeze
        self.width = self.model.config.hidden_size
        if freeze:
            self.model.requires_grad_(False)
            self.model.eval()

    def train(self, mode: bool = True) -> HFTextEncoder:
        super().train(mode)
        if self.frozen:
            self.model.eval()
        return self

    def _checkpointing(self, action: str):
        """transformers 5 renamed `gradient_checkpointing_*` to `activation_checkpointing_*`."""
        new, old = f"activation_checkpointing_{action}", f"gradient_checkpointing_{action}"
        return getattr(self.model, new, None) or getattr(self.model, old)

    @property
    def grad_checkpointing(self) -> bool:
        if hasattr(self.model, "is_activation_checkpointing"):
            return self.model.is_activation_checkpointing
        return self.model.is_gradient_checkpointing

    @grad_checkpointing.setter
    def grad_checkpointing(self, enable: bool) -> None:
        if enable:
            self._checkpointing("enable")({"use_reentrant": False})
        else:
            self._checkpointing("disable")()

    def config_json(self) -> str:
        """The tower's architecture (`config.json`), enough to rebuild it without its weights."""
        return self.model.config.to_json_string()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens != self.pad_id
        hidden = self.model(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
