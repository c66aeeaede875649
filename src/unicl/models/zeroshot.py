"""Zero-shot classifier weights from class names and prompt templates (CLIP's prompt ensembling).

w_c = normalize(mean_t normalize(encode_text(template_t.format(name_c)))), stacked as columns:
`build_zeroshot_classifier(model, names, templates) -> float [E, C]`, so that
`encode_image(x, normalize=True) @ weights` gives cosine-similarity logits `[B, C]`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from unicl.errors import UserInputError
from unicl.templates import validate_template


@torch.no_grad()
def build_zeroshot_classifier(
    model, class_names: Sequence[str], templates: Sequence[str], batch_size: int = 256
) -> torch.Tensor:
    """Encode every (class, template) prompt in eval mode, on the model's device, in batches."""
    if not class_names or not templates:
        raise UserInputError("a zero-shot classifier needs at least one class name and template")
    for template in templates:
        validate_template(template, "zero-shot templates")
    prompts = [template.format(name) for name in class_names for template in templates]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        features = torch.cat(
            [
                model.encode_text(
                    model.tokenize(prompts[i : i + batch_size]).to(device), normalize=True
                )
                for i in range(0, len(prompts), batch_size)
            ]
        )
    finally:
        model.train(was_training)
    per_class = features.view(len(class_names), len(templates), -1).float().mean(dim=1)
    return F.normalize(per_class, dim=-1).T.contiguous()
