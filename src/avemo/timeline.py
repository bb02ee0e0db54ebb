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
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
import torch

from avemo.engines.runtime import create_backend, resolve_device
from avemo.errors import AvemoError
from avemo.files import atomic_write
from avemo.pipeline.audio import AudioConfig
from avemo.pipeline.decode import SHORTFALL, ClipError, _open, _resampler, _why
from avemo.pipeline.face import CropBox
from avemo.pipeline.prepare import audio_segments, crop_box
from avemo.pipeline.video import VideoConfig, region, snippet_windows, snippets_from_frames, snippets_from_region
from avemo.predict import LANDMARKS_FALLBACK, backbones_for, class_names, load_fold_models, run_spec, vote

DEFAULT_WINDOW = 3.0  # seconds, when the run's cache (and so its clip length) cannot be read
# Video may run this far ahead of the soundtrack (muxers interleave loosely) before missing sound counts as
# silence; without a limit a soundtrack that ends early would make every later frame wait for it.
AUDIO_SLACK = 2.0


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


# --- the streaming pass ---------------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """A window cut and ready for the backbones (``video`` None: it failed, ``error`` says why)."""

    start: float
    end: float
    video: torch.Tensor | None = None  # (S, 3, F, size, size) uint8
    audio: torch.Tensor | None = None  # (S, freq_bins, segment_frames); None without a soundtrack
    box: CropBox | None = None
    error: str = ""


def _instants(video: VideoConfig, window: float) -> np.ndarray:
    """(S, F) instants of a window, in seconds from its start: exactly those ``sample_indices`` uses for a
    clip of that length."""
    start, end = snippet_windows(window, video.snippets).T
    return start[:, None] + (end - start)[:, None] * ((np.arange(video.frames) + 0.5) / video.frames)[None, :]


def _first_window(t: float, window: float, hop: float) -> int:
    """The first window that may still show something at time ``t`` (its end lies after ``t``)."""
    return max(0, math.floor((t - window) / hop) + 1)


class _Stream:
    """One pass over the file: yields each window, ready or failed, in order."""

    def __init__(self, path: Path, video: VideoConfig, audio: AudioConfig, window: float, hop: float,
                 want_audio: bool) -> None:
        self.path, self.video, self.audio, self.window, self.hop = path, video, audio, window, hop
        self.want_audio = want_audio
        self.offsets = _instants(video, window)
        # The face detector looks at the frames on screen at the window's start, middle and end, as
        # prepare_file looks at a clip's first, middle and last frames.
        self.detect_at = np.array([0.0, window / 2, window * (1 - 1e-6)])
        self.shown = np.concatenate([self.offsets.reshape(-1), self.detect_at if self._detects() else []])
        self.kept_times: list[float] = []
        self.kept_frames: list[np.ndarray] = []
        self.next_window = 0
        self.damaged: list[float] = []  # times (s) near which video packets failed to decode
        self.chunks: list[np.ndarray] = []  # soundtrack from sample ``audio_base`` on (the audio's own count)
        self.audio_base = 0
        self.audio_start: float | None = None  # time of the first audio sample, in the container's clock
        self.audio_done = False
        self.sr = audio.sample_rate
        self.peak_frames = 0  # the most frames held at once (tests check it stays bounded)

    def _detects(self) -> bool:
        # a new video has no landmark file: a landmarks run's window is found by the detector, as predict does
        return self.video.crop in ("face", "landmarks")

    # -- frames -------------------------------------------------------------------------------------------

    def _shows(self, earlier: float, later: float) -> bool:
        """Whether a frame on screen from ``earlier`` to ``later`` (seconds) is shown at some window's instant."""
        for k in range(_first_window(earlier, self.window, self.hop), math.floor(later / self.hop) + 1):
            instants = k * self.hop + self.shown
            if np.any((instants >= earlier) & (instants < later)):
                return True
        return False

    def _keep(self, t: float, frame: np.ndarray) -> None:
        self.kept_times.append(t)
        self.kept_frames.append(frame)
        self.peak_frames = max(self.peak_frames, len(self.kept_frames))

    def _prune(self) -> None:
        """Drop frames no pending window shows: those before the one on screen at its first instant."""
        first = self.next_window * self.hop + float(self.shown.min())
        drop = int(np.searchsorted(self.kept_times, first, side="right")) - 1
        if drop > 0:
            del self.kept_times[:drop], self.kept_frames[:drop]

    # -- sound --------------------------------------------------------------------------------------------

    def _audio_end(self, t0: float) -> float:
        """Seconds of the video's clock up to which the soundtrack has arrived."""
        if self.audio_start is None:
            return -math.inf
        return self.audio_start - t0 + (self.audio_base + sum(len(c) for c in self.chunks)) / self.sr

    def _samples(self, start: float, end: float, t0: float) -> np.ndarray:
        """The soundtrack from ``start`` to ``end`` (seconds of the video's clock), silence where there is none;
        sample 0 of the video's clock is its first frame, as ``decode_clip`` aligns it."""
        count = round((end - start) * self.sr)
        out = np.zeros(count, np.float32)
        if self.audio_start is None or not self.chunks:
            return out
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        have = self.chunks[0]
        shift = round((self.audio_start - t0) * self.sr)  # video-clock sample r is audio sample r - shift
        first = round(start * self.sr) - shift - self.audio_base
        lo, hi = max(first, 0), min(first + count, len(have))
        if hi > lo:
            out[lo - first:hi - first] = have[lo:hi]
        return out

    def _trim_audio(self, t0: float) -> None:
        if self.audio_start is None or not self.chunks:
            return
        shift = round((self.audio_start - t0) * self.sr)
        needed = round(self.next_window * self.hop * self.sr) - shift - self.audio_base
        if needed > 0:
            have = np.concatenate(self.chunks)
            needed = min(needed, len(have))
            self.chunks, self.audio_base = [have[needed:]], self.audio_base + needed

    # -- windows ------------------------------------------------------------------------------------------

    def _cut(self, k: int, t0: float, coded: tuple[int, int], has_audio: bool) -> _Prepared:
        start = k * self.hop
        end = start + self.window
        hit = [t for t in self.damaged if start <= t < end]
        if hit:
            return _Prepared(start, end, error=f"video decoding failed near {hit[0]:.1f} s")
        if not self.kept_times:
            return _Prepared(start, end, error="no video frames decoded")
        index = np.searchsorted(self.kept_times, start + self.shown, side="right") - 1
        index = index.clip(0, len(self.kept_times) - 1)
        used, inverse = np.unique(index, return_inverse=True)
        frames = np.stack([self.kept_frames[i] for i in used])
        picks, index = inverse[self.offsets.size:], inverse[:self.offsets.size].reshape(self.offsets.shape)
        try:
            if self._detects():
                box = crop_box(self.video, [frames[i] for i in picks], coded)
                clip = snippets_from_region(frames, index, region(self.video, coded, box.as_list()), self.video.size)
            else:
                box = crop_box(self.video, [], coded)
                clip = snippets_from_frames(frames, index, self.video.size)
            segs = None
            if has_audio:
                centres = snippet_windows(self.window, self.video.snippets).mean(axis=1)
                samples = torch.from_numpy(self._samples(start, end, t0))
                segs = audio_segments(samples, centres, self.audio, self.path)
        except ClipError as err:
            return _Prepared(start, end, error=f"{err.reason}; {err.hint}" if err.hint else err.reason)
        return _Prepared(start, end, clip, segs, box)

    def windows(self, on_total: Callable[[int], None] | None = None) -> Iterator[_Prepared]:
        with _open(self.path) as container:
            if not container.streams.video:
                raise TimelineError(f"{self.path}: no video stream (or the file is truncated); copy it again")
            vstream = container.streams.video[0]
            if vstream.codec_context is None or not vstream.codec_context.width:
                raise TimelineError(f"{self.path}: unreadable video stream (corrupt or truncated); copy it again")
            vstream.thread_type = "AUTO"
            astream = container.streams.audio[0] if container.streams.audio and self.want_audio else None
            coded = (vstream.codec_context.width, vstream.codec_context.height)
            width, height = self.video.decode_size(*coded)
            rate = float(vstream.average_rate or 30)
            declared = (float(vstream.duration * vstream.time_base) if vstream.duration and vstream.time_base
                        else container.duration / av.time_base if container.duration else None)
            if on_total is not None and declared:
                on_total(max(0, math.floor((declared - self.window) / self.hop + 1e-6) + 1))
            resampler = _resampler(self.sr)
            t0: float | None = None
            pending: tuple[float, np.ndarray] | None = None  # the latest frame: kept or not once the next comes
            latest, step = -math.inf, 1.0 / rate
            stopped = ""
            packets = container.demux(*[s for s in (vstream, astream) if s is not None])
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    break
                except av.error.FFmpegError as err:  # the container itself is damaged from here on
                    stopped = _why(err)
                    break
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    if packet.stream is vstream and t0 is not None:
                        when = float(packet.pts * vstream.time_base) - t0 if packet.pts is not None else latest
                        self.damaged.append(max(when, latest))
                    continue
                for frame in decoded:
                    if isinstance(frame, av.VideoFrame):
                        time = frame.time if frame.time is not None else (latest + step if t0 is not None else 0.0)
                        if t0 is None:
                            t0 = time
                        t = time - t0
                        if t <= latest:  # out of order or repeated: the stream's clock is what windows follow
                            continue
                        if pending is not None:
                            step = t - pending[0]
                            if self._shows(pending[0], t):
                                self._keep(*pending)
                        pending, latest = (t, frame.to_ndarray(width=width, height=height, format="rgb24")), t
                    else:
                        if self.audio_start is None and frame.time is not None:
                            self.audio_start = frame.time
                        self.chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
                if t0 is None:
                    continue
                yield from self._ready(t0, coded, astream is not None, latest, final=False)
            if astream is not None:
                self.chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
            self.audio_done = True
            if pending is not None:
                self._keep(*pending)
                latest = pending[0] + step  # the last frame stays on screen for one frame's time
            if t0 is None:
                raise TimelineError(f"{self.path}: no video frames decoded (corrupt or truncated); copy it again")
            yield from self._ready(t0, coded, astream is not None, latest, final=True)
            if declared and (stopped or declared - latest > SHORTFALL[0] * declared + SHORTFALL[1]):
                why = f"the file is damaged after {latest:.1f} s ({stopped})" if stopped else \
                    f"the frames end at {latest:.1f} s of {declared:.1f} s (truncated?)"
                while self.next_window * self.hop + self.window <= declared + 1e-6:  # windows never reached
                    start = self.next_window * self.hop
                    yield _Prepared(start, start + self.window, error=f"not decoded: {why}")
                    self.next_window += 1

    def _ready(self, t0: float, coded: tuple[int, int], has_audio: bool, latest: float,
               final: bool) -> Iterator[_Prepared]:
        """Every window whose frames (and sound) have all arrived; at the end, those inside the video."""
        while True:
            end = self.next_window * self.hop + self.window
            if final:
                if end > latest + 1e-6:
                    return
            else:
                if latest < end:
                    return
                if has_audio and not self.audio_done and self._audio_end(t0) < end and latest < end + AUDIO_SLACK:
                    return
            yield self._cut(self.next_window, t0, coded, has_audio)
            self.next_window += 1
            self._prune()
            self._trim_audio(t0)


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
    with _open(path) as container:
        return bool(container.streams.audio)


def timeline(path: Path, run: Path, config: TimelineConfig = TimelineConfig(),
             on_total: Callable[[int], None] | None = None,
             on_window: Callable[[Window], None] | None = None) -> tuple[Timeline, _Stream]:
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
    stream = _Stream(path, spec.video, spec.audio, window, config.hop, want_audio=has_audio)
    batch: list[_Prepared] = []

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
