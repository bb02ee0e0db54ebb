"""Every fixed set of values a user chooses from, one Enum each: the CLI lists them in ``--help`` and the
configuration dataclasses validate against the same Enum. Kept free of heavy imports so ``avemo --help``
starts without loading torch.

Configurations store the plain string (``Crop.face.value``), so JSON files and fingerprints read as text.
"""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A str Enum whose values read as plain text in messages."""

    def __str__(self) -> str:
        return self.value

    @classmethod
    def check(cls, value: str, what: str) -> str:
        """``value`` as a plain string, or ``ValueError`` naming the choices."""
        names = [c.value for c in cls]
        if value not in names:
            raise ValueError(f"{what} {value!r}: choose {', '.join(names)}")
        return str(value)


class Dataset(Choice):
    """Where clips and their labels come from."""

    ravdess = "ravdess"  # RAVDESS file names
    cremad = "cremad"  # CREMA-D file names
    folders = "folders"  # DATA/<label>/*.mp4, speakers from --speaker-pattern
    manifest = "manifest"  # a CSV or JSONL of path,label,speaker (--manifest FILE)


class Crop(Choice):
    """Which region of the frame the snippets show."""

    face = "face"  # a still box around the detected face (avemo extract's default)
    landmarks = "landmarks"  # a still box around the points of an OpenFace landmark file per clip (--landmarks)
    center = "center"  # what the seed and Hara et al.'s models did: needs no detector
    none = "none"  # the whole frame, squashed


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


class Protocol(Choice):
    actors = "actors"  # actor-independent folds
    random_clips = "random-clips"  # the seed's leaky random clip split, for comparison only


class Modality(Choice):
    both = "both"
    video = "video"  # ablation
    audio = "audio"  # ablation
