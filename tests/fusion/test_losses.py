"""Loss terms on small hand-made batches, against expectations computed here, not by the code under test.

The margins are worked out from the valence-arousal coordinates written out below (Russell's circumplex as
avemo places the eight emotions), so a changed margin formula, coordinate or mining rule fails these tests.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from avemo.emotions import EMOTIONS
from avemo.fusion.losses import EmotionMetricLoss, TripletMarginLoss, mine_triplets, semantic_margins

NEUTRAL, CALM, HAPPY, SAD, ANGRY, FEARFUL = (EMOTIONS.index(e)
                                             for e in ("neutral", "calm", "happy", "sad", "angry", "fearful"))

# (valence, arousal) of the emotions these tests use; happy and sad are the farthest pair of all eight.
CALM_VA, NEUTRAL_VA, ANGRY_VA, FEARFUL_VA = (0.3, -0.4), (0.0, 0.0), (-0.6, 0.8), (-0.7, 0.6)
HAPPY_VA, SAD_VA = (0.8, 0.5), (-0.7, -0.4)
MAX_DVA = math.hypot(0.8 - -0.7, 0.5 - -0.4)  # happy-sad: sqrt(1.5^2 + 0.9^2) = 1.749
M0, M1 = 0.1, 0.4


def _margin(va_a, va_b, max_dva=MAX_DVA):
    """m = m0 + m1 * D_VA / max D_VA, by hand."""
    return M0 + M1 * math.dist(va_a, va_b) / max_dva


def _chord(t):
    """Euclidean distance of two unit vectors t radians apart."""
    return 2 * math.sin(t / 2)


def _unit(*angles):
    return torch.tensor([[math.cos(t), math.sin(t)] for t in angles])


def test_miner_never_pairs_an_anchor_with_itself_and_negatives_differ():
    labels = torch.tensor([0, 0, 1, 0, 2])
    a, p, n = mine_triplets(labels)
    triplets = set(zip(a.tolist(), p.tolist(), n.tolist()))
    assert triplets == {(i, j, k) for i in (0, 1, 3) for j in (0, 1, 3) for k in (2, 4) if i != j}
    assert len(mine_triplets(torch.tensor([0, 1, 2]))[0]) == 0  # no positive pair, no triplet


def test_semantic_margins_of_named_pairs_match_a_hand_computation():
    m = semantic_margins(M0, M1)
    # calm-neutral: D_VA 0.5, so 0.1 + 0.4 * 0.5 / 1.749 = 0.214; angry-calm: D_VA 1.5, 0.443;
    # angry-fearful: D_VA 0.224, 0.151; happy-sad, the farthest pair, gets m0 + m1
    expected = {(CALM, NEUTRAL): 0.2143, (ANGRY, CALM): 0.4430, (ANGRY, FEARFUL): 0.1511, (HAPPY, SAD): 0.5}
    for (i, j), value in expected.items():
        assert m[i, j].item() == pytest.approx(value, abs=1e-4)
        assert m[j, i].item() == pytest.approx(value, abs=1e-4)
    assert m[CALM, NEUTRAL].item() == pytest.approx(_margin(CALM_VA, NEUTRAL_VA), abs=1e-6)
    assert m[ANGRY, CALM].item() == pytest.approx(_margin(ANGRY_VA, CALM_VA), abs=1e-6)
    assert m[ANGRY, FEARFUL].item() == pytest.approx(_margin(ANGRY_VA, FEARFUL_VA), abs=1e-6)
    assert m[HAPPY, SAD].item() == pytest.approx(_margin(HAPPY_VA, SAD_VA), abs=1e-6)
    assert m.diag().tolist() == pytest.approx([M0] * 8)  # an emotion and itself
    assert m.max().item() == pytest.approx(M0 + M1)


def test_margins_scale_by_the_farthest_pair_of_the_given_classes_read_as_emotions():
    """Two classes: their own distance is the largest, so the pair gets m0 + m1; names are read case-insensitively
    and through synonyms ("Anger" is angry)."""
    m = semantic_margins(M0, M1, ["Anger", "calm"])
    torch.testing.assert_close(m, torch.tensor([[M0, M0 + M1], [M0 + M1, M0]]))


def test_classes_that_are_no_emotions_get_one_constant_margin():
    m = semantic_margins(M0, M1, ["dog", "cat", "bird"])
    torch.testing.assert_close(m, torch.full((3, 3), M0 + M1 / 2))


def test_triplet_loss_matches_hand_computation():
    emb = _unit(0.0, 0.3, 0.5)  # anchor/positive 0.3 rad apart, negative 0.5 from the anchor
    labels = torch.tensor([0, 0, 1])
    out = TripletMarginLoss(margin=0.2)(emb, torch.zeros(3, 8), labels)
    expected = (max(0, _chord(0.3) - _chord(0.5) + 0.2) + max(0, _chord(0.3) - _chord(0.2) + 0.2)) / 2
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)


def test_emotion_metric_loss_matches_hand_computation():
    """Two calm clips 0.1 rad apart, a neutral one at -0.35 rad and an angry one at 0.45 rad.

    Of the four triplets, the two with the neutral negative meet their margin (0.214) and the two with the
    angry negative (margin 0.443) do not; the hardest is anchor 1 (at 0.1), positive 0, angry negative 0.35
    rad away. The metric term averages the two active ones; with constant margins, margins read from the
    positive's label, or an average over all four triplets, the value would differ.
    """
    emb = _unit(0.0, 0.1, -0.35, 0.45)
    labels = torch.tensor([CALM, CALM, NEUTRAL, ANGRY])
    d_ap = _chord(0.1)
    calm_neutral, calm_angry = _margin(CALM_VA, NEUTRAL_VA), _margin(CALM_VA, ANGRY_VA)
    triplets = [d_ap - _chord(0.35) + calm_neutral,  # (0, 1, neutral)
                d_ap - _chord(0.45) + calm_angry,    # (0, 1, angry)
                d_ap - _chord(0.45) + calm_neutral,  # (1, 0, neutral)
                d_ap - _chord(0.35) + calm_angry]    # (1, 0, angry): the hardest
    active = [t for t in triplets if t > 0]
    assert len(active) == 2 and max(triplets) == triplets[3]  # the geometry is what the docstring says
    metric = sum(active) / len(active)
    logits = torch.zeros(4, 8)
    out = EmotionMetricLoss(weight=2.0, margin_base=M0, margin_scale=M1)(emb, logits, labels)
    assert out["metric"].item() == pytest.approx(metric, abs=1e-5)
    assert out["active_triplets"].item() == pytest.approx(0.5)
    assert out["ce"].item() == pytest.approx(math.log(8), abs=1e-6)  # uniform logits over 8 classes
    assert out["loss"].item() == pytest.approx(math.log(8) + 2.0 * metric, abs=1e-5)


def test_emotion_metric_loss_is_cross_entropy_when_margins_hold():
    emb = _unit(0.0, 0.01, math.pi)  # the negative is opposite: every margin is met
    labels = torch.tensor([ANGRY, ANGRY, CALM])
    logits = torch.tensor([[2.0, 0, 0, 0, 1.0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0], [0, 3.0, 0, 0, 0, 0, 0, 0]])
    out = EmotionMetricLoss(weight=1.0, margin_base=M0, margin_scale=M1)(emb, logits, labels)
    assert out["metric"].item() == 0 and out["active_triplets"].item() == 0
    # -log softmax of the true class, by hand: e^1 / (e^2 + e^1 + 6), 1 / 8, e^3 / (e^3 + 7)
    expected = -(math.log(math.e / (math.e ** 2 + math.e + 6)) + math.log(1 / 8)
                 + math.log(math.e ** 3 / (math.e ** 3 + 7))) / 3
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)


def test_distant_emotions_need_a_larger_margin_than_close_ones():
    """Same geometry, two negatives: calm near neutral is not penalised, angry near calm is."""
    emb = _unit(0.0, 0.0, 0.35)  # d(a, p) = 0, d(a, n) = 0.348
    loss = EmotionMetricLoss(weight=1.0, margin_base=M0, margin_scale=M1)
    logits = torch.zeros(3, 8)
    close = loss(emb, logits, torch.tensor([NEUTRAL, NEUTRAL, CALM]))
    far = loss(emb, logits, torch.tensor([CALM, CALM, ANGRY]))
    assert close["metric"].item() == 0  # margin 0.214 < 0.348
    assert far["metric"].item() == pytest.approx(_margin(CALM_VA, ANGRY_VA) - _chord(0.35), abs=1e-5)
    assert far["loss"] > close["loss"]


def test_metric_term_sends_gradients_to_the_embeddings():
    emb = _unit(0.0, 0.4, 0.2).requires_grad_()
    out = EmotionMetricLoss()(F.normalize(emb, dim=1), torch.zeros(3, 8), torch.tensor([ANGRY, ANGRY, CALM]))
    out["loss"].backward()
    assert emb.grad.abs().sum() > 0
