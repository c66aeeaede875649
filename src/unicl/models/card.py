"""The model card: `README.md` in every saved model directory, what a reader needs to use it.

`model_card(model, directory)` renders, in Markdown:

- the architecture: each tower's family and settings, the embedding width, input size and
  normalisation, the context length, and the parameters of each part;
- the tokenizer: its kind, vocabulary, padding token and length;
- the provenance (`model.provenance`, saved as `provenance.json`): how the model was made, and
  the model it was made from, as far back as it is recorded: imported from a checkpoint, trained
  (objective, steps, samples, global batch, the data with the licence found beside it, the final
  evaluation), or interpolated (WiSE-FT);
- the evaluation results in its `evaluation/` folder (`unicl eval` writes them), every number
  that is a single value;
- how to load it.

`save_pretrained` writes the card; `unicl eval` rewrites it after writing a result into
`evaluation/`. A card whose first line is not `CARD_MARK` was written by someone else and is never
replaced (`write_model_card` returns False).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from unicl.errors import UserInputError
from unicl.files import write_text_atomic

CARD_FILE = "README.md"
PROVENANCE_FILE = "provenance.json"
EVALUATION_DIR = "evaluation"
CARD_MARK = "<!-- model card written by unicl; `unicl eval` rewrites it with new results -->"
HIDDEN_KEYS = {"arch", "path", "package", "weights"}
"""Tower config keys that say where weights came from, not what the tower is."""


def read_provenance(directory: str | os.PathLike) -> dict | None:
    """The saved `provenance.json` of a model directory, or None when there is none."""
    path = Path(directory) / PROVENANCE_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"{path} is not valid JSON (truncated?): {error}") from error
    return record if isinstance(record, dict) else None


def write_model_card(model: nn.Module, directory: str | os.PathLike) -> bool:
    """Write `README.md` into `directory` unless a card not written by unicl is there; returns
    whether it was written."""
    path = Path(directory) / CARD_FILE
    if path.is_file():
        first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
        if first.strip() != CARD_MARK:
            return False
    write_text_atomic(path, model_card(model, Path(directory)))
    return True


def model_card(
    model: nn.Module,
    directory: Path,
    *,
    title: str | None = None,
    origin: str = "saved by unicl",
    use: Sequence[str] | None = None,
) -> str:
    """The card of `model` (a `UniCLModel`) saved in `directory` (whose `evaluation/` results
    it lists). An exported copy names itself (`title`), says where it came from (`origin`) and
    how to load it (`use`: Markdown lines, `{path}` standing for the directory's path)."""
    config = model.config
    where = f"path/to/{title or directory.resolve().name}"
    lines = [CARD_MARK, f"# {title or directory.resolve().name}", ""]
    lines += [
        f"A UniCL dual encoder (image and text towers projected into one space), {origin}.",
        "",
        "## Architecture",
        "",
        "| part | what | parameters |",
        "| --- | --- | ---: |",
        f"| image tower | {_tower(config.vision)} | {_count(model.image_encoder)} |",
        f"| text tower | {_tower(config.text)} | {_count(model.text_encoder)} |",
        f"| projections | {model.image_encoder.width} -> {config.embed_dim} and "
        f"{model.text_encoder.width} -> {config.embed_dim}, bias-free | "
        f"{_count(model.image_projection, model.text_projection)} |",
        f"| logit scale | multiplier {float(model.logit_scale.detach().exp()):.4g} | 1 |",
        f"| total | | {_count(model)} |",
        "",
        f"Images: {config.image_size} x {config.image_size} px, normalised with mean "
        f"{list(config.image_mean)} and std {list(config.image_std)}. Texts: "
        f"{config.context_length} tokens. Embeddings: {config.embed_dim} values.",
    ]
    if config.image_only:
        lines += ["", "Image-only: the text tower was not trained with the image tower."]
    lines += ["", "## Tokenizer", "", _tokenizer(model.tokenizer), ""]
    lines += ["## How it was made", "", *_provenance(getattr(model, "provenance", None)), ""]
    lines += ["## Evaluation", "", *_evaluation(directory / EVALUATION_DIR), ""]
    if use is None:
        use = [
            "```python",
            "import unicl",
            "",
            f'model, _, preprocess = unicl.create_model_and_transforms("{where}")',
            f'tokenizer = unicl.get_tokenizer("{where}")',
            "```",
            "",
            "`unicl export` writes it as a Hugging Face CLIP or OpenCLIP directory when its "
            "towers are CLIP's (see docs/interop.md).",
        ]
    lines += ["## Use", "", *(line.replace("{path}", where) for line in use), ""]
    return "\n".join(lines)


def _count(*modules: nn.Module) -> str:
    return f"{sum(p.numel() for module in modules for p in module.parameters()):,}"


def _tower(section: Mapping[str, Any]) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in section.items() if k not in HIDDEN_KEYS)
    return f"`{section['arch']}`" + (f" ({settings})" if settings else "")


def _tokenizer(tokenizer) -> str:
    record = json.loads(tokenizer.to_str())
    kind = (record.get("model") or {}).get("type", "unknown")
    pad = (record.get("padding") or {}).get("pad_token", "?")
    return (
        f"`tokenizer.json`: {kind}, {tokenizer.vocab_size:,} tokens, padded with `{pad}` to "
        f"{tokenizer.context_length} tokens."
    )


def _provenance(record: Mapping[str, Any] | None) -> list[str]:
    """Lines for each recorded step, the latest first, then what it started from."""
    if not record:
        return ["Not recorded: this model was saved without a record of how it was made."]
    lines = []
    while record:
        lines += _step(record)
        record = record.get("base")
        if record:
            lines += ["", "It started from a model that was made as follows.", ""]
    return lines


def _step(record: Mapping[str, Any]) -> list[str]:
    kind = record.get("kind")
    if kind == "imported":
        return [
            f"Imported with `unicl convert` from `{record.get('source')}` "
            f"({record.get('format')}): the published weights, unchanged."
        ]
    if kind == "created":
        overrides = record.get("overrides")
        return [
            f"Built from the config `{record.get('config')}`"
            + (f" with overrides `{json.dumps(overrides, sort_keys=True)}`" if overrides else "")
            + ": freshly initialised, except towers whose weights the config names."
        ]
    if kind == "interpolated":
        return [
            f"WiSE-FT interpolation (`unicl wise-ft`), alpha {record.get('alpha')}: "
            f"(1 - alpha) x `{record.get('zeroshot')}` + alpha x `{record.get('finetuned')}`."
        ]
    if kind != "trained":
        return [f"Made by an unknown step: {json.dumps(dict(record), sort_keys=True)}"]
    lines = [
        f"Trained with `unicl train` from `{record.get('started_from')}`: objective "
        f"`{record.get('objective')}`, {_number(record.get('steps'))} steps, "
        f"{_number(record.get('samples'))} samples seen, global batch "
        f"{_number(record.get('global_batch'))}.",
    ]
    data = record.get("data") or []
    if data:
        lines += ["", "| data | modality | samples | licence |", "| --- | --- | ---: | --- |"]
        lines += [
            f"| {d.get('source')} | {d.get('modality')} | {d.get('samples')} | "
            f"{d.get('licence') or 'unknown (no LICENSE file beside the data)'} |"
            for d in data
        ]
    final = record.get("evaluation") or {}
    if final:
        shown = ", ".join(f"{k} {_number(v)}" for k, v in sorted(final.items()))
        lines += ["", f"Evaluation at the end of training: {shown}."]
    return lines


def _evaluation(folder: Path) -> list[str]:
    results = sorted(folder.glob("*.json")) if folder.is_dir() else []
    rows = []
    for path in results:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a damaged result is not shown; the folder keeps it
        if not isinstance(record, dict):
            continue
        data = record.get("data") or record.get("test") or ""
        numbers = ", ".join(
            f"{k} {_number(v)}"
            for k, v in sorted(record.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        rows.append(f"| {path.name} | {record.get('command', '')} | {data} | {numbers} |")
    if not rows:
        return [
            "No results yet: `unicl eval zeroshot|linear-probe|retrieval MODEL_DIR ...` writes "
            f"them into `{EVALUATION_DIR}/` and adds them here."
        ]
    return ["| result | command | data | metrics |", "| --- | --- | --- | --- |", *rows]


def _number(value: Any) -> str:
    """Floats to 4 decimals, integers with thousands separators, anything else as it is."""
    if isinstance(value, float):
        return f"{value:.4f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
