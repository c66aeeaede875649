"""Explicit, loop-by-loop implementations of the equations, used as the tests' ground truth."""

import torch
import torch.nn.functional as F


def unicl_loss_by_loops(u, v, labels, scale):
    """The paper's Eq. 2-4 written as double loops, in float64."""
    u, v, scale = u.double(), v.double(), torch.as_tensor(scale).double()
    size = len(labels)
    similarity = scale * u @ v.T
    image_to_text = 0.0
    text_to_image = 0.0
    for i in range(size):
        positives = [k for k in range(size) if labels[k] == labels[i]]
        row = F.log_softmax(similarity[i, :], dim=0)
        column = F.log_softmax(similarity[:, i], dim=0)
        image_to_text = image_to_text - sum(row[k] for k in positives) / len(positives)
        text_to_image = text_to_image - sum(column[k] for k in positives) / len(positives)
    return (image_to_text / size + text_to_image / size) / 2


def clip_loss(u, v, scale):
    """OpenCLIP's ClipLoss on one process: symmetric cross-entropy with the diagonal as targets."""
    logits = scale * u @ v.T
    targets = torch.arange(len(u))
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def supcon_by_loops(z, labels, temperature):
    """Khosla et al.'s Eq. 2 as loops, in float64."""
    z = z.double()
    total, anchors = 0.0, 0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        denominator = torch.logsumexp(torch.stack([z[i] @ z[a] / temperature for a in others]), 0)
        total = total - sum(z[i] @ z[p] / temperature - denominator for p in positives) / len(
            positives
        )
        anchors += 1
    return total / anchors


def normalized(rows, dim, *, seed, dtype=torch.float32, requires_grad=False):
    generator = torch.Generator().manual_seed(seed)
    features = F.normalize(torch.randn(rows, dim, generator=generator, dtype=torch.float64), dim=1)
    return features.to(dtype).requires_grad_(requires_grad)
