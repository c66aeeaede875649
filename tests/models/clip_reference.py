"""Small random CLIP models built with `transformers` (code no one here wrote) and written in the
layouts that `unicl convert` reads, for the equivalence tests.

- `write_clip_vocabulary(dir)`: a tiny CLIP vocabulary in OpenAI's order (byte symbols from
  transformers' `bytes_to_unicode`, the same with `</w>`, one token per merge, then the two
  specials) with merges learned by `tokenizers` from a few sentences: `vocab.json`, `merges.txt`
  and the same merges as OpenAI's gzip file.
- `tiny_clip(...)`: a random `transformers.CLIPModel` (32 px images, 8 px patches, context 16).
- `openai_state_dict(model)`: its weights in the OpenAI layout, by the inverse of the mapping of
  transformers' `convert_clip_original_pytorch_to_hf.py`.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

transformers = pytest.importorskip("transformers")
from transformers.convert_slow_tokenizer import bytes_to_unicode  # noqa: E402

CONTEXT = 16
SENTENCES = [
    "a photo of a cat.",
    "a blurry photo of the big airplane!",
    "two dogs running on the beach at sunset, 2019.",
    "a close-up photo of a leather bag; it's red",
    "the café's menu: crème brûlée & espresso",
] * 20
TEXTS = [
    "a photo of a cat.",
    "A  Blurry\tPHOTO of the BIG airplane!!",
    "",
    "it's a dog's photo, 42 times: two dogs running on the beach at sunset again and again",
    "crème brûlée <|endoftext|> café",
]


def write_clip_vocabulary(directory: Path) -> dict[str, int]:
    """Write `vocab.json`, `merges.txt` and `bpe.txt.gz` to `directory`; return the vocabulary."""
    learner = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    learner.train_from_iterator([s.lower() for s in SENTENCES], trainer=trainer)
    merges = [tuple(m) for m in json.loads(learner.to_str())["model"]["merges"]]
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *(a + b for a, b in merges)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(tokens)) == len(tokens)
    vocab = {token: i for i, token in enumerate(tokens)}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    lines = "".join(f"{a} {b}\n" for a, b in merges)
    (directory / "merges.txt").write_text("#version: 0.2\n" + lines, encoding="utf-8")
    (directory / "bpe.txt.gz").write_bytes(
        gzip.compress(("bpe.txt#version: 0.2\n" + lines).encode())
    )
    return vocab


def hf_tokenizer(directory: Path):
    """transformers' CLIP tokenizer read from `vocab.json` + `merges.txt`."""
    return transformers.CLIPTokenizer.from_pretrained(str(directory))


def hf_ids(tokenizer, texts: list[str]) -> torch.Tensor:
    """Ids as CLIP uses them: padded to the context with `<|endoftext|>`, truncated."""
    encoded = tokenizer(
        texts, padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="pt"
    )
    return encoded.input_ids


def tiny_clip(
    vocab: dict[str, int],
    act: str = "quick_gelu",
    legacy_eos: bool = False,
    vision_width: int = 64,
    text_width: int = 128,
    heads: tuple[int, int] = (1, 2),
):
    """A random `CLIPModel` (2 layers a tower) whose norms, biases and logit scale are random too,
    so that a tensor mapped wrongly cannot hide behind an initial value."""
    torch.manual_seed(0)
    end = vocab["<|endoftext|>"]
    config = transformers.CLIPConfig(
        text_config=dict(
            hidden_size=text_width,
            intermediate_size=3 * text_width,
            num_hidden_layers=2,
            num_attention_heads=heads[1],
            vocab_size=len(vocab),
            max_position_embeddings=CONTEXT,
            hidden_act=act,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=2 if legacy_eos else end,
            pad_token_id=end,
        ),
        vision_config=dict(
            hidden_size=vision_width,
            intermediate_size=4 * vision_width,
            num_hidden_layers=2,
            num_attention_heads=heads[0],
            image_size=32,
            patch_size=8,
            hidden_act=act,
        ),
        projection_dim=24,
    )
    model = transformers.CLIPModel(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            is_gain = "norm" in name and name.endswith("weight")
            parameter.normal_(1.0 if is_gain else 0.0, 0.1)
        model.logit_scale.fill_(3.3)
    return model


def features(output) -> torch.Tensor:
    """`get_*_features` returns a tensor (transformers 4) or an output whose pooler_output is it."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def openai_state_dict(model) -> dict[str, torch.Tensor]:
    """The OpenAI layout of `model`'s weights: the inverse of transformers'
    `convert_clip_original_pytorch_to_hf.py` (`copy_vison_model_and_projection`,
    `copy_text_model_and_projection`, `copy_layer`, `copy_attn_layer`)."""
    hf = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    vision_layers = model.config.vision_config.num_hidden_layers
    state = {
        "visual.proj": hf["visual_projection.weight"].T.contiguous(),
        "visual.conv1.weight": hf["vision_model.embeddings.patch_embedding.weight"],
        "visual.class_embedding": hf["vision_model.embeddings.class_embedding"],
        "visual.positional_embedding": hf["vision_model.embeddings.position_embedding.weight"],
        "text_projection": hf["text_projection.weight"].T.contiguous(),
        "logit_scale": hf["logit_scale"],
        **openai_text_state_dict(hf, model.config.text_config.num_hidden_layers),
    }
    for ours, theirs in (
        ("visual.ln_pre", "vision_model.pre_layrnorm"),
        ("visual.ln_post", "vision_model.post_layernorm"),
    ):
        for kind in ("weight", "bias"):
            state[f"{ours}.{kind}"] = hf[f"{theirs}.{kind}"]
    _copy_layers(
        state, hf, "visual.transformer.resblocks", "vision_model.encoder.layers", vision_layers
    )
    return state


def openai_text_state_dict(hf: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """The OpenAI layout of the text tower in the `transformers` state dict `hf` (a `CLIPModel`'s
    or a `CLIPTextModelWithProjection`'s: `text_model.*`), without the projection."""
    state = {
        "token_embedding.weight": hf["text_model.embeddings.token_embedding.weight"],
        "positional_embedding": hf["text_model.embeddings.position_embedding.weight"],
    }
    for kind in ("weight", "bias"):
        state[f"ln_final.{kind}"] = hf[f"text_model.final_layer_norm.{kind}"]
    _copy_layers(state, hf, "transformer.resblocks", "text_model.encoder.layers", layers)
    return state


def _copy_layers(state, hf, ours: str, theirs: str, layers: int) -> None:
    """`copy_layer` and `copy_attn_layer` inverted, for `layers` blocks."""
    for i in range(layers):
        a, b = f"{ours}.{i}", f"{theirs}.{i}"
        for kind in ("weight", "bias"):
            state[f"{a}.ln_1.{kind}"] = hf[f"{b}.layer_norm1.{kind}"]
            state[f"{a}.ln_2.{kind}"] = hf[f"{b}.layer_norm2.{kind}"]
            state[f"{a}.mlp.c_fc.{kind}"] = hf[f"{b}.mlp.fc1.{kind}"]
            state[f"{a}.mlp.c_proj.{kind}"] = hf[f"{b}.mlp.fc2.{kind}"]
            state[f"{a}.attn.out_proj.{kind}"] = hf[f"{b}.self_attn.out_proj.{kind}"]
            state[f"{a}.attn.in_proj_{kind}"] = torch.cat(
                [hf[f"{b}.self_attn.{p}_proj.{kind}"] for p in "qkv"], dim=0
            )


def save_hf_clip(model, vocabulary_dir: Path, directory: Path) -> Path:
    """`model.save_pretrained(directory)` with the tokenizer of `vocabulary_dir` saved beside it
    (`tokenizer.json`, as transformers writes it)."""
    model.save_pretrained(str(directory))
    hf_tokenizer(vocabulary_dir).save_pretrained(str(directory))
    return directory
