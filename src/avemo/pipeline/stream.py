"""A long video cut into windows in one streaming pass: each window as a clip of that length would be cut.

A window of ``window`` seconds starts every ``hop`` seconds; each is cut as a clip of that length would be, by
the same function (:func:`avemo.pipeline.prepare.cut_clip`: 6 snippets x 16 frames at evenly spaced
instants, the crop, the spectrogram of the window's own samples in 6 segments centred on the snippets).
PyAV decodes the file once. Memory does not grow with the video's length: a decoded frame is kept only if
some window shows it (it is on screen at one of that window's instants), and only until the windows that
show it are done; the soundtrack is kept from the earliest pending window on.
"""

from __future__ import annotations

import math
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import av
import numpy as np
import torch

from avemo.errors import AvemoError
from avemo.pipeline.decode import SHORTFALL, ClipError, describe_error, mono_resampler, open_media
from avemo.pipeline.face import CropBox
from avemo.pipeline.prepare import crop_box, cut_clip, detection_frames
from avemo.pipeline.video import snippet_windows
from avemo.spec import AudioConfig, VideoConfig

# Video may run this far ahead of the soundtrack (muxers interleave loosely) before missing sound counts as
# silence; without a limit a soundtrack that ends early would make every later frame wait for it.
AUDIO_SLACK = 2.0

T = TypeVar("T")
_END = object()


class StreamError(AvemoError):
    """A video the stream cannot read at all; the message names it and says what to do."""


@dataclass
class PreparedWindow:
    """A window cut and ready for the backbones (``video`` None: it failed, ``error`` says why)."""

    start: float
    end: float
    video: torch.Tensor | None = None  # (S, 3, F, size, size) uint8
    audio: torch.Tensor | None = None  # (S, freq_bins, segment_frames); None without a soundtrack
    box: CropBox | None = None
    error: str = ""
    # Per snippet, what its input is cut from: the times of its frames and its region. Two snippets with the
    # same key are the same pixels, so a snippet the previous windows already showed need not run again.
    keys: list[tuple] | None = None


def _steady(before: CropBox | None, now: CropBox) -> bool:
    """Whether ``now`` is the still face ``before`` was, moved by less than a twentieth of its side (the
    medians of two overlapping windows' detections differ by a pixel or two)."""
    if before is None or before.track is not None or now.track is not None or before.source != now.source:
        return False
    return (abs(before.x - now.x) <= before.width / 20 and abs(before.y - now.y) <= before.width / 20
            and abs(before.width - now.width) <= before.width / 20)


def _instants(video: VideoConfig, window: float) -> np.ndarray:
    """(S, F) instants of a window, in seconds from its start: exactly those ``sample_indices`` uses for a
    clip of that length."""
    start, end = snippet_windows(window, video.snippets).T
    return start[:, None] + (end - start)[:, None] * ((np.arange(video.frames) + 0.5) / video.frames)[None, :]


def _first_window(t: float, window: float, hop: float) -> int:
    """The first window that may still show something at time ``t`` (its end lies after ``t``)."""
    return max(0, math.floor((t - window) / hop) + 1)


class WindowStream:
    """One pass over the file: yields each window, ready or failed, in order."""

    def __init__(self, path: Path, video: VideoConfig, audio: AudioConfig, window: float, hop: float,
                 want_audio: bool, skip: int = 0, last_box: CropBox | None = None) -> None:
        self.path, self.video, self.audio, self.window, self.hop = path, video, audio, window, hop
        self.want_audio = want_audio
        # Resuming: the first ``skip`` windows are done (the file is decoded, but they are neither cut nor
        # yielded); ``last_box`` is the last one's face box, which the next keeps while the face holds still.
        self.skip = skip
        self.offsets = _instants(video, window)
        # The face detector looks at each snippet's middle frame, one of those shown, as in prepare_file; a new
        # video has no landmark file: a landmarks run's window is found by the detector, as predict does.
        self.shown = self.offsets.reshape(-1)
        self.last_box = last_box  # the previous window's face box, kept while the face holds still
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

    # -- frames -------------------------------------------------------------------------------------------

    def _shows(self, earlier: float, later: float) -> bool:
        """Whether a frame on screen from ``earlier`` to ``later`` (seconds) is shown at some window's instant."""
        first = max(self.skip, _first_window(earlier, self.window, self.hop))
        for k in range(first, math.floor(later / self.hop) + 1):
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

    def _cut(self, k: int, t0: float, coded: tuple[int, int], has_audio: bool) -> PreparedWindow:
        start = k * self.hop
        end = start + self.window
        hit = [t for t in self.damaged if start <= t < end]
        if hit:
            return PreparedWindow(start, end, error=f"video decoding failed near {hit[0]:.1f} s")
        if not self.kept_times:
            return PreparedWindow(start, end, error="no video frames decoded")
        index = np.searchsorted(self.kept_times, start + self.shown, side="right") - 1
        index = index.clip(0, len(self.kept_times) - 1)
        used, inverse = np.unique(index, return_inverse=True)
        frames = np.stack([self.kept_frames[i] for i in used])
        index = inverse.reshape(self.offsets.shape)
        samples = torch.from_numpy(self._samples(start, end, t0)) if has_audio else None
        centres = snippet_windows(self.window, self.video.snippets).mean(axis=1)
        box = None
        if self.video.crop_mode.uses_detector:
            box = crop_box(self.video, [frames[i] for i in detection_frames(index)], coded)
            if _steady(self.last_box, box):  # the same still face as the window before: keep its box exactly
                box = self.last_box
            self.last_box = box
        try:
            clip, segs, box = cut_clip(self.video, self.audio, frames, index, coded, samples, centres, self.path,
                                       box)
        except ClipError as err:  # its box stays with it: the next window's still-face check started from it
            return PreparedWindow(start, end, box=box, error=f"{err.reason}; {err.hint}" if err.hint else err.reason)
        times = np.asarray(self.kept_times)[used][index]
        regions = box.snippet_boxes(len(index)) if not self.video.crop_mode.fixed else [None] * len(index)
        keys = [(tuple(np.round(t, 6)), area) for t, area in zip(times.tolist(), regions)]
        return PreparedWindow(start, end, clip, segs, box, keys=keys)

    def windows(self, on_total: Callable[[int], None] | None = None) -> Iterator[PreparedWindow]:
        with open_media(self.path) as container:
            if not container.streams.video:
                raise StreamError(f"{self.path}: no video stream (or the file is truncated); copy it again")
            vstream = container.streams.video[0]
            if vstream.codec_context is None or not vstream.codec_context.width:
                raise StreamError(f"{self.path}: unreadable video stream (corrupt or truncated); copy it again")
            vstream.thread_type = "AUTO"
            astream = container.streams.audio[0] if container.streams.audio and self.want_audio else None
            coded = (vstream.codec_context.width, vstream.codec_context.height)
            width, height = self.video.decode_size(*coded)
            rate = float(vstream.average_rate or 30)
            declared = (float(vstream.duration * vstream.time_base) if vstream.duration and vstream.time_base
                        else container.duration / av.time_base if container.duration else None)
            if on_total is not None and declared:
                on_total(max(0, math.floor((declared - self.window) / self.hop + 1e-6) + 1))
            resampler = mono_resampler(self.sr)
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
                    stopped = describe_error(err)
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
                raise StreamError(f"{self.path}: no video frames decoded (corrupt or truncated); copy it again")
            yield from self._ready(t0, coded, astream is not None, latest, final=True)
            if declared and (stopped or declared - latest > SHORTFALL[0] * declared + SHORTFALL[1]):
                why = f"the file is damaged after {latest:.1f} s ({stopped})" if stopped else \
                    f"the frames end at {latest:.1f} s of {declared:.1f} s (truncated?)"
                while self.next_window * self.hop + self.window <= declared + 1e-6:  # windows never reached
                    start = self.next_window * self.hop
                    if self.next_window >= self.skip:
                        yield PreparedWindow(start, start + self.window, error=f"not decoded: {why}")
                    self.next_window += 1

    def _ready(self, t0: float, coded: tuple[int, int], has_audio: bool, latest: float,
               final: bool) -> Iterator[PreparedWindow]:
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
            if self.next_window >= self.skip:
                yield self._cut(self.next_window, t0, coded, has_audio)
            self.next_window += 1
            self._prune()
            self._trim_audio(t0)


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """``items``, produced by a thread that runs up to ``depth`` items ahead of the consumer: the decoding,
    face finding and cutting of the next windows (mostly in C: PyAV, the detector, NumPy) overlap the
    backbones' work on the current ones. An exception of the producer reaches the consumer in its place (Ctrl-C
    reaches the consumer itself, the main thread); a consumer that stops early stops the producer."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            put(error)
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator stopped early closes its file now
                close()

    worker = threading.Thread(target=produce, name="avemo-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)
