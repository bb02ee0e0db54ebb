"""The emotion vocabulary every stage shares, and where each emotion sits in valence-arousal space.

The label id of an emotion is its index in ``EMOTIONS`` (RAVDESS order; CREMA-D uses six of them).
Coordinates follow Russell's circumplex (valence, arousal in [-1, 1]) as commonly placed in affective
computing; they only need to order distances sensibly (calm is near neutral, far from angry), because the
metric loss uses them to scale margins.
"""

from __future__ import annotations

import math

EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "calm": (0.3, -0.4),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.4),
    "angry": (-0.6, 0.8),
    "fearful": (-0.7, 0.6),
    "disgust": (-0.7, 0.2),
    "surprised": (0.3, 0.8),
}


def semantic_distance(a: str, b: str) -> float:
    """Euclidean distance of two emotions in valence-arousal space."""
    (va, aa), (vb, ab) = VALENCE_AROUSAL[a], VALENCE_AROUSAL[b]
    return math.hypot(va - vb, aa - ab)
