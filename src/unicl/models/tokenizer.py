"""Tokenizers on the Hugging Face `tokenizers` library: byte-level BPE training and `tokenizer.json`.

`Tokenizer(texts) -> int64 [B, context_length]`: special tokens added by the file's post-processor,
truncated (keeping the specials) and right-padded with the padding token to the context length.

`clip_tokenizer(vocab, merges)` builds CLIP's tokenizer (OpenAI's `SimpleTokenizer`, as Hugging
Face's CLIP tokenizer builds it with `tokenizers`) from its vocabulary and merges,
`clip_vocabulary(merges)` derives the vocabulary from the merges as OpenAI's tokenizer does, and
`use_clip_padding` makes any CLIP tokenizer pad with `<|endoftext|>` as CLIP does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import tokenizers
import torch
from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, processors, trainers

from unicl.errors import UserInputError

MAX_VOCAB_SIZE = 1 << 24

PAD, START, END = "<|pad|>", "<|startoftext|>", "<|endoftext|>"
PAD_CANDIDATES = (PAD, "[PAD]", "<pad>")
SHIPPED_DIR = Path(__file__).parent / "tokenizers"
WORD_END = "</w>"
"""CLIP's end-of-word suffix: the last symbol of every word carries it."""
CLIP_WORDS = Regex(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)
"""CLIP's pre-tokenisation: the special tokens, English contractions, letter runs, single digits
and runs of other non-space characters; whitespace between them is dropped."""


class Tokenizer:
    """Batched text -> token ids of a fixed length, around a `tokenizers.Tokenizer`."""

    def __init__(self, backend: tokenizers.Tokenizer, context_length: int):
        pad_token = _padding_token(backend)
        self.backend = backend
        self.context_length = context_length
        self.pad_id = backend.token_to_id(pad_token)
        backend.enable_truncation(max_length=context_length)
        backend.enable_padding(length=context_length, pad_id=self.pad_id, pad_token=pad_token)

    @classmethod
    def from_file(cls, path: str | os.PathLike, context_length: int) -> Tokenizer:
        """Load a `tokenizer.json`; a shipped tokenizer may be named instead of a path."""
        path = resolve_tokenizer_path(path)
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as error:
            raise UserInputError(f"{path} is not a valid tokenizer.json: {error}") from error
        return cls(backend, context_length)

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        encodings = self.backend.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        return torch.from_numpy(ids.reshape(len(encodings), self.context_length))

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=True)

    def to_str(self) -> str:
        return self.backend.to_str()


def _padding_token(backend: tokenizers.Tokenizer) -> str:
    if backend.padding is not None:
        return backend.padding["pad_token"]
    for token in PAD_CANDIDATES:
        if backend.token_to_id(token) is not None:
            return token
    raise UserInputError(
        f"the tokenizer has no padding token; add one of {', '.join(PAD_CANDIDATES)} to it"
    )


def list_shipped_tokenizers() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.json"))


def resolve_tokenizer_path(name_or_path: str | os.PathLike) -> Path:
    """A shipped tokenizer's name (e.g. `bpe-4k`) or an existing file or directory holding one."""
    shipped = SHIPPED_DIR / f"{name_or_path}.json"
    if str(name_or_path) in list_shipped_tokenizers():
        return shipped
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise UserInputError(
            f"tokenizer {str(name_or_path)!r} is neither a tokenizer.json file nor one of the "
            f"shipped tokenizers {list_shipped_tokenizers()}"
        )
    return path


def train_bpe(
    texts: Iterable[str], vocab_size: int, min_frequency: int = 2
) -> tokenizers.Tokenizer:
    """Train a lower-casing byte-level BPE that wraps every text as `<|startoftext|> ... <|endoftext|>`.

    `vocab_size` is at least 300 (256 bytes, 3 specials and some merges) and at most 2^24 (the
    token ids a model config admits, `unicl.models.tower.TokenId`)."""
    if vocab_size < 300:
        raise UserInputError(
            f"vocab size {vocab_size} is too small: byte-level BPE needs 256 bytes + 3 specials"
        )
    if vocab_size > MAX_VOCAB_SIZE:
        raise UserInputError(f"vocab size {vocab_size} is too large: at most {MAX_VOCAB_SIZE}")
    backend = tokenizers.Tokenizer(models.BPE())
    backend.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, START, END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{START} $A {END}",
        special_tokens=[(START, backend.token_to_id(START)), (END, backend.token_to_id(END))],
    )
    return backend


def byte_symbols() -> list[str]:
    """The 256 byte-level symbols in GPT-2's (and CLIP's) vocabulary order: the printable bytes
    `!`..`~`, `¡`..`¬`, `®`..`ÿ` stand for themselves, then every other byte, in byte order, for
    the characters from U+0100 on."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(256 - len(printable))]


def clip_vocabulary(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """OpenAI's CLIP vocabulary (token -> id) from its BPE merges: the byte symbols, the same
    with `</w>`, the result of each merge in order, then `<|startoftext|>` and `<|endoftext|>`
    (49,408 tokens for CLIP's 48,894 merges)."""
    symbols = byte_symbols()
    tokens = [*symbols, *(s + WORD_END for s in symbols), *(a + b for a, b in merges), START, END]
    return {token: i for i, token in enumerate(tokens)}


def clip_tokenizer(
    vocab: dict[str, int], merges: Sequence[tuple[str, str]]
) -> tokenizers.Tokenizer:
    """CLIP's tokenizer from its vocabulary (token -> id, with `<|startoftext|>` and
    `<|endoftext|>`) and its BPE merges, in priority order.

    Text is NFC-normalised, whitespace runs become one space and everything is lower-cased
    (OpenAI's `whitespace_clean` and `lower`; its `ftfy` and HTML-unescaping passes are not
    applied, as in Hugging Face's fast tokenizer); words are split with `CLIP_WORDS`, mapped to
    byte-level symbols and merged with `</w>` marking word ends; texts become
    `<|startoftext|> ... <|endoftext|>`, padded with `<|endoftext|>` (`use_clip_padding`).
    """
    missing = [token for token in (START, END) if token not in vocab]
    if missing:
        raise UserInputError(f"the CLIP vocabulary lacks the special tokens {missing}")
    backend = tokenizers.Tokenizer(
        models.BPE(
            vocab=dict(vocab),
            merges=list(merges),
            continuing_subword_prefix="",
            end_of_word_suffix=WORD_END,
            unk_token=END,
            fuse_unk=False,
        )
    )
    backend.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(CLIP_WORDS, behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    backend.add_special_tokens([START, END])
    backend.post_processor = processors.TemplateProcessing(
        single=f"{START} $A {END}",
        special_tokens=[(START, vocab[START]), (END, vocab[END])],
    )
    return use_clip_padding(backend)


def use_clip_padding(backend: tokenizers.Tokenizer) -> tokenizers.Tokenizer:
    """Pad with `<|endoftext|>` (CLIP has no padding token of its own) and decode `</w>` word
    ends as spaces; returns `backend`, changed in place.

    A text tower fed by this tokenizer must pool at the first end-of-text token
    (`TextTransformer(pool="eot")` or `"argmax"`), not at the last non-padding one.
    """
    end = backend.token_to_id(END)
    if end is None:
        raise UserInputError(f"the tokenizer has no {END} token, so it is not a CLIP tokenizer")
    backend.enable_padding(pad_id=end, pad_token=END)
    backend.decoder = decoders.Sequence([decoders.Replace(WORD_END, "Ġ"), decoders.ByteLevel()])
    return backend
