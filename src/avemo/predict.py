"""``avemo predict``: videos in, emotions ranked by probability out, through the same pipeline as training.

A run records the feature spec of the cache it was trained on. Prediction rebuilds exactly those backbones
(from the weights files the spec names, checked by SHA-256, or from files given in their place) and cuts
clips as the spec says (crop, size, spectrogram); if the backbones would make other features, it refuses,
naming what differs. Every trained fold votes: their probabilities are averaged.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from avemo.emotions import EMOTIONS
from avemo.errors import AvemoError
from avemo.engines.backbones import AudioFeatures, VideoFeatures
from avemo.engines.runtime import create_backend, resolve_device
from avemo.engines.weights import WeightsSpec
from avemo.fusion.model import FusionModel
from avemo.pipeline.decode import ClipError
from avemo.pipeline.prepare import prepare_file
from avemo.spec import FeatureSpec, SpecError, build_backbones


# Cosine similarities to the class centroids lie in [-1, 1]; scaled like this, their softmax reads as
# probabilities about as sharp as a trained classifier's (a temperature of 0.1, as in supervised contrastive
# learning).
CENTROID_SCALE = 10.0


# Said once per command: the run's crops came from landmark files, which a new video does not have.
LANDMARKS_FALLBACK = ("{run}: was cropped with landmark files; new videos have none, so the face detector finds "
                      "the face (as --crop face does, the centre where it finds none)")


class RunMismatch(AvemoError):
    """The run cannot predict as asked: its weights moved, or the backbones given make other features."""


@dataclass
class Prediction:
    path: Path
    ranked: list[tuple[str, float]] = field(default_factory=list)  # (emotion, probability), best first
    error: str = ""


@dataclass
class FoldModel:
    model: FusionModel
    centroids: torch.Tensor
    use_classifier: bool


def load_fold_models(run: Path) -> list[FoldModel]:
    """The best checkpoint of every trained fold of ``run`` (a damaged one raises ``CheckpointError``)."""
    from avemo.fusion.checkpoint import build_model, load_checkpoint

    models = []
    for path in sorted(run.glob("*/best.pt")):
        checkpoint = load_checkpoint(path, "best")
        model = build_model(checkpoint, path)
        models.append(FoldModel(model.eval(), checkpoint["centroids"], checkpoint["config"]["loss"] != "triplet"))
    if not models:
        raise FileNotFoundError(f"{run}: no trained fold (*/best.pt); run avemo train first")
    return models


def run_spec(run: Path) -> tuple[dict, FeatureSpec]:
    """The run's ``config.json`` and the feature spec of the cache it was trained on."""
    path = run / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run}: no config.json; is this a folder written by avemo train?")
    try:
        record = json.loads(path.read_text())
        if "feature_spec" in record:
            return record, FeatureSpec.from_json(record["feature_spec"])
        # runs written before specs existed recorded the cache's fingerprint inputs
        return record, FeatureSpec.from_fingerprint_inputs(record["cache_inputs"], record["cache_dtype"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, SpecError) as err:
        raise RunMismatch(f"{path}: not a readable avemo run configuration ({type(err).__name__}: {err}); "
                          "train the run again") from None


def class_names(record: dict) -> list[str]:
    """The names of a run's label ids (runs written by avemo 0.1.0 knew the emotions only)."""
    return record.get("class_names", list(EMOTIONS))


def _weights_source(run: Path, kind: str, weights: WeightsSpec, given: str | None) -> str | None:
    """``given``, or None to take the file the spec names, after checking it is still there."""
    if given is not None or weights.random:
        return given
    if weights.path is None or not Path(weights.path).is_file():
        where = f"at {weights.path}" if weights.path else "recorded (the cache predates avemo recording it)"
        raise RunMismatch(f"{run}: the {kind} weights its features were made with (sha256 {weights.sha256[:12]}) "
                          f"are not {where}; pass --{kind}-weights FILE")
    return None


def backbones_for(run: Path, spec: FeatureSpec, video_weights: str | None = None,
                  audio_weights: str | None = None) -> tuple[VideoFeatures, AudioFeatures]:
    """The backbones that make the run's features; raise ``RunMismatch`` naming what would differ."""
    config = spec.backbone_config(_weights_source(run, "video", spec.video_backbone.weights, video_weights),
                                  _weights_source(run, "audio", spec.audio_backbone.weights, audio_weights))
    video_net, audio_net, here = build_backbones(config, spec.video, spec.audio, spec.dtype, spec.landmarks)
    changed = spec.differences(here)
    if "face.skimage" in changed:  # the same cascade in another release: boxes may move by a pixel, no more
        warnings.warn(f"{run}: its faces were found with scikit-image {spec.face.skimage}, this installation has "
                      f"{here.face.skimage}; crops may differ slightly", UserWarning, stacklevel=2)
        changed.remove("face.skimage")
    if changed:
        raise RunMismatch(f"{run}: was trained on features made with other backbones or preprocessing (differs in "
                          f"{', '.join(changed[:6])}); pass the --video-weights and --audio-weights the cache was "
                          "extracted with")
    return video_net, audio_net


def vote(folds: list[FoldModel], video: torch.Tensor, audio: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """(B, len(classes)) probabilities of the run's classes for a batch of features: every fold votes equally."""
    probs = torch.zeros(video.shape[0], len(classes))
    with torch.inference_mode():
        for fold in folds:
            embedding, logits = fold.model(video, audio)
            scores = logits[:, classes] if fold.use_classifier else \
                (embedding @ fold.centroids.T)[:, classes] * CENTROID_SCALE
            probs += torch.softmax(scores, dim=1) / len(folds)
    return probs


def predict_files(paths: list[Path], run: Path, video_weights: str | None = None, audio_weights: str | None = None,
                  device: str = "auto") -> list[Prediction]:
    """Ranked emotions for each file; a file that cannot be read gets its error, the others go on.

    The weights default to the files the run's spec names; ``video_weights``/``audio_weights`` replace them
    (a moved file), and are verified as they would be.
    """
    record, spec = run_spec(run)
    folds = load_fold_models(run)
    video_net, audio_net = backbones_for(run, spec, video_weights, audio_weights)
    backend = create_backend("auto", video_net, audio_net, resolve_device(device))
    classes = torch.tensor(record["classes"])
    names = class_names(record)
    dtype = getattr(torch, spec.dtype)
    if spec.video.crop == "landmarks":
        warnings.warn(LANDMARKS_FALLBACK.format(run=run), UserWarning, stacklevel=2)
    results = []
    for path in paths:
        try:
            frames, segments, _, _, _ = prepare_file(path, spec.video, spec.audio)
        except ClipError as err:
            results.append(Prediction(path, error=f"{err.reason}; {err.hint}" if err.hint else err.reason))
            continue
        video = backend.video(frames).to(dtype).unsqueeze(0)  # as cached: the model was trained on these
        audio = backend.audio(segments).to(dtype).unsqueeze(0)
        if not (torch.isfinite(video).all() and torch.isfinite(audio).all()):
            results.append(Prediction(path, error=f"features are not finite in {spec.dtype}"))
            continue
        probs = vote(folds, video, audio, classes)[0]
        order = probs.argsort(descending=True)
        results.append(Prediction(path, ranked=[(names[int(classes[i])], float(probs[i])) for i in order]))
    return results
