"""``avemo predict``: videos in, emotions ranked by probability out, through the same pipeline as training.

The run records the fingerprint inputs of the cache it was trained on; the backbones given here must produce
the same features (same weights, architecture, normalisation, preprocessing), or prediction is refused.
Every trained fold votes: their probabilities are averaged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from avemo.cache import differing_keys
from avemo.emotions import EMOTIONS
from avemo.engines.backbones import BackboneConfig, build_audio, build_video, describe
from avemo.engines.runtime import create_backend, resolve_device
from avemo.extract import fingerprint_inputs
from avemo.fusion.model import FusionConfig, FusionModel
from avemo.pipeline.audio import AudioConfig
from avemo.pipeline.decode import ClipError
from avemo.pipeline.prepare import prepare_file
from avemo.pipeline.video import VideoConfig


# Cosine similarities to the class centroids lie in [-1, 1]; scaled like this, their softmax reads as
# probabilities about as sharp as a trained classifier's (a temperature of 0.1, as in supervised contrastive
# learning).
CENTROID_SCALE = 10.0


class RunMismatch(Exception):
    """The backbones given do not make the features the run was trained on."""


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


def predict_files(paths: list[Path], run: Path, video_weights: str, audio_weights: str,
                  device: str = "auto") -> list[Prediction]:
    """Ranked emotions for each file; a file that cannot be read gets its error, the others go on."""
    record = json.loads((run / "config.json").read_text())
    stored = record["cache_inputs"]
    backbones = BackboneConfig(video_weights=video_weights, video_arch=stored["backbones"]["video"]["arch"],
                               video_normalization=stored["backbones"]["video"]["normalization"]["name"],
                               audio_weights=audio_weights)
    video_cfg = VideoConfig(**{"crop": "center", **stored["video"]})  # no crop recorded: centre (see fingerprint_inputs)
    audio_cfg = AudioConfig(**stored["audio"])
    video_net, video_info = build_video(backbones)
    audio_net, audio_info = build_audio(backbones)
    inputs = fingerprint_inputs(describe(backbones, video_net, video_info, audio_info), video_cfg, audio_cfg)
    changed = differing_keys(stored, inputs)
    if changed:
        raise RunMismatch(f"{run}: was trained on features made with other backbones or preprocessing (differs in "
                          f"{', '.join(changed[:6])}); pass the --video-weights and --audio-weights the cache "
                          f"{record['cache']} was extracted with")
    backend = create_backend("auto", video_net, audio_net, resolve_device(device))
    folds = load_fold_models(run)
    classes = torch.tensor(record["classes"])
    dtype = getattr(torch, record["cache_dtype"])
    results = []
    for path in paths:
        try:
            frames, segments, _, _, _ = prepare_file(path, video_cfg, audio_cfg)
        except ClipError as err:
            results.append(Prediction(path, error=f"{err.reason}; {err.hint}" if err.hint else err.reason))
            continue
        video = backend.video(frames).to(dtype).unsqueeze(0)  # as cached: the model was trained on these
        audio = backend.audio(segments).to(dtype).unsqueeze(0)
        if not (torch.isfinite(video).all() and torch.isfinite(audio).all()):
            results.append(Prediction(path, error=f"features are not finite in {record['cache_dtype']}"))
            continue
        probs = torch.zeros(len(classes))
        with torch.no_grad():
            for fold in folds:
                embedding, logits = fold.model(video, audio)
                scores = logits[0, classes] if fold.use_classifier else \
                    (embedding @ fold.centroids.T)[0, classes] * CENTROID_SCALE
                probs += torch.softmax(scores, dim=0) / len(folds)
        order = probs.argsort(descending=True)
        results.append(Prediction(path, ranked=[(EMOTIONS[int(classes[i])], float(probs[i])) for i in order]))
    return results
