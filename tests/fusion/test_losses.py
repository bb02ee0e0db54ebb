"""Loss terms on small hand-made batches."""

import math

import pytest
import torch
import torch.nn.functional as F

from avemo.emotions import EMOTIONS
from avemo.fusion.losses import EmotionMetricLoss, TripletMarginLoss, mine_triplets, semantic_margins

NEUTRAL, CALM, ANGRY = (EMOTIONS.index(e) for e in ("neutral", "calm", "angry"))


def test_miner_never_pairs_an_anchor_with_itself_and_negatives_differ():
    labels = torch.tensor([0, 0, 1, 0, 2])
    a, p, n = mine_triplets(labels)
    triplets = set(zip(a.tolist(), p.tolist(), n.tolist()))
    assert triplets == {(i, j, k) for i in (0, 1, 3) for j in (0, 1, 3) for k in (2, 4) if i != j}
    assert len(mine_triplets(torch.tensor([0, 1, 2]))[0]) == 0  # no positive pair, no triplet


def test_semantic_margins_grow_with_valence_arousal_distance():
    m = semantic_margins(0.1, 0.4)
    assert torch.allclose(m, m.T) and torch.allclose(m.diag(), torch.full((8,), 0.1))
    assert m[CALM, NEUTRAL] < m[ANGRY, NEUTRAL] < m[ANGRY, CALM]
    assert m.max().item() == pytest.approx(0.5)


def _unit(*angles):
    return torch.tensor([[math.cos(t), math.sin(t)] for t in angles])


def test_triplet_loss_matches_hand_computation():
    emb = _unit(0.0, 0.3, 0.5)  # anchor/positive 0.3 rad apart, negative 0.5 from the anchor
    labels = torch.tensor([0, 0, 1])
    out = TripletMarginLoss(margin=0.2)(emb, torch.zeros(3, 8), labels)
    chord = lambda t: 2 * math.sin(t / 2)  # noqa: E731 - distance of unit vectors t radians apart
    expected = (max(0, chord(0.3) - chord(0.5) + 0.2) + max(0, chord(0.3) - chord(0.2) + 0.2)) / 2
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)


def test_emotion_metric_loss_is_cross_entropy_when_margins_hold():
    emb = _unit(0.0, 0.01, math.pi)  # the negative is opposite: every margin is met
    labels = torch.tensor([ANGRY, ANGRY, CALM])
    logits = torch.randn(3, 8)
    out = EmotionMetricLoss(weight=1.0, margin_base=0.1, margin_scale=0.4)(emb, logits, labels)
    assert out["metric"].item() == 0 and out["active_triplets"].item() == 0
    assert out["loss"].item() == pytest.approx(F.cross_entropy(logits, labels).item())


def test_distant_emotions_need_a_larger_margin_than_close_ones():
    """Same geometry, two negatives: calm near neutral is not penalised, angry near calm is."""
    emb = _unit(0.0, 0.0, 0.35)  # d(a, p) = 0, d(a, n) = 0.348
    loss = EmotionMetricLoss(weight=1.0, margin_base=0.1, margin_scale=0.4)
    logits = torch.zeros(3, 8)
    close = loss(emb, logits, torch.tensor([NEUTRAL, NEUTRAL, CALM]))
    far = loss(emb, logits, torch.tensor([CALM, CALM, ANGRY]))
    assert close["metric"].item() == 0
    margin = semantic_margins(0.1, 0.4)[CALM, ANGRY].item()
    assert far["metric"].item() == pytest.approx(margin - 2 * math.sin(0.35 / 2), abs=1e-5)
    assert far["loss"] > close["loss"]


def test_metric_term_sends_gradients_to_the_embeddings():
    emb = _unit(0.0, 0.4, 0.2).requires_grad_()
    out = EmotionMetricLoss()(F.normalize(emb, dim=1), torch.zeros(3, 8), torch.tensor([ANGRY, ANGRY, CALM]))
    out["loss"].backward()
    assert emb.grad.abs().sum() > 0
