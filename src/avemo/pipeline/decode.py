"""One forward pass of PyAV over a clip: every video frame scaled down on the fly, the soundtrack at 16 kHz mono.

No seeking: demuxing both streams once is faster than the seed's per-frame ``CAP_PROP_POS_FRAMES`` seeks,
and keeps variable frame rates honest because every frame carries its own presentation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np

from avemo.spec import VideoConfig


def describe_error(err: Exception) -> str:
    """FFmpeg's own words without the file name it repeats."""
    return getattr(err, "strerror", None) or str(err)


class ClipError(Exception):
    """A clip that cannot be used; ``reason`` is short and stable (for counting), ``hint`` says what to do."""

    def __init__(self, path: Path, reason: str, hint: str = "") -> None:
        self.path, self.reason, self.hint = path, reason, " ".join(hint.split())  # one line, always
        super().__init__(f"{path}: {reason}" + (f"; {hint}" if hint else ""))

    def __reduce__(self):  # travels back from decoding worker processes
        return (ClipError, (self.path, self.reason, self.hint))


@dataclass
class DecodedClip:
    frames: np.ndarray | None  # (K, H, W, 3) uint8 at VideoConfig.decode_size, upright; None: not decoded
    times: np.ndarray  # (N,) presentation times in seconds from the first frame, ascending (every frame)
    duration: float  # seconds covered by the video frames
    samples: np.ndarray  # (M,) float32 mono at ``sample_rate``, sample 0 at the first video frame
    sample_rate: int
    codec: str = ""  # of the video stream, e.g. "h264"
    size: tuple[int, int] = (0, 0)  # (width, height) of the video as displayed (coded, turned upright)
    kept: np.ndarray | None = None  # (K,) which of the N frames ``frames`` holds, ascending; None: all of them
    rotation: int = 0  # degrees counter-clockwise the display matrix turns the coded frames (0, 90, 180, 270)

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Rows of ``frames`` for frame numbers ``index`` (any shape): the frame itself when it was kept, else
        the last kept one before it (only when the decoder delivered other frames than the packets promised)."""
        if self.kept is None:
            return index
        return (np.searchsorted(self.kept, index, side="right") - 1).clip(0, len(self.kept) - 1)


def open_media(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise ClipError(path, "file not found")
    if path.stat().st_size == 0:
        raise ClipError(path, "empty file (0 bytes)", "copy the clip again from the original archive")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise ClipError(path, "cannot open (corrupt, truncated or not a media file)",
                        f"copy the clip again from the original archive [{describe_error(err)}]") from err


def mono_resampler(rate: int) -> av.AudioResampler:
    return av.AudioResampler(format="flt", layout="mono", rate=rate)


def _collect(resampled: list[av.AudioFrame], chunks: list[np.ndarray]) -> None:
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampled)


def decode_audio_file(path: Path, sample_rate: int) -> np.ndarray:
    """The whole soundtrack of ``path`` as float32 mono samples (used for a separate WAV)."""
    with open_media(path) as container:
        if not container.streams.audio:
            raise ClipError(path, "no audio track")
        resampler, chunks = mono_resampler(sample_rate), []
        try:
            for frame in container.decode(audio=0):
                _collect(resampler.resample(frame), chunks)
        except av.error.FFmpegError as err:
            raise ClipError(path, "audio decoding failed (corrupt or truncated)", describe_error(err)) from err
        _collect(resampler.resample(None), chunks)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


TRUNCATED_HINT = "copy the clip again from the original archive"
# Decoded frames may fall short of the declared duration by 10% plus 0.25 s (container durations include
# audio and muxing slack); a truncated clip misses more.
SHORTFALL = (0.1, 0.25)


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def media_seconds(path: Path) -> float | None:
    """The duration the file declares for its video (None when it declares none or cannot be opened)."""
    try:
        with open_media(path) as container:
            if not container.streams.video:
                return None
            return _declared_duration(container, container.streams.video[0])
    except ClipError:
        return None


def _packet_times(path: Path) -> tuple[list[int], np.ndarray, float] | None:
    """(pts, times from the first frame, duration) of the video packets alone (no decoding), computed exactly as
    :func:`decode_clip` computes them from the frames; ``None`` when the packets do not say."""
    pts: list[int] = []
    with open_media(path) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        base, rate = stream.time_base, float(stream.average_rate or 30)
        try:
            for packet in container.demux(stream):
                if packet.size and packet.pts is not None and not packet.is_discard:
                    pts.append(int(packet.pts))
        except av.error.FFmpegError:
            pass  # the decoding pass meets the damage too and judges it
    if not pts or base is None:
        return None
    pts.sort()
    t = np.asarray([float(p * base) for p in pts], dtype=np.float64)  # as PyAV's frame.time
    t -= t[0]
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0 / rate
    return pts, t, float(t[-1] + step)


def _upright(k: int, frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


Chooser = Callable[[np.ndarray, float], np.ndarray]


def decode_clip(path: Path, video: VideoConfig, sample_rate: int,
                audio_path: Path | None = None, video_frames: bool = True,
                choose: Chooser | None = None) -> DecodedClip:
    """Decode ``path`` once; the soundtrack comes from the clip itself, else from ``audio_path``.

    With ``video_frames=False`` the video packets are only demuxed, not decoded: their presentation times are
    the frames' (one frame per packet), for a decoder elsewhere (DALI on the GPU) to decode the frames.

    ``choose(times, duration)`` names the frames (numbers in presentation order) that will be used: a first
    pass reads the packets' times, and the decoding pass keeps only those frames (``kept``), so memory does
    not grow with the clip's length. Without it every frame is kept.

    Frames come upright: a display matrix (phones record sideways and say so) turns them as a player would.

    Raises ``ClipError`` for files that cannot be used, including truncated ones: a damaged tail is
    tolerated only while the decoded frames still span nearly all of the declared duration.
    """
    keep_pts: set[int] | None = None
    if video_frames and choose is not None:
        planned = _packet_times(path)
        if planned is not None:
            pts, t, duration = planned
            keep_pts = {pts[i] for i in np.unique(choose(t, duration))}
    with open_media(path) as container:
        if not container.streams.video:
            raise ClipError(path, "no video stream (or the file is truncated)", TRUNCATED_HINT)
        vstream = container.streams.video[0]
        if vstream.codec_context is None or not vstream.codec_context.width:
            raise ClipError(path, "unreadable video stream (corrupt or truncated)", TRUNCATED_HINT)
        vstream.thread_type = "AUTO"
        astream = container.streams.audio[0] if container.streams.audio else None
        if astream is None and audio_path is None:
            raise ClipError(path, "no audio track (or the file is truncated)",
                            "avemo needs the clip's soundtrack: if the clip has sound, copy it again; otherwise "
                            "give its soundtrack as a separate file (a manifest's audio_path column; CREMA-D: the "
                            "AudioWAV file of the same name under the data folder), or use a run trained with "
                            "--modality video")
        coded = (vstream.codec_context.width, vstream.codec_context.height)
        codec = vstream.codec_context.name
        turns = 0  # quarter turns counter-clockwise, from the first decoded frame's display matrix
        shown = coded
        width, height = video.decode_size(*coded)
        rate = float(vstream.average_rate or 30)
        declared = _declared_duration(container, vstream)
        frames: list[np.ndarray] = []
        kept: list[int] = []  # decode-order numbers of the frames held
        times: list[float] = []
        chunks: list[np.ndarray] = []
        audio_start: float | None = None
        resampler = mono_resampler(sample_rate)
        damage = ""
        try:
            for packet in container.demux(*[s for s in (vstream, astream) if s is not None]):
                if not video_frames and packet.stream is vstream:
                    if packet.size and packet.pts is not None and not packet.is_discard:
                        times.append(float(packet.pts * vstream.time_base))
                    continue
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        if not times:
                            turns = round((frame.rotation or 0) / 90) % 4
                            shown = coded[::-1] if turns % 2 else coded
                            width, height = video.decode_size(*shown)
                            if turns % 2:  # scale the coded frame so that, turned, it has the displayed size
                                width, height = height, width
                        times.append(frame.time if frame.time is not None else len(times) / rate)
                        if keep_pts is None or frame.pts is None or frame.pts in keep_pts:
                            kept.append(len(times) - 1)
                            frames.append(_upright(turns, frame.to_ndarray(width=width, height=height,
                                                                           format="rgb24")))
                    else:
                        if audio_start is None and frame.time is not None:
                            audio_start = frame.time
                        _collect(resampler.resample(frame), chunks)
        except av.error.FFmpegError as err:
            damage = describe_error(err)
        if astream is not None:
            _collect(resampler.resample(None), chunks)
    if not times:
        raise ClipError(path, "no video frames decoded (corrupt or truncated)", TRUNCATED_HINT)
    order = np.argsort(times, kind="stable")
    t = np.asarray(times, dtype=np.float64)[order]
    t0 = float(t[0])
    t -= t0
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0 / rate
    duration = float(t[-1] + step)
    if declared and declared - duration > SHORTFALL[0] * declared + SHORTFALL[1]:
        raise ClipError(path, "truncated or corrupt (frames end early)",
                        f"decoded {duration:.2f} s of {declared:.2f} s; {TRUNCATED_HINT}"
                        + (f" [{damage}]" if damage else ""))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if samples.size:
        # Align sample 0 with the first video frame (AAC priming and muxer offsets shift the audio).
        shift = round(((audio_start if audio_start is not None else t0) - t0) * sample_rate)
        samples = np.concatenate([np.zeros(shift, np.float32), samples]) if shift > 0 else samples[-shift:]
    elif audio_path is not None:
        samples = decode_audio_file(audio_path, sample_rate)
        if samples.size == 0:
            raise ClipError(audio_path, "empty soundtrack", "the WAV holds no samples")
    else:
        raise ClipError(path, "empty soundtrack", "the audio track holds no samples")
    if video_frames and keep_pts is not None and not kept:
        # The frames' times matched none of the packets' (an odd muxer): decode again keeping every frame.
        return decode_clip(path, video, sample_rate, audio_path)
    frames_arr, kept_arr = None, None
    if video_frames:
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))  # presentation position of each frame in decode order
        positions = rank[np.asarray(kept, dtype=np.int64)]
        by_time = np.argsort(positions, kind="stable")
        frames_arr = np.stack([frames[i] for i in by_time])
        kept_arr = None if keep_pts is None else positions[by_time]
    return DecodedClip(frames=frames_arr, times=t, duration=duration, samples=samples.astype(np.float32),
                       sample_rate=sample_rate, codec=codec, size=shown, kept=kept_arr, rotation=turns * 90)


def display_rotation(path: Path) -> int:
    """Degrees (0, 90, 180, 270, counter-clockwise) the display matrix turns the coded frames, from the first
    decoded frame (where FFmpeg puts the matrix); 0 when there is none or nothing decodes."""
    with open_media(path) as container:
        if not container.streams.video:
            return 0
        try:
            for frame in container.decode(video=0):
                return round((frame.rotation or 0) / 90) % 4 * 90
        except av.error.FFmpegError:
            return 0
    return 0


def decode_frames(path: Path, indices: np.ndarray, video: VideoConfig) -> list[np.ndarray]:
    """The frames at ``indices`` (presentation order) as RGB at ``video.decode_size``: what the face detector
    needs when the frames themselves are decoded elsewhere (DALI). Frames are decoded in order up to the last
    index (which for the detector is near the clip's end: a second, CPU decode of most of the clip); in the
    order of ``indices``, repeats included."""
    wanted = set(int(i) for i in indices)
    last = max(wanted)
    out: dict[int, np.ndarray] = {}
    with open_media(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = video.decode_size(stream.codec_context.width, stream.codec_context.height)
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    out[i] = frame.to_ndarray(width=width, height=height, format="rgb24")
                if i >= last:
                    break
        except av.error.FFmpegError as err:
            raise ClipError(path, "video decoding failed (corrupt or truncated)", describe_error(err)) from err
    missing = wanted - set(out)
    if missing:
        raise ClipError(path, "video decoding failed (truncated)", f"frame {min(missing)} is not in the stream")
    return [out[int(i)] for i in indices]
