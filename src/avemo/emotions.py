"""The emotion vocabulary, where each emotion sits in valence-arousal space, and the class names of a dataset.

RAVDESS and CREMA-D label ids are indices in ``EMOTIONS`` (RAVDESS order; CREMA-D uses six of them); a
dataset of other labels (``--dataset folders`` or ``manifest``) numbers its sorted labels (``vocabulary``).
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


# Other names people give the same emotions (lower case): CREMA-D's codes, nouns, common variants.
SYNONYMS: dict[str, str] = {
    "neu": "neutral", "neutrality": "neutral",
    "cal": "calm", "relaxed": "calm", "serene": "calm",
    "hap": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy",
    "sadness": "sad",
    "ang": "angry", "anger": "angry", "mad": "angry",
    "fea": "fearful", "fear": "fearful", "afraid": "fearful", "scared": "fearful",
    "dis": "disgust", "disgusted": "disgust",
    "sur": "surprised", "surprise": "surprised",
}


def canonical(label: str) -> str | None:
    """The emotion ``label`` names (case-insensitive, synonyms included), or ``None`` for an unknown label."""
    name = label.strip().lower()
    name = SYNONYMS.get(name, name)
    return name if name in VALENCE_AROUSAL else None


def vocabulary(labels: list[str]) -> list[str]:
    """The class names of a dataset, in label-id order.

    RAVDESS and CREMA-D labels (any of ``EMOTIONS``) keep the full emotion vocabulary, so their label ids are
    the same in every cache and run; any other label set is its sorted distinct labels.
    """
    distinct = set(labels)
    return list(EMOTIONS) if distinct <= set(EMOTIONS) else sorted(distinct)
