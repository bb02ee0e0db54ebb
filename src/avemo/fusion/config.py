"""The settings of a training run and of the fusion model: typed, validated, saved with the run.

Kept free of torch so that the CLI can show their defaults in ``--help`` without loading it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from avemo.choices import Loss, Modality, Protocol


@dataclass(frozen=True)
class FusionConfig:
    """Model shape and ablation switches."""

    dim: int = 256  # width after the input projections
    heads: int = 4
    embed_dim: int = 128
    dropout: float = 0.1
    modality: str = Modality.both.value  # ablations: "video" or "audio" alone
    cross_attention: bool = True  # ablation: fuse by concatenation only
    num_classes: int = 8
    video_channels: int = 2048
    video_positions: int = 16
    audio_channels: int = 512
    snippets: int = 6

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")
        object.__setattr__(self, "modality", Modality.check(self.modality, "modality"))


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved into the run as ``config.json``."""

    epochs: int = 40
    # 64 clips per step with the learning rate scaled by sqrt(64/32) from the earlier 32 / 3e-4: the same
    # learning curve per epoch in half the steps (a step's fixed cost dominates small batches on a CPU).
    batch_size: int = 64
    lr: float = 4.2e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    patience: int = 8  # epochs without a better validation UAR before stopping
    loss: str = Loss.emotion_metric.value  # or "triplet" (the seed's)
    metric_weight: float = 1.0
    margin: float = 0.1  # m0, and the triplet loss's margin
    margin_scale: float = 0.4  # m1: extra margin for the most distant emotions
    seed: int = 0
    protocol: str = Protocol.actors.value  # or "random-clips" (the seed's leaky split, for comparison only)
    n_folds: int | None = None  # default: 6 for RAVDESS, 5 for CREMA-D
    folds: list[int] | None = None  # 1-based folds to run; default all
    actor_folds: list[dict[str, list[int]]] | None = None  # explicit [{"test": [...], "val": [...]}, ...]
    model: FusionConfig = field(default_factory=FusionConfig)

    def __post_init__(self) -> None:
        """Refuse settings that cannot train, before a run folder is written."""
        self.loss = Loss.check(self.loss, "loss")
        self.protocol = Protocol.check(self.protocol, "protocol")
        checks = [(self.epochs >= 1, "epochs must be at least 1"),
                  (self.batch_size >= 2, "batch_size must be at least 2 (triplets need two clips of an emotion)"),
                  (self.patience >= 1, "patience must be at least 1"), (self.lr > 0, "lr must be positive")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a (TOML or JSON) mapping; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        data = dict(data)
        model = data.pop("model", {})
        unknown_model = set(model) - {f.name for f in fields(FusionConfig)}
        if unknown_model:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown_model))}")
        return cls(**data, model=FusionConfig(**model))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
