"""The CLIP loss (Radford et al., 2021), the paper's image-text baseline: every sample its own label.

With ``s_ij = logit_scale * <u_i, v_j>`` over a batch of ``B`` L2-normalised images ``u`` and texts
``v``, the targets are the diagonal::

    L_i2t = mean_i [ lse_j(s_i.) - s_ii ]      (= CE(S, arange(B)))
    L_t2i = mean_j [ lse_i(s_.j) - s_jj ]      (= CE(S.T, arange(B)))
    L     = (L_i2t + L_t2i) / 2

It is ``unicl_loss`` with all labels distinct: pairs that share a class (two prompts of one class,
two identical captions) are negatives of each other. The positives are the diagonal, ``O(B * D)``;
only the log-sum-exp needs the ``B x B`` matrix (dense or tiled, as in ``unicl_loss``).

Across the ``W`` ranks of a group (:class:`ClipLoss`), rank ``r`` scores its ``b_r`` rows against
every rank's gathered rows (``N = sum_r b_r``)::

    loss_r = W / N * sum_{i local} ((lse_i2t(i) - s_ii) + (lse_t2i(i) - s_ii)) / 2

so ``mean_r loss_r`` is the global-batch ``L`` and, with the gather's backward and DDP's average,
the gradient is that of one process on the global batch (as for ``UniCLLoss``; OpenCLIP's
``--local-loss --gather-with-grad``, exact for unequal ``b_r``).
"""

from __future__ import annotations

import torch

from unicl import process_group
from unicl.objective.loss import (
    BatchCriterion,
    checked_tile_size,
    float32_region,
    similarity_logsumexp,
)
from unicl.objective.validation import validate_inputs


def clip_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    tile_size: int | None = None,
    tile_precision: str = "fp32",
    tile_compile: bool = False,
    check_finite: bool = True,
) -> torch.Tensor:
    """The CLIP loss of one batch (module docstring): image ``i`` and text ``i`` are the only
    positive pair of row and column ``i``.

    Arguments, checks and precision as in ``unicl_loss``, without labels: float ``[B, D]``
    features (L2-normalised, ``B >= 1``), the multiplier ``logit_scale``, optional ``tile_size``
    with its ``tile_precision`` and ``tile_compile``, ``check_finite``. Returns a float32
    scalar.
    """
    images, texts, scale = validate_inputs(
        image_features, text_features, None, logit_scale, check_finite=check_finite
    )
    with float32_region(images.device):
        row_lse, column_lse = similarity_logsumexp(
            images * scale,
            texts,
            checked_tile_size(tile_size),
            precision=tile_precision,
            compile=tile_compile,
        )
        diagonal = scale * (images * texts).sum(dim=1)
        return ((row_lse - diagonal).mean() + (column_lse - diagonal).mean()) / 2


class ClipLoss(BatchCriterion):
    """:func:`clip_loss` on one process, its exact sharded form (``loss_r`` of the module
    docstring) when ``group`` spans several.

    Called with this rank's ``image_features [b, D]``, ``text_features [b, D]`` (normalised) and
    the ``logit_scale`` multiplier. Across processes a rank may hold no rows (``b = 0``) as long
    as some rank holds one; the value on a rank is its share ``loss_r`` (average over ranks to log
    the global loss), and every rank of ``group`` must call it at the same step. Non-finite input
    on any rank makes every rank raise ``ValueError`` together.
    """

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
    ) -> torch.Tensor:
        if not process_group.spans_processes(self.group):
            return clip_loss(
                image_features,
                text_features,
                logit_scale,
                tile_size=self.tile_size,
                tile_precision=self.tile_precision,
                tile_compile=self.tile_compile,
                check_finite=self.check_finite,
            )
        images, texts, scale = validate_inputs(
            image_features, text_features, None, logit_scale, check_finite=False, allow_empty=True
        )

        def positives(all_images: torch.Tensor, all_texts: torch.Tensor):
            diagonal = scale * (images * texts).sum(dim=1)  # local rows only
            return diagonal, diagonal

        _, sizes = self.gather.labels(images.new_zeros(images.shape[0], dtype=torch.long))
        return self.sharded_loss(images, texts, scale, positives, sizes)
