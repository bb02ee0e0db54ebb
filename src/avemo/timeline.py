"""``avemo timeline``: emotion over time in a video of any length, with a trained run.

A window of the run's clip length slides over the video in steps of ``hop`` seconds; each window is cut as
the run's clips were (6 snippets x 16 frames at evenly spaced instants, the run's crop, the spectrogram of
the window's own samples in 6 segments centred on the snippets) and every fold of the run votes, as in
``avemo predict``.

The video is decoded in one streaming pass with PyAV. Memory does not grow with the video's length: a
decoded frame is kept only if some window shows it (it is on screen at one of that window's instants), and
only until the windows that show it are done; the soundtrack is kept from the earliest pending window on.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avemo.engines.runtime import create_backend, resolve_device
from avemo.errors import AvemoError
from avemo.files import atomic_write
from avemo.pipeline.decode import ClipError, open_media
from avemo.pipeline.stream import PreparedWindow, WindowStream
from avemo.pipeline.face import CropBox
from avemo.predict import LANDMARKS_FALLBACK, backbones_for, class_names, load_fold_models, run_spec, vote

DEFAULT_WINDOW = 3.0  # seconds, when the run's cache (and so its clip length) cannot be read


class TimelineError(AvemoError):
    """A video or setting the timeline cannot use; the message names it and says what to do."""


@dataclass(frozen=True)
class TimelineConfig:
    window: float | None = None  # seconds; None: the run's clip length (mean of its cache, else DEFAULT_WINDOW)
    hop: float = 1.0
    batch_size: int = 4  # windows per backbone batch
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.window is not None and self.window <= 0:
            raise ValueError(f"--window {self.window}: give a positive number of seconds")
        if self.hop <= 0:
            raise ValueError(f"--hop {self.hop}: give a positive number of seconds")
        if self.batch_size < 1:
            raise ValueError("batch size must be at least 1")


@dataclass
class Window:
    start: float
    end: float
    probabilities: list[float] = field(default_factory=list)  # one per class of the run, in its order
    box: CropBox | None = None
    error: str = ""  # non-empty: this window could not be decoded or prepared


@dataclass
class Timeline:
    path: Path
    classes: list[str]
    window: float
    window_source: str  # where the window length came from, in words
    hop: float
    audio: bool  # False: the video has no soundtrack (a video-only run)
    windows: list[Window] = field(default_factory=list)

    def top(self, w: Window) -> str:
        return self.classes[int(np.argmax(w.probabilities))] if w.probabilities else ""

    def to_json(self) -> dict:
        return {"path": str(self.path), "classes": self.classes, "window": self.window,
                "window_source": self.window_source, "hop": self.hop, "audio": self.audio,
                "windows": [{"start": round(w.start, 3), "end": round(w.end, 3), "top": self.top(w) or None,
                             "probabilities": {c: round(p, 4) for c, p in zip(self.classes, w.probabilities)},
                             "crop": w.box.to_json() if w.box is not None else None, "error": w.error or None}
                            for w in self.windows]}

    def csv_text(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["start", "end", "top", *self.classes, "box_x", "box_y", "box_width", "box_height",
                         "box_source", "error"])
        for w in self.windows:
            probs = [f"{p:.4f}" for p in w.probabilities] or [""] * len(self.classes)
            box = [*w.box.as_list(), w.box.source] if w.box is not None else [""] * 5
            writer.writerow([f"{w.start:.3f}", f"{w.end:.3f}", self.top(w), *probs, *box, w.error])
        return buffer.getvalue()

    def write(self, out: Path) -> list[Path]:
        """``out/timeline.csv``, ``timeline.json`` and ``timeline.png``."""
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "timeline.csv", out / "timeline.json", out / "timeline.png"]
        atomic_write(paths[0], self.csv_text().encode())
        atomic_write(paths[1], json.dumps(self.to_json(), indent=1).encode())
        plot_timeline(self, paths[2])
        return paths


def plot_timeline(timeline: Timeline, path: Path) -> None:
    """Stacked class probabilities over time (window centres), with the top label as a coloured band below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = {c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(timeline.classes)}
    good = [w for w in timeline.windows if w.probabilities]
    fig, (ax, band) = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True,
                                   gridspec_kw={"height_ratios": [5, 1], "hspace": 0.08})
    if good:
        centres = np.array([(w.start + w.end) / 2 for w in good])
        probs = np.array([w.probabilities for w in good]).T
        ax.stackplot(centres, probs, colors=[colours[c] for c in timeline.classes], alpha=0.85,
                     labels=timeline.classes)
    for w in timeline.windows:
        centre = (w.start + w.end) / 2
        span = (centre - timeline.hop / 2, timeline.hop)
        if w.probabilities:
            band.broken_barh([span], (0, 1), facecolors=colours[timeline.top(w)])
        else:  # a window that could not be decoded: grey, hatched, in both panels
            band.broken_barh([span], (0, 1), facecolors="lightgrey", hatch="//", edgecolor="grey")
            ax.axvspan(span[0], span[0] + span[1], color="lightgrey", hatch="//", alpha=0.5)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"{timeline.path.name}: emotion over time ({timeline.window:.1f} s windows every "
                 f"{timeline.hop:g} s" + ("" if timeline.audio else "; no soundtrack, video only") + ")")
    handles = [Patch(color=colours[c], label=c) for c in reversed(timeline.classes)]  # in the stack's order
    if any(not w.probabilities for w in timeline.windows):
        handles.append(Patch(facecolor="lightgrey", hatch="//", edgecolor="grey", label="not decoded"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    band.set_yticks([0.5], ["top label"])
    band.set_ylim(0, 1)
    band.set_xlabel("time (s)")
    if timeline.windows:
        band.set_xlim(timeline.windows[0].start, timeline.windows[-1].end)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# --- the run ---------------------------------------------------------------------------------------------------


def run_clip_seconds(record: dict) -> float | None:
    """The mean duration of the clips the run's cache holds, or None when the cache cannot be read."""
    from avemo.cache import FeatureCache

    try:
        entries, _ = FeatureCache.open(Path(record["cache"])).scan()
        durations = [float(e["duration"]) for e in entries if e.get("duration")]
    except (AvemoError, OSError, KeyError, TypeError, ValueError):
        return None
    return float(np.mean(durations)) if durations else None


def _has_audio(path: Path) -> bool:
    with open_media(path) as container:
        return bool(container.streams.audio)


def timeline(path: Path, run: Path, config: TimelineConfig = TimelineConfig(),
             on_total: Callable[[int], None] | None = None,
             on_window: Callable[[Window], None] | None = None) -> tuple[Timeline, WindowStream]:
    """The run's emotions over ``path``, window by window; a window that fails is marked, the rest go on.

    Raises ``TimelineError`` for a video the run cannot read at all (no soundtrack for an audio-visual run,
    shorter than one window, no video frames) and ``ClipError`` for a file that does not open.
    """
    record, spec = run_spec(run)
    modality = record.get("train", {}).get("model", {}).get("modality", "both")
    try:
        has_audio = _has_audio(path)
    except ClipError as err:
        raise TimelineError(str(err)) from None
    if not has_audio and modality != "video":
        raise TimelineError(f"{path}: has no audio track, and {run} was trained on {modality} (audio and video); "
                            "use the video with its sound, or a run trained with --modality video")
    if config.window is not None:
        window, source = config.window, "--window"
    else:
        seconds = run_clip_seconds(record)
        window, source = (seconds, "the mean clip length of the run's cache") if seconds else \
            (DEFAULT_WINDOW, f"the default (the run's cache at {record.get('cache')} cannot be read)")
    folds = load_fold_models(run)
    video_net, audio_net = backbones_for(run, spec)
    if spec.video.crop == "landmarks":
        warnings.warn(LANDMARKS_FALLBACK.format(run=run), UserWarning, stacklevel=2)
    backend = create_backend("auto", video_net, audio_net, resolve_device(config.device))
    classes = torch.tensor(record["classes"])
    dtype = getattr(torch, spec.dtype)
    names = class_names(record)
    result = Timeline(path, [names[int(c)] for c in classes], window, source, config.hop, has_audio)
    stream = WindowStream(path, spec.video, spec.audio, window, config.hop, want_audio=has_audio)
    batch: list[PreparedWindow] = []

    def flush() -> None:
        if not batch:
            return
        s = spec.video.snippets
        video = backend.video(torch.cat([b.video for b in batch])).to(dtype)
        video = video.view(len(batch), s, *video.shape[1:])
        if has_audio:
            audio = backend.audio(torch.cat([b.audio for b in batch])).to(dtype).view(len(batch), s, -1)
        else:  # a video-only run never reads the audio features; the model takes a tensor all the same
            audio = torch.zeros(len(batch), s, 512, dtype=dtype)
        finite = torch.isfinite(video.flatten(1)).all(1) & torch.isfinite(audio.flatten(1)).all(1)
        probs = vote(folds, video, audio, classes)
        for b, p, ok in zip(batch, probs, finite):
            w = Window(b.start, b.end, [float(x) for x in p], b.box) if ok else \
                Window(b.start, b.end, box=b.box, error=f"features are not finite in {spec.dtype}")
            result.windows.append(w)
            if on_window is not None:
                on_window(w)
        batch.clear()

    for prepared in stream.windows(on_total):
        if prepared.video is None:
            flush()  # keep the windows in time order
            result.windows.append(Window(prepared.start, prepared.end, error=prepared.error))
            if on_window is not None:
                on_window(result.windows[-1])
            continue
        batch.append(prepared)
        if len(batch) >= config.batch_size:
            flush()
    flush()
    if not result.windows:
        raise TimelineError(f"{path}: shorter than one {window:.2f} s window; pass a shorter --window, or use "
                            "avemo predict for a short clip")
    return result, stream
