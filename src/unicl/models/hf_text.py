"""Pretrained Hugging Face language towers (`transformers`), loaded from local directories only.

`HFTextEncoder(...)(tokens int64 [B, L]) -> [B, hidden_size]`: the encoder's last hidden states,
mean-pooled over non-padding tokens or taken at the first ([CLS]) token. Weights are read only from
safetensors files in the directory; nothing is fetched from a hub.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unicl.errors import UserInputError
from unicl.models.registry import register_text_family
from unicl.models.tower import TextTower

POOLINGS = ("mean", "cls")
SAVED_DIRECTORY = "text_tower"


class HFTextEncoder(TextTower):
    """A `transformers.AutoModel` text encoder; `freeze=True` locks it (LiT) in eval mode.

    The tokenizer's `vocab_size` and the `context_length` must fit the model's token and position
    embeddings. `pretrained=False` builds the architecture only (a saved model's weights follow).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        vocab_size: int,
        pad_id: int,
        context_length: int,
        pooling: str = "mean",
        freeze: bool = False,
        pretrained: bool = True,
    ):
        super().__init__(vocab_size, pad_id, context_length)
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
        config = transformers.AutoConfig.from_pretrained(str(path), **options)
        _check_fits(config, vocab_size, context_length, path)
        if pretrained:
            self.model = _quietly(
                transformers,
                lambda: transformers.AutoModel.from_pretrained(
                    str(path), config=config, use_safetensors=True, **options
                ),
            )
        else:
            self.model = transformers.AutoModel.from_config(config)
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

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Switch the Hugging Face model's own (non-reentrant) checkpointing."""
        if enable:
            self._checkpointing("enable")({"use_reentrant": False})
        else:
            self._checkpointing("disable")()
        super().set_grad_checkpointing(enable)

    def no_weight_decay(self) -> set[str]:
        """Every embedding table of the model (token, position, token type)."""
        return {
            f"model.{name}.weight"
            for name, module in self.model.named_modules()
            if isinstance(module, nn.Embedding)
        }

    def layer_groups(self) -> list[list[str]]:
        """The embeddings (every parameter before the first encoder layer), each encoder layer
        (the items of the model's longest `nn.ModuleList`: `encoder.layer` in BERT-like models),
        then the rest (pooler, final norm), in the model's registration order."""
        lists = [(n, m) for n, m in self.model.named_modules() if isinstance(m, nn.ModuleList)]
        if not lists:
            return super().layer_groups()
        name, layers = max(lists, key=lambda item: len(item[1]))
        prefixes = [f"model.{name}.{i}." for i in range(len(layers))]
        groups: list[list[str]] = [[] for _ in range(len(layers) + 2)]
        after_layers = False
        for parameter, _ in self.named_parameters():
            layer = next((i for i, p in enumerate(prefixes) if parameter.startswith(p)), None)
            after_layers = after_layers or layer is not None
            place = layer + 1 if layer is not None else (len(groups) - 1 if after_layers else 0)
            groups[place].append(parameter)
        return [group for group in groups if group]

    def export_section(self, section: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """The architecture (`config.json`) goes to `text_tower/`, which the saved section names
        as its `path` with `pretrained: false`: the weights come from `model.safetensors`."""
        saved = {key: value for key, value in section.items() if key != "package"}
        saved.update(path=SAVED_DIRECTORY, pretrained=False)
        return saved, {f"{SAVED_DIRECTORY}/config.json": self.model.config.to_json_string()}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = tokens != self.pad_id
        hidden = self.model(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def _check_fits(config: Any, vocab_size: int, context_length: int, path: object) -> None:
    """Refuse a tokenizer or context length that would index past the model's embeddings."""
    if vocab_size > config.vocab_size:
        raise UserInputError(
            f"the tokenizer has {vocab_size} tokens but the text tower at {path} embeds only "
            f"{config.vocab_size}; use the tower's own tokenizer.json"
        )
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and context_length > positions:
        raise UserInputError(
            f"context_length {context_length} exceeds the {positions} positions of the text tower "
            f"at {path}; set context_length <= {positions}"
        )


register_text_family("hf", HFTextEncoder)


def _quietly(transformers, load):
    """`load()` without transformers' "Loading weights" progress bar, which would land in every
    training log (the setting is restored afterwards)."""
    hub_logging = transformers.utils.logging
    was_enabled = hub_logging.is_progress_bar_enabled()
    hub_logging.disable_progress_bar()
    try:
        return load()
    finally:
        if was_enabled:
            hub_logging.enable_progress_bar()
