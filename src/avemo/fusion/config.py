"""The settings of a training run and of the fusion model: typed, validated, saved with the run.

Kept free of torch so that the CLI can show their defaults in ``--help`` without loading it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

from avemo.choices import Loss, Modality, Protocol
from avemo.errors import AvemoError

# Settings of the model that the command line offers next to the training ones; a file keeps them in [model].
MODEL_OPTIONS = ("modality", "cross_attention", "dim")


class ConfigError(AvemoError, ValueError):
    """Training or model settings that cannot be used; the message names the setting (and the file)."""


def _choice(check, value: str, what: str) -> str:
    try:
        return check(value, what)
    except ValueError as error:
        raise ConfigError(str(error)) from None


@dataclass(frozen=True)
class FusionConfig:
    """Model shape and ablation switches (a run fits the input shapes to its cache's).

    >>> avemo.FusionConfig(dim=64, modality="video").cross_attention
    True
    >>> avemo.FusionConfig(dim=100, heads=3)
    Traceback (most recent call last):
    avemo.fusion.config.ConfigError: dim 100 must be divisible by heads 3
    """

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
            raise ConfigError(f"dim {self.dim} must be divisible by heads {self.heads}")
        object.__setattr__(self, "modality", _choice(Modality.check, self.modality, "modality"))


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
        self.loss = _choice(Loss.check, self.loss, "loss")
        self.protocol = _choice(Protocol.check, self.protocol, "protocol")
        checks = [(self.epochs >= 1, "epochs must be at least 1"),
                  (self.batch_size >= 2, "batch_size must be at least 2 (triplets need two clips of an emotion)"),
                  (self.patience >= 1, "patience must be at least 1"), (self.lr > 0, "lr must be positive")]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a (TOML or JSON) mapping; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training settings: {', '.join(sorted(unknown))}")
        data = dict(data)
        model = data.pop("model", {})
        unknown_model = set(model) - {f.name for f in fields(FusionConfig)}
        if unknown_model:
            raise ConfigError(f"unknown model settings: {', '.join(sorted(unknown_model))}")
        return cls(**data, model=FusionConfig(**model))

    @classmethod
    def from_sources(cls, file: str | PathLike | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """Settings from a TOML or JSON file (``.json`` is read as JSON, anything else as TOML), then the
        ``overrides`` that are not None (the command line's options); ``modality``, ``cross_attention`` and
        ``dim`` are the model's and go under ``model``. Raises :class:`ConfigError` naming the file (or
        "options") and the setting.

        >>> avemo.TrainConfig.from_sources(None, {"epochs": 5, "dim": 64, "lr": None}).model.dim
        64
        """
        source = str(file) if file is not None else "options"
        data: dict[str, Any] = {}
        if file is not None:
            path = Path(file)
            try:
                text = path.read_text()
                data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
            except (OSError, ValueError) as error:  # ValueError: JSON's and TOML's decode errors, bad UTF-8
                raise ConfigError(f"{source}: cannot read the configuration ({' '.join(str(error).split())})") \
                    from None
            if not isinstance(data, dict) or not isinstance(data.get("model", {}), dict):
                raise ConfigError(f"{source}: give a table of settings, with the model's under [model]")
        model = dict(data.pop("model", {}))
        for key, value in (overrides or {}).items():
            if value is not None:
                (model if key in MODEL_OPTIONS else data)[key] = value
        try:
            return cls.from_dict({**data, "model": model})
        except (TypeError, ValueError) as error:  # TypeError: a setting of the wrong type (epochs = "ten")
            raise ConfigError(f"{source}: {' '.join(str(error).split())}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
