"""What of a unicl model a CLIP layout can hold: the check, the sizes and the tokenizer files.

A unicl model has a CLIP counterpart when it is what the importers build (`clip.clip_model`):

- image tower: the `vit` family with CLIP's pre-norm (`vision.pre_norm: true`, CLIP's `ln_pre`)
  and a bias-free patch embedding (`vision.patch_bias: false`). ResNet, Swin and EfficientNet
  towers, and plain ViTs, have no counterpart;
- text tower: the `transformer` family pooled at the end-of-text token (`text.pool: eot` or
  `argmax`). Pooling at the last non-padding token (`pool: last`, unicl's own tokenizers) and
  Hugging Face text towers (`hf`, e.g. MiniLM) have none;
- tokenizer: CLIP's byte-level BPE (`tokenizer.clip_tokenizer`: CLIP's normaliser and word
  split, `</w>` word ends, `<|startoftext|> ... <|endoftext|>`, padded with `<|endoftext|>`),
  which `transformers.CLIPTokenizer` and OpenCLIP's tokenizer rebuild from the vocabulary and
  merges alone: a tokenizer that differs in anything else would give other ids there;
- both towers trained together (not an `image_only` model).

`clip_shape(model, target)` refuses anything else in one line naming the tower;
`clip_tokenizer_files(model)` writes the tokenizer as `vocab.json`, `merges.txt` and
`tokenizer.json` with transformers' `tokenizer_config.json` and `special_tokens_map.json`.
"""

from __future__ import annotations

import json

from torch import nn

from unicl.errors import UserInputError
from unicl.models.convert.clip import ClipShape, ClipTower
from unicl.models.layers import QuickGELU
from unicl.models.model import UniCLModel
from unicl.models.text_transformer import TextTransformer
from unicl.models.tokenizer import END, START, WORD_END, Tokenizer, clip_tokenizer
from unicl.models.vit import VisionTransformer

PROBES = ("a photo of a cat.", "Two  DOGS, 42 times; it's café crème!", "")
"""Texts whose ids must agree between the model's tokenizer and CLIP's rebuilt one."""
NORM_EPS = 1e-5
"""CLIP's LayerNorm epsilon, the only one the CLIP layouts express (and unicl's towers use)."""


def clip_shape(model: UniCLModel, target: str) -> ClipShape:
    """The sizes of `model` as a CLIP ViT model, after checking that `target` (a format's name,
    for the error lines) can hold it exactly."""
    config = model.config
    if config.image_only:
        raise UserInputError(
            f"the model is image-only (its text tower was not trained with the image tower); "
            f"{target} needs both towers"
        )
    vision, text = model.image_encoder, model.text_encoder
    if not isinstance(vision, VisionTransformer):
        raise UserInputError(
            f"the image tower is {config.vision['arch']!r}; {target} holds CLIP's ViT image tower "
            "only (arch vit with pre_norm: true, patch_bias: false)"
        )
    if not isinstance(vision.norm_pre, nn.LayerNorm) or vision.patch_embed.bias is not None:
        raise UserInputError(
            f"the image tower is a ViT without CLIP's pre-norm or with a patch bias (vision."
            f"pre_norm: {isinstance(vision.norm_pre, nn.LayerNorm)}, patch_bias: "
            f"{vision.patch_embed.bias is not None}); {target} needs pre_norm: true and "
            "patch_bias: false"
        )
    if not isinstance(text, TextTransformer):
        raise UserInputError(
            f"the text tower is {config.text['arch']!r}; {target} holds CLIP's text transformer "
            "only (arch transformer)"
        )
    if text.pool == "last":
        raise UserInputError(
            f"the text tower pools at the last non-padding token (text.pool: last); {target} "
            "pools at the end-of-text token (pool: eot or argmax)"
        )
    _check_norms(model, target)
    check_clip_tokenizer(model.tokenizer, target)
    return ClipShape(
        vision=_tower(vision.blocks, vision.width),
        text=_tower(text.blocks, text.width),
        embed_dim=model.embed_dim,
        image_size=model.image_size,
        patch_size=vision.patch_size,
        context_length=text.context_length,
        vocab_size=text.token_embedding.num_embeddings,
        pool=text.pool,
        eot_id=text.eot_id,
        image_mean=model.image_mean,
        image_std=model.image_std,
        init_logit_bias=model.config.init_logit_bias if model.logit_bias is not None else None,
    )


def _tower(blocks: nn.ModuleList, width: int) -> ClipTower:
    """The sizes of a tower from its blocks (all alike: one `layers.Block` configuration)."""
    first = blocks[0]
    return ClipTower(
        width=width,
        layers=len(blocks),
        heads=first.attn.heads,
        mlp=first.mlp[0].out_features,
        act="quick_gelu" if isinstance(first.mlp[1], QuickGELU) else "gelu",
    )


def _check_norms(model: UniCLModel, target: str) -> None:
    other = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.LayerNorm) and module.eps != NORM_EPS
    ]
    if other:
        raise UserInputError(
            f"LayerNorm {other[0]} has epsilon {model.get_submodule(other[0]).eps}; {target} "
            f"uses CLIP's {NORM_EPS}"
        )


def clip_vocabulary_and_merges(
    tokenizer: Tokenizer,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The BPE vocabulary and merges of a CLIP tokenizer (read from its `tokenizer.json`)."""
    model = json.loads(tokenizer.to_str())["model"]
    if model.get("type") != "BPE" or model.get("end_of_word_suffix") != WORD_END:
        return {}, []
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def check_clip_tokenizer(tokenizer: Tokenizer, target: str) -> None:
    """Refuse a tokenizer that CLIP's, rebuilt from its vocabulary and merges, would not
    reproduce: other normalisation or word split, no `</w>` BPE, other specials or padding."""
    vocab, merges = clip_vocabulary_and_merges(tokenizer)
    why = None
    if not vocab or START not in vocab or END not in vocab:
        why = f"it is not a BPE with {WORD_END} word ends and {START} / {END}"
    else:
        rebuilt = clip_tokenizer(vocab, merges)
        theirs, ours = json.loads(rebuilt.to_str()), json.loads(tokenizer.to_str())
        steps = [k for k in ("normalizer", "pre_tokenizer") if ours[k] != theirs[k]]
        if steps:
            verb = "differs" if len(steps) == 1 else "differ"
            why = f"its {' and '.join(steps)} {verb} from CLIP's"  # the steps' names in the JSON
        elif not Tokenizer(rebuilt, tokenizer.context_length)(PROBES).equal(tokenizer(PROBES)):
            why = f"it adds or pads with other tokens than CLIP's {START} ... {END}"
    if why is not None:
        raise UserInputError(
            f"the tokenizer is not CLIP's byte-level BPE ({why}), so {target}'s CLIP tokenizer "
            "would give other token ids; only models with a CLIP tokenizer can be exported"
        )


def clip_tokenizer_files(tokenizer: Tokenizer) -> dict[str, str]:
    """The files a CLIP tokenizer is read from by transformers (`CLIPTokenizer`,
    `CLIPTokenizerFast`) and by `unicl convert`: name -> text."""
    vocab, merges = clip_vocabulary_and_merges(tokenizer)
    backend = clip_tokenizer(vocab, merges)
    backend.no_padding()
    backend.no_truncation()
    specials = {"bos_token": START, "eos_token": END, "unk_token": END, "pad_token": END}
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": tokenizer.context_length,
        "do_lower_case": True,
        "errors": "replace",
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        **specials,
    }
    return {
        "vocab.json": json.dumps(vocab, ensure_ascii=False) + "\n",
        "merges.txt": "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
        "tokenizer.json": backend.to_str(),
        "tokenizer_config.json": json.dumps(config, indent=2) + "\n",
        "special_tokens_map.json": json.dumps(specials, indent=2) + "\n",
    }
