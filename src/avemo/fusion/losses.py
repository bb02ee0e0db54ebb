"""Deep-metric losses on a batch of embeddings, built from separate pieces (as pytorch-metric-learning does):
a distance, a triplet miner, margins, and the losses that combine them.

Both losses mine their triplets inside the batch from one forward pass (the seed ran three forward passes
per triplet). For embeddings ``e`` (L2-normalised), labels ``y`` and the valid triplets
``T = {(a, p, n): y_a = y_p, a != p, y_n != y_a}``:

``TripletMarginLoss`` (the seed's loss, kept for comparison)::

    L = mean_{(a,p,n) in T} max(0, d(a,p) - d(a,n) + m)

``EmotionMetricLoss`` (the paper's "classification loss with an emotional metric constraint", the default)::

    L = CE(logits, y) + lambda * mean_{(a,p,n) in T+} max(0, d(a,p) - d(a,n) + m(y_a, y_n))
    m(i, j) = m0 + m1 * D_VA(i, j) / max D_VA

where ``D_VA`` is the distance of the two emotions in valence-arousal space (``avemo.emotions``), ``max D_VA``
the largest such distance between the loss's classes (a dataset's class names: all eight emotions for RAVDESS
and CREMA-D alike), and ``T+`` the triplets that still violate their margin (averaging over active triplets
only keeps the term from fading as most triplets become easy). The margin grows linearly from ``m0`` (an
emotion and itself) to ``m0 + m1`` (the farthest pair of classes): close pairs such as angry-fearful or
calm-neutral may sit nearer each other than distant ones such as angry-calm. Every valid triplet counts, not
only the hardest of each anchor. When a class is no emotion avemo knows, every pair gets ``m0 + m1 / 2``.
``m0``, ``m1`` and ``lambda`` are the ``margin``, ``margin_scale`` and ``metric_weight`` settings of
:class:`avemo.fusion.config.TrainConfig`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avemo.choices import Loss
from avemo.emotions import EMOTIONS, canonical, semantic_distance


def pairwise_distance(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, B) Euclidean distances; for unit vectors this is sqrt(2 - 2 cos)."""
    return torch.cdist(embeddings, embeddings).clamp_min(0)


def mine_triplets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors (anchor, positive, negative) of every valid triplet in the batch.

    The positive shares the anchor's label and is never the anchor itself; the negative has another label.
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    valid = positive[:, :, None] & ~same[:, None, :]  # valid[a, p, n]
    return valid.nonzero(as_tuple=True)


def semantic_margins(base: float, scale: float, classes: list[str] | tuple[str, ...] = EMOTIONS) -> torch.Tensor:
    """(C, C) margins m(i, j) = base + scale * D_VA(i, j) / max D_VA between the named classes.

    Names are read as emotions case-insensitively, with synonyms (``avemo.emotions.canonical``). When a class
    is no emotion avemo knows, distances mean nothing: every pair gets the constant ``base + scale / 2``.
    """
    names = [canonical(c) for c in classes]
    if None in names:
        return torch.full((len(classes), len(classes)), base + scale / 2)
    d = torch.tensor([[semantic_distance(a, b) for b in names] for a in names])
    return base + scale * d / d.max().clamp_min(1e-9)


def knows_distances(classes: list[str] | tuple[str, ...]) -> bool:
    """Whether every class is an emotion with a place in valence-arousal space."""
    return all(canonical(c) is not None for c in classes)


class TripletMarginLoss(nn.Module):
    """The seed's plain triplet margin loss, over all valid triplets of the batch."""

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        a, p, n = mine_triplets(labels)
        if len(a) == 0:
            zero = embeddings.sum() * 0
            return {"loss": zero, "metric": zero, "active_triplets": zero.detach()}
        d = pairwise_distance(embeddings)
        losses = F.relu(d[a, p] - d[a, n] + self.margin)
        return {"loss": losses.mean(), "metric": losses.mean().detach(),
                "active_triplets": (losses > 0).float().mean().detach()}


class EmotionMetricLoss(nn.Module):
    """Cross-entropy plus a triplet term whose margin grows with the semantic distance of the emotions."""

    def __init__(self, weight: float = 1.0, margin_base: float = 0.1, margin_scale: float = 0.4,
                 classes: list[str] | tuple[str, ...] = EMOTIONS) -> None:
        super().__init__()
        self.weight = weight
        self.register_buffer("margins", semantic_margins(margin_base, margin_scale, classes))

    def forward(self, embeddings: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        ce = F.cross_entropy(logits, labels)
        a, p, n = mine_triplets(labels)
        metric = embeddings.sum() * 0
        active = metric.detach()
        if len(a):
            d = pairwise_distance(embeddings)
            losses = F.relu(d[a, p] - d[a, n] + self.margins[labels[a], labels[n]])
            violated = losses > 0
            active = violated.float().mean().detach()
            if violated.any():
                metric = losses[violated].mean()
        return {"loss": ce + self.weight * metric, "ce": ce.detach(), "metric": metric.detach(),
                "active_triplets": active}


def build_loss(name: str, margin: float, weight: float, margin_scale: float,
               classes: list[str] | tuple[str, ...] = EMOTIONS) -> nn.Module:
    """The loss called ``name``: ``emotion-metric`` (default) or the seed's ``triplet``; ``classes`` names the
    label ids."""
    if Loss.check(name, "loss") == Loss.emotion_metric:
        return EmotionMetricLoss(weight=weight, margin_base=margin, margin_scale=margin_scale, classes=classes)
    return TripletMarginLoss(margin=margin)
