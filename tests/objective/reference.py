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


def siglip_loss(u, v, scale, bias):
    """SigLIP's loss (Zhai et al. 2023, Algorithm 1) as written there: labels `2 * eye(n) - 1`,
    `-sum(log_sigmoid(labels * logits)) / n`."""
    logits = scale * u @ v.T + bias
    labels = 2 * torch.eye(len(u)) - 1
    return -F.logsigmoid(labels * logits).sum() / len(u)


def mixed_memberships(labels, partner_labels, weights, keys):
    """`m_i(y_k)` as an `[B, K]` float64 table by loops: image `i`'s membership of key `k`'s label."""
    table = torch.zeros(len(labels), len(keys), dtype=torch.float64)
    for i in range(len(labels)):
        for k in range(len(keys)):
            w = float(weights[i])
            table[i, k] = w * (labels[i] == keys[k]) + (1 - w) * (partner_labels[i] == keys[k])
    return table


def label_sigmoid_by_loops(u, v, labels, scale, bias, partner_labels=None, weights=None):
    """The label-aware sigmoid loss pair by pair, in float64: binary cross-entropy of every
    `x_ij = t <u_i, v_j> + b` against its target, 1 when `y_i = y_j` (or the mixed membership)."""
    u, v = u.double(), v.double()
    scale, bias = torch.as_tensor(scale).double(), torch.as_tensor(bias).double()
    if partner_labels is None:
        partner_labels, weights = labels, torch.ones(len(labels))
    targets = mixed_memberships(labels, partner_labels, weights, labels)
    total = 0.0
    for i in range(len(u)):
        for j in range(len(v)):
            x = scale * u[i] @ v[j] + bias
            t = targets[i, j]
            total = total - t * F.logsigmoid(x) - (1 - t) * F.logsigmoid(-x)
    return total / len(u)


def mixed_unicl_by_loops(u, v, labels, partner_labels, weights, scale):
    """UniCL with mixed images by loops, in float64: row `i`'s target spreads `w_i` uniformly over
    the texts of `y_i` and `1 - w_i` over those of `y'_i`; column `j`'s target weighs image `i` by
    `m_i(y_j)`, normalised."""
    u, v, scale = u.double(), v.double(), torch.as_tensor(scale).double()
    size = len(labels)
    similarity = scale * u @ v.T
    memberships = mixed_memberships(labels, partner_labels, weights, labels)
    image_to_text = 0.0
    text_to_image = 0.0
    for i in range(size):
        row = F.log_softmax(similarity[i, :], dim=0)
        w = float(weights[i])
        for label, share in ((labels[i], w), (partner_labels[i], 1 - w)):
            texts = [k for k in range(size) if labels[k] == label]
            image_to_text = image_to_text - share * sum(row[k] for k in texts) / len(texts)
    for j in range(size):
        column = F.log_softmax(similarity[:, j], dim=0)
        target = memberships[:, j] / memberships[:, j].sum()
        text_to_image = text_to_image - sum(target[i] * column[i] for i in range(size))
    return (image_to_text / size + text_to_image / size) / 2
