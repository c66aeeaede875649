"""The UniCL dual encoder: image and text towers projected into one space with a learned scale.

Call shapes follow OpenCLIP's models so that harnesses written for them work unchanged:
`encode_image(images float [B,3,H,W]) -> [B,E]`, `encode_text(tokens int64 [B,L]) -> [B,E]`,
`forward(images, tokens) -> (image_features, text_features, logit_scale.exp())` with unit-norm
features, and `logit_bias` as a fourth element when the model has one (a model trained with the
sigmoid objective). `logit_scale` holds log(multiplier), initialised to log(1/0.07) and kept
<= log(100).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unicl.models.card import PROVENANCE_FILE, write_model_card
from unicl.models.config import ModelConfig
from unicl.models.feature_cache import LockedTowerCache
from unicl.models.serialization import TOKENIZER_FILE, save_directory
from unicl.models.tokenizer import Tokenizer
from unicl.models.tower import ImageTower, TextTower

INIT_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100)


class UniCLModel(nn.Module):
    """Image encoder + text encoder + bias-free linear projections to `embed_dim` + logit scale.

    The towers follow the contract of `unicl.models.tower`. `config` is the `ModelConfig` it was
    built from; it is what `save_pretrained` writes so that `unicl.load` can rebuild the same model.
    `provenance` records how the model was made (imported, trained, interpolated; see
    `unicl.models.card`), None when unknown; it is saved and loaded with the model.
    """

    def __init__(
        self,
        image_encoder: ImageTower,
        text_encoder: TextTower,
        tokenizer: Tokenizer,
        config: ModelConfig,
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.config = config
        embed_dim = config.embed_dim
        self.image_projection = nn.Linear(image_encoder.width, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_encoder.width, embed_dim, bias=False)
        nn.init.normal_(self.image_projection.weight, std=image_encoder.width**-0.5)
        nn.init.normal_(self.text_projection.weight, std=text_encoder.width**-0.5)
        self.logit_scale = nn.Parameter(torch.tensor(INIT_LOGIT_SCALE))
        self.logit_bias: nn.Parameter | None = None
        if config.init_logit_bias is not None:
            self.logit_bias = nn.Parameter(torch.tensor(config.init_logit_bias))
        self.text_cache: LockedTowerCache | None = None
        self.provenance: dict | None = None

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def image_mean(self) -> tuple[float, float, float]:
        return self.config.image_mean

    @property
    def image_std(self) -> tuple[float, float, float]:
        return self.config.image_std

    @property
    def context_length(self) -> int:
        return self.tokenizer.context_length

    def tokenize(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Texts -> int64 `[B, context_length]` on the CPU."""
        return self.tokenizer(texts)

    def encode_image(self, images: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        features = self.image_projection(self.image_encoder(images))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        cache = self.text_cache
        encoded = cache(tokens) if cache is not None else self.text_encoder(tokens)
        features = self.text_projection(encoded)
        return F.normalize(features, dim=-1) if normalize else features

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`(image_features, text_features, logit_scale.exp())`, plus `logit_bias` when the model
        has one (as OpenCLIP's models)."""
        outputs = (
            self.encode_image(images, normalize=True),
            self.encode_text(tokens, normalize=True),
            self.logit_scale.exp(),
        )
        return outputs if self.logit_bias is None else (*outputs, self.logit_bias)

    @torch.no_grad()
    def add_logit_bias(self, init_bias: float, init_logit_scale: float) -> None:
        """Give the model a learned `logit_bias` starting at `init_bias`, and restart the logit
        scale at `init_logit_scale` (its log): what the sigmoid objective does to a model that has
        no bias yet. The config records the bias, so a saved model loads with it."""
        if self.logit_bias is not None:
            raise ValueError("the model already has a logit_bias")
        self.config = dataclasses.replace(self.config, init_logit_bias=float(init_bias))
        self.logit_bias = nn.Parameter(self.logit_scale.new_tensor(float(init_bias)))
        self.logit_scale.fill_(init_logit_scale)

    def cache_text_features(self, max_entries: int = 100_000) -> None:
        """Encode each distinct token sequence once with the locked text tower, in eval mode, and
        reuse its output (`LockedTowerCache`; not saved with the model). The tower must be locked."""
        self.text_cache = LockedTowerCache(self.text_encoder, max_entries)

    @torch.no_grad()
    def clamp_logit_scale_(self) -> None:
        """Keep the multiplier in [1, 100] (call after each optimiser step)."""
        self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute encoder blocks in the backward pass, trading compute for activation memory."""
        self.image_encoder.set_grad_checkpointing(enable)
        self.text_encoder.set_grad_checkpointing(enable)

    def no_weight_decay(self) -> set[str]:
        """Full names of the tables the towers exclude from weight decay, `logit_scale` and
        `logit_bias`."""
        return {
            *(f"image_encoder.{name}" for name in self.image_encoder.no_weight_decay()),
            *(f"text_encoder.{name}" for name in self.text_encoder.no_weight_decay()),
            "logit_scale",
            *(("logit_bias",) if self.logit_bias is not None else ()),
        }

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `model.safetensors`, `config.json` and `tokenizer.json` (no pickle) to `directory`,
        `provenance.json` when the provenance is known, and the model card `README.md`.

        Each tower adds what rebuilds it from the directory alone (`export_section`; e.g. a
        Hugging Face tower's architecture in `text_tower/config.json`). Each file is written
        atomically; `unicl.load(directory)` rebuilds the model.
        """
        vision, image_files = self.image_encoder.export_section(self.config.vision)
        text, text_files = self.text_encoder.export_section(self.config.text)
        config = dataclasses.replace(
            self.config, tokenizer=TOKENIZER_FILE, vision=vision, text=text
        )
        files = {TOKENIZER_FILE: self.tokenizer.to_str(), **image_files, **text_files}
        if self.provenance is not None:
            files[PROVENANCE_FILE] = json.dumps(self.provenance, indent=2, default=str) + "\n"
        save_directory(directory, config.to_dict(), self.state_dict(), files)
        write_model_card(self, directory)
