"""What determines a clip's features: one typed object from ``extract`` to ``predict``.

A :class:`FeatureSpec` holds the backbones (architecture, input normalisation, weights by SHA-256 and where
they were read from), how a clip is cut (snippets, frames, size, crop and the face detector), the
spectrogram, and the storage dtype. The cache manifest, a run's ``config.json``, every export manifest and
every TensorRT engine's sidecar store it (``to_json``); the fingerprint is a hash of its identity, which is
everything except where weights files were read from and how they were recognised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from avemo.choices import Crop, Dtype
from avemo.errors import AvemoError
from avemo.engines.backbones import (AUDIO_INPUT, AudioBackbone, AudioFeatures, BackboneConfig, VideoBackbone,
                                    VideoFeatures, build_audio, build_video)
from avemo.engines.weights import RANDOM, Normalization, WeightsSpec
from avemo.pipeline.audio import AudioConfig
from avemo.pipeline.face import FaceDetector
from avemo.pipeline.landmarks import LandmarkSettings
from avemo.pipeline.video import VideoConfig

FEATURES_FORMAT = "avemo-features/1"


class SpecError(AvemoError, ValueError):
    """A stored spec that cannot be read; the message names what is wrong."""


@dataclass(frozen=True)
class FeatureSpec:
    video_backbone: VideoBackbone
    audio_backbone: AudioBackbone
    video: VideoConfig = VideoConfig()
    audio: AudioConfig = AudioConfig()
    face: FaceDetector | None = None  # the detector's settings, for crops "face" and "landmarks" (its fallback)
    dtype: str = Dtype.float16.value
    # crop "landmarks" only: how boxes are read from landmark files (not where the files are: that does not
    # change the features)
    landmarks: LandmarkSettings | None = None

    def __post_init__(self) -> None:
        if (self.face is not None) != (self.video.crop in (Crop.face, Crop.landmarks)):
            raise ValueError("a feature spec holds the face detector's settings exactly when the crop is 'face' or "
                             "'landmarks'")
        if (self.landmarks is not None) != (self.video.crop == Crop.landmarks):
            raise ValueError("a feature spec holds the landmark settings exactly when the crop is 'landmarks'")
        object.__setattr__(self, "dtype", Dtype.check(self.dtype, "dtype"))

    @classmethod
    def of(cls, video_backbone: VideoBackbone, audio_backbone: AudioBackbone, video: VideoConfig,
           audio: AudioConfig, dtype: str, landmarks: LandmarkSettings | None = None) -> FeatureSpec:
        """The spec of features made by these backbones and settings on this installation (``landmarks``:
        for crop "landmarks", its settings; the defaults when not given)."""
        face = FaceDetector.current() if video.crop in (Crop.face, Crop.landmarks) else None
        if video.crop == Crop.landmarks:
            landmarks = landmarks or LandmarkSettings()
        else:
            landmarks = None
        return cls(video_backbone, audio_backbone, video, audio, face, dtype, landmarks)

    # -- identity ---------------------------------------------------------------------------------------

    def fingerprint_inputs(self) -> dict[str, Any]:
        """The identity in the layout the fingerprint has hashed since the first cache format.

        Kept byte for byte so that caches and their entries written before this class existed keep their
        fingerprints: the centre crop is left out (it was the only crop then) and the face detector's
        settings sit inside ``video``.
        """
        video: dict[str, Any] = asdict(self.video)
        if video["crop"] == Crop.center:
            del video["crop"]
        if self.face is not None:
            video["face"] = asdict(self.face)
        if self.landmarks is not None:
            video["landmarks"] = asdict(self.landmarks)
        vb, ab = self.video_backbone, self.audio_backbone
        return {
            "backbones": {
                "video": {"arch": vb.arch, "weights_sha256": vb.weights.sha256, "normalization": asdict(vb.normalization)},
                "audio": {"arch": ab.arch, "weights_sha256": ab.weights.sha256, "input": ab.input},
            },
            "video": video, "audio": asdict(self.audio), "features": FEATURES_FORMAT,
        }

    @property
    def fingerprint(self) -> str:
        """Short stable hash of the identity: equal fingerprints, features equal up to float rounding."""
        text = json.dumps({"inputs": self.fingerprint_inputs(), "dtype": self.dtype}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        """``to_json`` without what does not change the features (where the weights were read from)."""
        data = self.to_json()
        for name in ("video", "audio"):
            weights = data["backbones"][name]["weights"]
            data["backbones"][name]["weights"] = {"sha256": weights["sha256"]}
        return data

    def differences(self, other: FeatureSpec, within: tuple[str, ...] = ()) -> list[str]:
        """Dotted names of the settings in which ``other`` would make other features (``within``: only
        those under these names)."""
        names = differing_keys(self.identity(), other.identity())
        return [n for n in names if not within or any(n == w or n.startswith(w + ".") for w in within)]

    # -- graphs ---------------------------------------------------------------------------------------

    def graph_scope(self, kind: str) -> tuple[str, ...]:
        """The settings an exported graph of ``kind`` (video or audio) depends on: its backbone and its input."""
        if kind == "video":
            return "backbones.video", "video.frames", "video.size"
        return "backbones.audio", "audio.freq_bins", "audio.segment_frames"

    # -- JSON -----------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        vb, ab = self.video_backbone, self.audio_backbone
        data = {
            "format": FEATURES_FORMAT,
            "backbones": {
                "video": {"arch": vb.arch, "weights": asdict(vb.weights), "normalization": asdict(vb.normalization)},
                "audio": {"arch": ab.arch, "weights": asdict(ab.weights), "input": ab.input},
            },
            "video": asdict(self.video),
            "face": asdict(self.face) if self.face is not None else None,
            "audio": asdict(self.audio),
            "dtype": self.dtype,
        }
        if self.landmarks is not None:  # only then: specs stored before landmarks existed read as they did
            data["landmarks"] = asdict(self.landmarks)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSpec:
        """The spec ``to_json`` wrote; raise ``SpecError`` naming what is missing or malformed."""
        try:
            if data.get("format") != FEATURES_FORMAT:
                raise SpecError(f"feature spec format {data.get('format')!r}, this avemo reads {FEATURES_FORMAT}")
            video_b, audio_b = data["backbones"]["video"], data["backbones"]["audio"]
            norm = video_b["normalization"]
            return cls(
                video_backbone=VideoBackbone(video_b["arch"], WeightsSpec(**video_b["weights"]),
                                             Normalization(norm["name"], norm["scale"], tuple(norm["mean"]),
                                                           tuple(norm["std"]))),
                audio_backbone=AudioBackbone(WeightsSpec(**audio_b["weights"]), audio_b["arch"], audio_b["input"]),
                video=VideoConfig(**data["video"]),
                audio=AudioConfig(**data["audio"]),
                face=FaceDetector(**data["face"]) if data.get("face") is not None else None,
                dtype=data["dtype"],
                landmarks=LandmarkSettings(**data["landmarks"]) if data.get("landmarks") is not None else None,
            )
        except SpecError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SpecError(f"malformed feature spec ({type(err).__name__}: {err})") from None

    @classmethod
    def from_fingerprint_inputs(cls, inputs: dict[str, Any], dtype: str) -> FeatureSpec:
        """A spec from the ``inputs`` that manifests and runs recorded before specs existed.

        Where the weights were read from was not recorded: ``predict`` then asks for the files.
        """
        try:
            video = dict(inputs["video"])
            face = video.pop("face", None)
            landmarks = video.pop("landmarks", None)
            video.setdefault("crop", Crop.center.value)
            video_b, audio_b = inputs["backbones"]["video"], inputs["backbones"]["audio"]
            norm = video_b["normalization"]

            def weights(sha: str) -> WeightsSpec:
                return WeightsSpec(sha, RANDOM if sha.startswith("random-seed-") else "file")

            return cls(
                video_backbone=VideoBackbone(video_b["arch"], weights(video_b["weights_sha256"]),
                                             Normalization(norm["name"], norm["scale"], tuple(norm["mean"]),
                                                           tuple(norm["std"]))),
                audio_backbone=AudioBackbone(weights(audio_b["weights_sha256"]), audio_b["arch"],
                                             audio_b.get("input", AUDIO_INPUT)),
                video=VideoConfig(**video), audio=AudioConfig(**inputs["audio"]),
                face=FaceDetector(**face) if face is not None else None, dtype=dtype,
                landmarks=LandmarkSettings(**landmarks) if landmarks is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SpecError(f"malformed fingerprint inputs ({type(err).__name__}: {err})") from None

    # -- for people and for rebuilding the backbones --------------------------------------------------------

    def backbone_config(self, video_weights: str | None = None, audio_weights: str | None = None) -> BackboneConfig:
        """The ``BackboneConfig`` that rebuilds these backbones, from the recorded files unless others are given."""
        def source(weights: WeightsSpec, given: str | None) -> str:
            return given if given is not None else RANDOM if weights.random else (weights.path or "")

        vb, ab = self.video_backbone, self.audio_backbone
        return BackboneConfig(video_weights=source(vb.weights, video_weights), video_arch=vb.arch,
                              video_normalization=vb.normalization.name,
                              audio_weights=source(ab.weights, audio_weights))

    def with_weights_paths(self, other: FeatureSpec) -> FeatureSpec:
        """This spec with where ``other`` read the same weights from (their identity is unchanged)."""
        return replace(self, video_backbone=replace(self.video_backbone, weights=other.video_backbone.weights),
                       audio_backbone=replace(self.audio_backbone, weights=other.audio_backbone.weights))

    def summary(self) -> list[tuple[str, str]]:
        """(setting, value) rows in words, for ``avemo inspect``."""
        vb, ab, v = self.video_backbone, self.audio_backbone, self.video
        crop = v.crop + (f" (scikit-image {self.face.skimage} LBP cascade, margin {self.face.margin})"
                         if self.face is not None and self.landmarks is None else "")
        if self.landmarks is not None:
            crop += (f" ({self.landmarks.format} files, frames with confidence >= {self.landmarks.min_confidence}, "
                     f"margin {self.landmarks.margin}; else scikit-image {self.face.skimage} LBP cascade)")
        return [
            ("video backbone", f"{vb.arch}, {vb.normalization.name} input"),
            ("video weights", vb.weights.describe()),
            ("audio backbone", f"{ab.arch}, log spectrogram {self.audio.freq_bins} bins"),
            ("audio weights", ab.weights.describe()),
            ("clip", f"{v.snippets} snippets x {v.frames} frames, {v.size} x {v.size} pixels"),
            ("crop", crop),
            ("dtype", self.dtype),
            ("fingerprint", self.fingerprint),
        ]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted names of the settings that differ between two nested mappings (as stored in JSON).

    A group of settings present on one side only (e.g. the face detector's, with ``--crop face``) is named
    once, not setting by setting, so the names that matter are not crowded out of a one-line message.
    """
    a, b = _flatten(json.loads(json.dumps(old))), _flatten(json.loads(json.dumps(new)))
    names = set()
    for key in a.keys() | b.keys():
        if a.get(key) == b.get(key):
            continue
        parts = key.split(".")
        for depth in range(1, len(parts)):  # shorten to the first level missing (or null) on one side
            prefix = ".".join(parts[:depth])
            if not any(k.startswith(prefix + ".") for k in a) or not any(k.startswith(prefix + ".") for k in b):
                key = prefix
                break
        names.add(key)
    return sorted(names)



def build_backbones(config: BackboneConfig, video: VideoConfig = VideoConfig(), audio: AudioConfig = AudioConfig(),
                    dtype: str = Dtype.float16.value, landmarks: LandmarkSettings | None = None,
                    ) -> tuple[VideoFeatures, AudioFeatures, FeatureSpec]:
    """Both backbones as ``config`` says, and the spec of the features they make with these settings."""
    video_net, video_backbone = build_video(config)
    audio_net, audio_backbone = build_audio(config)
    return video_net, audio_net, FeatureSpec.of(video_backbone, audio_backbone, video, audio, dtype, landmarks)
