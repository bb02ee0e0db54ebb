"""A clip record in, backbone-ready tensors out; and the torch Dataset that does it in worker processes.

:func:`cut_clip` is the one place decoded frames and a soundtrack become model inputs: ``extract`` and
``predict`` cut whole clips with it (:func:`prepare_file`), the timeline cuts windows of a long video with it
(:mod:`avemo.pipeline.stream`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from avemo.pipeline.audio import log_spectrogram, segments
from avemo.pipeline.clips import ClipRecord
from avemo.pipeline.dali import CPU_CODECS, FrameRequest
from avemo.pipeline.decode import ClipError, decode_clip, decode_frames, display_rotation
from avemo.pipeline.face import CropBox, face_box
from avemo.pipeline.landmarks import LandmarkFileError, LandmarkSource, landmark_box
from avemo.pipeline.video import region, sample_indices, snippet_windows, snippets_from_frames, snippets_from_regions
from avemo.spec import AudioConfig, FaceDetector, VideoConfig


@dataclass
class PreparedClip:
    """What the backbones eat for one clip.

    ``video`` stays uint8 (4x less to move between processes); the engine normalises it as its weights
    expect. ``audio`` is the normalised log spectrogram cut into one segment per snippet.
    """

    record: ClipRecord
    video: torch.Tensor  # (S, 3, F, size, size) uint8
    audio: torch.Tensor  # (S, freq_bins, segment_frames) float32
    frame_count: int
    duration: float
    box: CropBox | None = None  # the region of the coded frames the snippets show
    seconds: float = 0.0  # time spent decoding and preparing


@dataclass
class EncodedClip:
    """A clip whose frames DALI will decode: the request for DALI and the soundtrack for the spectrogram."""

    record: ClipRecord
    request: FrameRequest
    samples: torch.Tensor  # (M,) float32 mono, sample 0 at the first video frame
    centres: np.ndarray  # (S,) seconds: the snippets' centres, where the audio segments are cut
    frame_count: int
    duration: float
    box: CropBox | None = None
    seconds: float = 0.0


@dataclass
class FailedClip:
    record: ClipRecord
    error: ClipError


def detection_frames(index: np.ndarray) -> np.ndarray:
    """Which of the sampled frames ``index`` (snippets, frames) the face detector sees: each snippet's middle
    one (already decoded for the snippet)."""
    return index[:, index.shape[1] // 2]


def crop_box(video: VideoConfig, frames: list[np.ndarray], coded: tuple[int, int],
             landmarks: CropBox | None = None, detector: FaceDetector | None = None) -> CropBox:
    """The clip's crop box for ``video.crop``, in coded pixels; ``frames``: each snippet's middle frame.

    A fixed crop: its box of the frame; otherwise the box from the clip's landmark file (``landmarks``) when
    there is one, else the detector's, which falls back to the centre box.
    """
    crop = video.crop_mode
    if crop.fixed:
        return CropBox(*crop.fixed_box(*coded, video.size / video.resize), crop.value)
    if landmarks is not None:
        return landmarks
    return face_box(frames, *coded, fallback=video.size / video.resize, settings=detector)


def file_landmarks(path: Path, video: VideoConfig, source: LandmarkSource | None,
                   coded: tuple[int, int]) -> CropBox | None:
    """The box from ``path``'s landmark file for a crop that reads them, or None (another crop, no source, no
    file, too few trusted frames); raise ``ClipError`` for a file that is there but unreadable."""
    if source is None or not video.crop_mode.reads_landmarks:
        return None
    try:
        return landmark_box(source.file_for(path), *coded, settings=source.settings)
    except LandmarkFileError as err:
        raise ClipError(path, "unreadable landmark file", str(err)) from None


def snippet_regions(video: VideoConfig, coded: tuple[int, int], box: CropBox, snippets: int) -> list[tuple[int, int, int, int]]:
    """Each snippet's region of the decoded frames (:func:`avemo.pipeline.video.region`), all of one size (the
    first's) so that DALI can cut them from one sequence as the PyAV path does."""
    areas = [region(video, coded, b) for b in box.snippet_boxes(snippets)]
    width, height = video.decode_size(*coded)
    _, _, w, h = areas[0]
    return [(min(x, width - w), min(y, height - h), w, h) for x, y, _, _ in areas]


def cut_clip(video: VideoConfig, audio: AudioConfig, frames: np.ndarray, index: np.ndarray,
             coded: tuple[int, int], samples: torch.Tensor | None, centres: np.ndarray, path: Path,
             box: CropBox | None = None) -> tuple[torch.Tensor, torch.Tensor | None, CropBox]:
    """A clip, or a window of a long video, cut into model inputs: (snippets (S, 3, F, size, size) uint8,
    spectrogram segments (S, freq_bins, segment_frames) or None without ``samples``, crop box).

    ``frames`` (N, h, w, 3) uint8 are decoded at ``video.decode_size(*coded)``, ``coded`` being the video's
    (width, height); ``index`` (S, F) picks the snippets' frames from them; the face detector looks at each
    snippet's middle frame (when the crop uses it and ``box``, a box decided already, e.g. from the clip's
    landmark file, is None). ``samples`` is the soundtrack (sample 0 at the first frame), cut into segments centred on
    ``centres`` (seconds). Raise ``ClipError`` naming ``path`` for an unusable soundtrack.
    """
    crop = video.crop_mode
    faces = [frames[i] for i in detection_frames(index)] if crop.uses_detector and box is None else []
    box = crop_box(video, faces, coded, box)
    if crop.fixed:  # frames were scaled while decoding so that only the centre cut (or nothing) remains
        snippets = snippets_from_frames(frames, index, video.size)
    else:
        snippets = snippets_from_regions(frames, index, snippet_regions(video, coded, box, len(index)), video.size)
    segs = audio_segments(samples, centres, audio, path) if samples is not None else None
    return snippets, segs, box


def prepare_file(path: Path, video: VideoConfig, audio: AudioConfig, audio_path: Path | None = None,
                 landmarks: LandmarkSource | None = None) -> tuple[torch.Tensor, torch.Tensor, int, float, CropBox]:
    """(snippets uint8, spectrogram segments, frame count, duration, crop box) of one media file; raise
    ``ClipError``. ``landmarks``: where landmark files are, for ``--crop landmarks`` (None: the detector)."""
    def needed(times: np.ndarray, duration: float) -> np.ndarray:  # only these frames are kept while decoding
        return sample_indices(times, duration, video.snippets, video.frames).ravel()

    decoded = decode_clip(path, video, audio.sample_rate, audio_path, choose=needed)
    index = decoded.rows(sample_indices(decoded.times, decoded.duration, video.snippets, video.frames))
    centres = snippet_windows(decoded.duration, video.snippets).mean(axis=1)
    from_file = file_landmarks(path, video, landmarks, decoded.size)
    frames, segs, box = cut_clip(video, audio, decoded.frames, index, decoded.size,
                                 torch.from_numpy(decoded.samples), centres, path, from_file)
    return frames, segs, len(decoded.times), decoded.duration, box


def encode_clip(record: ClipRecord, video: VideoConfig, audio: AudioConfig, cpu_decoder: bool,
                landmarks: LandmarkSource | None = None) -> EncodedClip:
    """Demux one clip (no video decoding) and choose its frames, for DALI; raise ``ClipError``.

    ``cpu_decoder``: DALI will decode on the CPU, which reads VP9/VP8 only; other codecs fail here, one clip
    at a time, rather than inside DALI where a failure stops the pipeline.
    """
    decoded = decode_clip(record.path, video, audio.sample_rate, record.audio_path, video_frames=False)
    turned = display_rotation(record.path)
    if turned:
        raise ClipError(record.path, f"rotated video (display matrix: {turned} degrees)",
                        "the DALI path cannot turn frames upright yet; extract it with --decoder pyav")
    if cpu_decoder and decoded.codec not in CPU_CODECS:
        raise ClipError(record.path, f"DALI cannot decode {decoded.codec} on the CPU",
                        "use --decoder pyav, or a CUDA device for DALI")
    index = sample_indices(decoded.times, decoded.duration, video.snippets, video.frames)
    from_file = file_landmarks(record.path, video, landmarks, decoded.size)
    detect = video.crop_mode.uses_detector and from_file is None
    faces = decode_frames(record.path, detection_frames(index), video) if detect else []
    box = crop_box(video, faces, decoded.size, from_file)
    request = FrameRequest(np.frombuffer(record.path.read_bytes(), np.uint8), video.decode_size(*decoded.size), index,
                           snippet_regions(video, decoded.size, box, len(index)))
    centres = snippet_windows(decoded.duration, video.snippets).mean(axis=1)
    return EncodedClip(record, request, torch.from_numpy(decoded.samples), centres, len(decoded.times),
                       decoded.duration, box)


def audio_segments(samples: torch.Tensor, centres: np.ndarray, audio: AudioConfig, path: Path) -> torch.Tensor:
    """Spectrogram segments of a soundtrack on whatever device it is on; raise ``ClipError`` if unusable."""
    try:
        spec = log_spectrogram(samples, audio)
    except ValueError as err:
        raise ClipError(path, "unusable soundtrack", str(err)) from err
    return segments(spec, centres, audio)


def prepare_clip(record: ClipRecord, video: VideoConfig, audio: AudioConfig,
                 landmarks: LandmarkSource | None = None) -> PreparedClip:
    """Decode one clip and build its snippets and aligned spectrogram segments; raise ``ClipError``."""
    frames, segs, frame_count, duration, box = prepare_file(record.path, video, audio, record.audio_path, landmarks)
    return PreparedClip(record=record, video=frames, audio=segs, frame_count=frame_count, duration=duration, box=box)


class ClipDataset(Dataset):
    """Prepares clips on demand; a bad clip comes back as ``FailedClip`` so a batch never dies of it.

    ``decoder`` "pyav" decodes the frames here; "dali-cpu" and "dali-gpu" only demux them, for DALI.
    """

    def __init__(self, clips: list[ClipRecord], video: VideoConfig, audio: AudioConfig,
                 decoder: str = "pyav", landmarks: LandmarkSource | None = None) -> None:
        self.clips, self.video, self.audio, self.decoder = clips, video, audio, decoder
        self.landmarks = landmarks

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> PreparedClip | EncodedClip | FailedClip:
        record = self.clips[i]
        start = time.perf_counter()
        try:
            if self.decoder == "pyav":
                clip: PreparedClip | EncodedClip = prepare_clip(record, self.video, self.audio, self.landmarks)
            else:
                clip = encode_clip(record, self.video, self.audio, cpu_decoder=self.decoder == "dali-cpu",
                                   landmarks=self.landmarks)
            clip.seconds = time.perf_counter() - start
            return clip
        except ClipError as err:
            return FailedClip(record, err)
        except Exception as err:  # noqa: BLE001 - a decoder bug on one file must not stop the batch
            return FailedClip(record, ClipError(record.path, "unexpected decoding error",
                                                f"{type(err).__name__}: {err}; please report it"))


def keep_as_list(batch: list) -> list:
    """Collate function: clips are stacked by the engine, after failures are set aside."""
    return batch

