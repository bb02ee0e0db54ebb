"""Every fixed set of values a user chooses from, one Enum each: the CLI lists them in ``--help`` and the
configuration dataclasses validate against the same Enum. Kept free of heavy imports so ``avemo --help``
starts without loading torch.

Configurations store the plain string (``Crop.face.value``), so JSON files and fingerprints read as text.
"""

from __future__ import annotations

from enum import Enum

from avemo.errors import AvemoError


class ChoiceError(AvemoError, ValueError):
    """A value that is none of an option's choices (also a ``ValueError``, as it was)."""


class Choice(str, Enum):
    """A str Enum whose values read as plain text in messages."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def check(cls, value: str, what: str) -> str:
        """``value`` as a plain string, or ``ChoiceError`` naming the choices."""
        names = [c.value for c in cls]
        if value not in names:
            raise ChoiceError(f"{what} {value!r}: choose {', '.join(names)}")
        return str(value)


class Dataset(Choice):
    """Where clips and their labels come from."""

    ravdess = "ravdess"  # RAVDESS file names
    cremad = "cremad"  # CREMA-D file names
    folders = "folders"  # DATA/<label>/*.mp4, speakers from --speaker-pattern
    manifest = "manifest"  # a CSV or JSONL of path,label,speaker (--manifest FILE)


class Source(Choice):
    """What ``avemo fetch`` downloads."""

    ravdess = "ravdess"  # the RAVDESS audio-visual zips from Zenodo (and its landmarks on request)
    cremad = "cremad"  # CREMA-D's clips and sound from its Git LFS repository on GitHub
    weights = "weights"  # the backbones' pretrained weights (Hara et al.'s Google Drive, torchvision)


class Benchmark(Choice):
    """A dataset with published results that ``avemo reproduce`` knows."""

    ravdess = "ravdess"
    cremad = "cremad"


class VideoRelease(Choice):
    """Which of Hara et al.'s Kinetics 3D ResNet-101 checkpoints ``avemo fetch weights`` takes."""

    hara2017 = "hara2017"  # resnet-101-kinetics.pth, Kinetics-400 (the paper's)
    hara2020_k700 = "hara2020-k700"  # r3d101_K_200ep.pth, Kinetics-700
    hara2020_km = "hara2020-km"  # r3d101_KM_200ep.pth, Kinetics-700 + Moments in Time
    none = "none"


class AudioRelease(Choice):
    """Which ResNet-18 ``avemo fetch weights`` takes."""

    imagenet = "imagenet"  # torchvision's resnet18-f37072fd.pth
    none = "none"


class Crop(Choice):
    """Which region of the frame the snippets show, and how it is found.

    Code that cuts clips asks the crop (``uses_detector``, ``reads_landmarks``, ``fixed``, ``decode_size``,
    ``fixed_box``) rather than comparing its name, so that a new crop is described here once.
    """

    face = "face"  # a still box around the detected face (avemo extract's default)
    landmarks = "landmarks"  # a still box around the points of an OpenFace landmark file per clip (--landmarks)
    center = "center"  # what the seed and Hara et al.'s models did: needs no detector
    none = "none"  # the whole frame, squashed

    @property
    def uses_detector(self) -> bool:
        """Whether the face detector may run: face, and landmarks for a clip whose file gives no box (a new
        video has none). Such crops record the detector's settings in their feature spec."""
        return self in (Crop.face, Crop.landmarks)

    @property
    def reads_landmarks(self) -> bool:
        """Whether a clip's box comes from its landmark file, when there is one."""
        return self is Crop.landmarks

    @property
    def fixed(self) -> bool:
        """Whether the box follows from the frame's shape alone (center, none). Frames are then scaled while
        decoding so that only a centre cut of the model's size remains; otherwise each clip's box is found,
        and cut from frames decoded at the detector's scale, then scaled to the model's size."""
        return not self.uses_detector

    def decode_size(self, width: int, height: int, size: int, resize: int, detector_side: int) -> tuple[int, int]:
        """(width, height) frames of ``width`` x ``height`` are scaled to while decoding: cheap, and enough for
        what the crop needs.

        none: ``size`` x ``size`` (squashed); center: the short side at ``resize``, then a centre crop of
        ``size``; face and landmarks: the short side at ``detector_side`` (at least ``resize``), from which the
        clip's box is cut and scaled to ``size``.
        """
        if self is Crop.none:
            return size, size
        if self.uses_detector:
            short = max(detector_side, resize)
            scale = short / min(width, height)
            return max(short, round(width * scale)), max(short, round(height * scale))
        return short_side_to(width, height, resize)

    def fixed_box(self, width: int, height: int, fraction: float) -> tuple[int, int, int, int]:
        """(x, y, width, height) of the box a fixed crop shows of a ``width`` x ``height`` frame.

        none: the whole frame; center: the centred square of ``fraction`` of the short side (what scaling the
        short side to ``resize`` and cropping ``size`` keeps: ``fraction`` = size / resize).
        """
        if self is Crop.none:
            return 0, 0, width, height
        if self is Crop.center:
            side = max(1, round(min(width, height) * fraction))
            return (width - side) // 2, (height - side) // 2, side, side
        raise ValueError(f"crop {self.value!r} finds its box in each clip; it has no fixed box")


def short_side_to(width: int, height: int, short: int) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``short``, keeping the aspect ratio."""
    if width <= height:
        return short, max(short, round(height * short / width))
    return max(short, round(width * short / height)), short


class VideoNormalization(Choice):
    auto = "auto"  # read the release from the checkpoint
    hara2017 = "hara2017"
    hara2020 = "hara2020"


class Dtype(Choice):
    """How features are stored in the cache."""

    float16 = "float16"
    float32 = "float32"


class BackendName(Choice):
    """The runtimes that execute the backbones."""

    auto = "auto"  # on CUDA: tensorrt > onnxruntime-gpu (both need --engines) > torch; on a CPU: torch
    torch = "torch"
    onnxruntime = "onnxruntime"
    tensorrt = "tensorrt"


class Precision(Choice):
    """Arithmetic of the backbones: fp32 anywhere; bf16 with torch; fp16 on CUDA or as an exported graph."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class ExportPrecision(Choice):
    """Precision inside an exported graph (TensorRT 10.12+ takes it from the graph)."""

    fp32 = "fp32"
    fp16 = "fp16"


class DeviceName(Choice):
    auto = "auto"  # CUDA when PyTorch sees a GPU
    cpu = "cpu"
    cuda = "cuda"


class Decoder(Choice):
    """How video frames are decoded."""

    auto = "auto"  # dali on a CUDA device when DALI is installed, else pyav
    pyav = "pyav"
    dali = "dali"


class Codec(Choice):
    """Video codec of synthetic clips."""

    h264 = "h264"  # as RAVDESS
    vp9 = "vp9"  # what DALI's CPU decoder reads


class Faces(Choice):
    """Faces of synthetic clips."""

    drawn = "drawn"
    real = "real"  # a photographed face, to test --crop face


class Loss(Choice):
    emotion_metric = "emotion-metric"  # cross-entropy + triplets with valence-arousal margins (the paper's)
    triplet = "triplet"  # the seed's plain triplet margin loss

    @property
    def trains_classifier(self) -> bool:
        """Whether the classifier head learns; a triplet-only model's head stays untrained, so it predicts by
        the nearest class centroid of its embeddings (training, evaluation and recognition all ask this)."""
        return self is not Loss.triplet

    @property
    def head(self) -> str:
        """The prediction head a model trained with this loss is read by: "classifier" or "centroid"."""
        return "classifier" if self.trains_classifier else "centroid"


class Protocol(Choice):
    actors = "actors"  # actor-independent folds
    random_clips = "random-clips"  # the seed's leaky random clip split, for comparison only


class Modality(Choice):
    both = "both"
    video = "video"  # ablation
    audio = "audio"  # ablation
