"""A synthetic RAVDESS: drawn faces and voice-like sounds whose emotion shows in both modalities.

Every clip is named, laid out and encoded like the real audio-visual RAVDESS files (``Actor_XX/``,
``01-VV-EE-II-SS-RR-AA.mp4``, H.264 + AAC 48 kHz), so every loader of avemo runs on it unchanged. Emotion
drives the face (brows, eyes, mouth, tint, head motion) and the voice (pitch level and contour, loudness,
syllable rate, brightness, breathiness); intensity scales the departure from neutral. Actors differ in face
geometry, skin, background, voice pitch, tempo and expressiveness, so a model has to generalise across
actors, as actor-independent evaluation demands.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from avemo.choices import Codec, Faces
from avemo.emotions import EMOTIONS


@dataclass(frozen=True)
class Expression:
    """The cues of one emotion at full strength; neutral is all zeros."""

    smile: float  # mouth corners up (+) or down (-)
    mouth_open: float
    brow_raise: float
    brow_tilt: float  # inner ends down (+, anger) or up (-, sadness / fear)
    eye_open: float
    tint: tuple[float, float, float]  # added to the skin colour
    motion: float  # head movement amplitude
    tremor: float  # fast shaking (fear)
    pitch: float  # log2 shift of the voice's fundamental
    contour: float  # pitch slope across the clip (+ rising)
    loudness: float
    tempo: float  # relative syllable rate
    brightness: float  # spectral tilt: more high harmonics
    breath: float  # noise


EXPRESSIONS: dict[str, Expression] = {
    "neutral": Expression(0, 0, 0, 0, 0, (0, 0, 0), 0, 0, 0, 0, 0, 0, 0, 0),
    "calm": Expression(0.3, -0.1, -0.2, 0, -0.5, (0, 10, 20), -0.5, 0, -0.15, -0.1, -0.4, -0.35, -0.3, 0.2),
    "happy": Expression(1.0, 0.4, 0.3, 0, 0.2, (35, 20, -10), 0.6, 0, 0.35, 0.3, 0.4, 0.3, 0.3, 0),
    "sad": Expression(-0.9, -0.2, 0.2, -0.8, -0.4, (-20, -10, 30), -0.6, 0, -0.35, -0.5, -0.5, -0.5, -0.5, 0.3),
    "angry": Expression(-0.5, 0.5, -0.5, 1.0, 0.1, (60, -25, -25), 0.8, 0.1, 0.15, 0.0, 0.9, 0.4, 0.9, 0.1),
    "fearful": Expression(-0.4, 0.6, 0.8, -0.7, 0.9, (-15, -15, -10), 0.3, 1.0, 0.55, 0.2, 0.2, 0.6, 0.1, 0.8),
    "disgust": Expression(-0.7, 0.1, -0.3, 0.5, -0.6, (-10, 35, -15), 0.2, 0, -0.1, -0.3, 0.1, -0.2, 0.4, 0.5),
    "surprised": Expression(0.1, 1.0, 1.0, -0.2, 1.0, (20, 20, 20), 0.5, 0, 0.6, 0.7, 0.5, 0.1, 0.2, 0.1),
}
CONTAINERS = {".mp4": "mp4", ".flv": "flv", ".mkv": "matroska"}
INTENSITY_GAIN = {1: 1.0, 2: 1.6}  # RAVDESS intensity code -> scale of the departure from neutral
# Drawn faces flush this many times the table's tint: at 1x the actors' skin tones and each clip's light swamp
# it, and the video features of a random-weight backbone told emotions of unseen actors apart hardly better
# than chance (benchmarks/RESULTS.md, "Timeline agreement").
DRAWN_TINT_GAIN = 3.0


@dataclass(frozen=True)
class Actor:
    """Per-actor traits, drawn once from the actor's own random stream."""

    number: int
    face_x: float
    face_y: float
    face_r: float
    aspect: float
    skin: np.ndarray
    background: np.ndarray
    f0: float
    tempo: float
    expressiveness: float

    @classmethod
    def draw(cls, number: int, seed: int) -> Actor:
        rng = np.random.default_rng([seed, number])
        female = number % 2 == 0
        return cls(
            number=number,
            face_x=rng.uniform(0.4, 0.6), face_y=rng.uniform(0.42, 0.58), face_r=rng.uniform(0.28, 0.38),
            aspect=rng.uniform(0.7, 0.9),
            skin=rng.uniform([150, 100, 70], [240, 200, 170]),
            background=rng.uniform(20, 120, size=3),
            f0=rng.uniform(180, 240) if female else rng.uniform(95, 140),
            tempo=rng.uniform(0.8, 1.2), expressiveness=rng.uniform(0.7, 1.2),
        )


ENCODERS = {"h264": ("libx264", {"preset": "veryfast", "crf": "20"}),
            "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "20", "b": "0"})}


@dataclass(frozen=True)
class SynthConfig:
    width: int = 160
    height: int = 120
    fps: float = 30.0
    sample_rate: int = 48_000
    min_seconds: float = 2.6
    max_seconds: float = 3.6
    variable_frame_rate: bool = False  # frame durations vary from 0.5x to 1.5x, as in phone recordings
    split_cues: bool = False  # each modality shows only part of the emotion (see split_proxies)
    codec: str = "h264"  # or "vp9": what DALI's CPU decoder reads, so its graph can be tested without a GPU
    faces: str = "drawn"  # or "real": a photographed face (scikit-image's astronaut), placed and scaled per actor

    def __post_init__(self) -> None:
        Faces.check(self.faces, "--faces")
        Codec.check(self.codec, "--codec")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"--width {self.width} / --height {self.height}: H.264 (yuv420p) needs even sizes")


def clip_plan(clips_per_actor: int, vocal_channel: int = 1) -> list[tuple[int, int, int, int]]:
    """(emotion, intensity, statement, repetition) codes for an actor, cycling emotions first.

    The first 8 clips cover all 8 emotions once; later ones vary intensity, statement and repetition.
    Neutral never gets the strong intensity, as in RAVDESS.
    """
    combos = []
    for rep in (1, 2):
        for stmt in (1, 2):
            for inten in (1, 2):
                for emo in range(1, 9):
                    if not (emo == 1 and inten == 2):
                        combos.append((emo, inten, stmt, rep))
    if clips_per_actor > len(combos):
        raise ValueError(f"an actor has at most {len(combos)} distinct speech clips in RAVDESS naming")
    return combos[:clips_per_actor]


def _strength(emotion: str, intensity: int, actor: Actor) -> tuple[Expression, float]:
    return EXPRESSIONS[emotion], INTENSITY_GAIN[intensity] * actor.expressiveness


def _envelope(t: np.ndarray, rate: float, statement: int, rng: np.random.Generator) -> np.ndarray:
    """Syllable loudness envelope in [0, 1]: bumps at ``rate`` Hz with a statement-specific rhythm."""
    pattern = np.array([1.0, 0.6, 0.9, 0.5, 1.0, 0.7] if statement == 1 else [0.8, 1.0, 0.5, 0.9, 0.6, 1.0, 0.7])
    phase = t * rate + rng.uniform(0, 0.3)
    bump = np.sin(np.pi * (phase % 1.0)) ** 2
    weight = pattern[(phase.astype(int)) % len(pattern)]
    fade = np.clip(np.minimum(t - 0.15, t[-1] - 0.15 - t) / 0.1, 0, 1)  # silence at both ends, as in RAVDESS
    return bump * weight * fade


def render_audio(emotion: str, intensity: int, statement: int, actor: Actor, seconds: float,
                 rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(samples, envelope) of a harmonic voice; the envelope also drives the drawn mouth."""
    e, g = _strength(emotion, intensity, actor)
    t = np.arange(int(seconds * rate)) / rate
    syll_rate = 4.0 * actor.tempo * 2 ** (0.6 * g * e.tempo) * rng.uniform(0.95, 1.05)
    env = _envelope(t, syll_rate, statement, rng)
    f0 = actor.f0 * 2 ** (g * e.pitch) * rng.uniform(0.97, 1.03)
    contour = 2 ** (g * e.contour * (t / seconds - 0.5) * 0.8)
    vibrato = 1 + (0.04 * g * e.tremor + 0.005) * np.sin(2 * np.pi * 6.0 * t)
    phase = 2 * np.pi * np.cumsum(f0 * contour * vibrato) / rate
    tilt = 1.6 - 0.6 * g * e.brightness
    voice = sum(np.sin(k * phase) / k ** tilt for k in range(1, 16) if k * f0 * 1.5 < rate / 2)
    noise = rng.standard_normal(len(t)) * (0.05 + 0.4 * max(g * e.breath, 0))
    loud = 0.25 * 2 ** (g * e.loudness)
    signal = loud * env * (voice / 2.0 + noise) + 0.003 * rng.standard_normal(len(t))
    return np.clip(signal, -1, 1).astype(np.float32), env


class _Canvas:
    """Pixel grids reused for every frame of a clip."""

    def __init__(self, width: int, height: int) -> None:
        self.y, self.x = np.mgrid[0:height, 0:width].astype(np.float32)
        self.width, self.height = width, height


def _segment_mask(c: _Canvas, p0: tuple[float, float], p1: tuple[float, float], thick: float) -> np.ndarray:
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    u = np.clip(((c.x - x0) * dx + (c.y - y0) * dy) / (dx * dx + dy * dy + 1e-6), 0, 1)
    return (c.x - x0 - u * dx) ** 2 + (c.y - y0 - u * dy) ** 2 < thick ** 2


def render_frame(c: _Canvas, e: Expression, g: float, actor: Actor, t: float, mouth_env: float,
                 shade: float) -> np.ndarray:
    """One RGB frame (H, W, 3) uint8 of the actor's face showing expression ``e`` at gain ``g``."""
    size = min(c.width, c.height)
    r = actor.face_r * size
    amp = size * 0.03 * max(0.2, 1 + g * e.motion)
    cx = actor.face_x * c.width + amp * np.sin(2 * np.pi * 0.7 * t) + g * e.tremor * 1.5 * np.sin(2 * np.pi * 9 * t)
    cy = actor.face_y * c.height + 0.5 * amp * np.sin(2 * np.pi * 0.9 * t + 1)
    img = np.empty((c.height, c.width, 3), np.float32)
    img[:] = actor.background * shade
    face = ((c.x - cx) / (actor.aspect * r)) ** 2 + ((c.y - cy) / r) ** 2 < 1
    img[face] = np.clip(actor.skin + DRAWN_TINT_GAIN * g * np.asarray(e.tint), 0, 255) * shade
    eye_h = 0.1 * r * max(0.25, 1 + 0.6 * g * e.eye_open)
    brow_y = cy - 0.42 * r - 0.12 * r * g * e.brow_raise
    for side in (-1, 1):
        ex, ey = cx + side * 0.33 * r * actor.aspect, cy - 0.18 * r
        eye = ((c.x - ex) / (0.13 * r)) ** 2 + ((c.y - ey) / eye_h) ** 2 < 1
        img[eye] = (250, 250, 250)
        img[((c.x - ex) / (0.06 * r)) ** 2 + ((c.y - ey) / min(eye_h, 0.06 * r)) ** 2 < 1] = (30, 30, 40)
        inner = (ex - side * 0.15 * r, brow_y + 0.1 * r * g * e.brow_tilt)
        outer = (ex + side * 0.15 * r, brow_y - 0.03 * r * g * e.brow_tilt)
        img[_segment_mask(c, inner, outer, 0.04 * r)] = (60, 40, 30)
    half_w = 0.32 * r
    u = (c.x - cx) / half_w
    centre = cy + 0.45 * r - 0.14 * r * np.clip(g * e.smile, -1.5, 1.5) * (u ** 2 - 0.3)
    opening = 0.025 * r + 0.14 * r * np.clip(0.15 + 0.5 * mouth_env + 0.35 * g * e.mouth_open, 0, 1.2) * (1 - u ** 2)
    img[(np.abs(u) < 1) & (np.abs(c.y - centre) < opening)] = (110, 20, 30)
    return np.clip(img, 0, 255).astype(np.uint8)


class _Encoder:
    """One H.264 (or VP9) + AAC file (mp4, flv or mkv) written piece by piece: frames at their times, sound from
    its first sample, both on the file's one clock. Written to ``path.part`` and moved into place on success."""

    def __init__(self, path: Path, config: SynthConfig, audio: bool, faststart: bool = False) -> None:
        muxer = CONTAINERS.get(path.suffix.lower())
        if muxer is None:
            raise ValueError(f"{path}: write .mp4, .flv or .mkv")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.tmp, self.rate = path, path.with_name(path.name + ".part"), config.sample_rate
        options = {"movflags": "faststart"} if faststart and muxer == "mp4" else {}
        self.container = av.open(str(self.tmp), mode="w", format=muxer, options=options)
        encoder, codec_options = ENCODERS[config.codec]
        self.video = self.container.add_stream(encoder, rate=Fraction(config.fps).limit_denominator(1001))
        self.video.width, self.video.height, self.video.pix_fmt = config.width, config.height, "yuv420p"
        self.video.codec_context.time_base = Fraction(1, 1000)
        self.video.options = codec_options
        self.audio = self.container.add_stream("aac", rate=config.sample_rate, layout="stereo") if audio else None

    def frame(self, image: np.ndarray, t: float) -> None:
        """An RGB frame (H, W, 3) uint8 shown from ``t`` seconds on."""
        # Convert to YUV here, into a fresh frame: when encode() converts, PyAV reuses one buffer that
        # x264's look-ahead may still hold, and earlier frames get overwritten (irreproducible output).
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
        self.container.mux(self.video.encode(frame))

    def end_video(self) -> None:
        self.container.mux(self.video.encode(None))

    def sound(self, samples: np.ndarray, first: int) -> None:
        """Mono samples, the first of them at sample ``first`` of the soundtrack's clock (stored as stereo)."""
        stereo = np.ascontiguousarray(np.stack([samples, samples]))
        for offset in range(0, stereo.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, offset:offset + 1024]),
                                               format="fltp", layout="stereo")
            chunk.sample_rate, chunk.pts = self.rate, first + offset
            chunk.time_base = Fraction(1, self.rate)
            self.container.mux(self.audio.encode(chunk))

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        """On success flush the sound and move the file into place; on an error leave only ``path.part``."""
        if error is None and self.audio is not None:
            self.container.mux(self.audio.encode(None))
        self.container.close()
        if error is None:
            self.tmp.replace(self.path)


def write_clip(path: Path, frames: list[np.ndarray], times: np.ndarray, audio: np.ndarray | None,
               config: SynthConfig, audio_start: float = 0.0, faststart: bool = False) -> None:
    """Encode RGB frames shown at ``times`` (seconds) and a mono track as H.264 or VP9 + AAC (mp4, flv or mkv).

    ``audio_start`` delays the soundtrack's first sample (seconds); ``faststart`` puts the mp4 index first,
    as streaming-ready files do (a truncated one still opens).
    """
    with _Encoder(path, config, audio is not None, faststart) as encoder:
        for image, t in zip(frames, times):
            encoder.frame(image, t)
        encoder.end_video()
        if audio is not None:
            encoder.sound(audio, round(audio_start * config.sample_rate))


VIDEO_PROXIES = ("happy", "sad", "angry", "surprised")
AUDIO_PROXIES = ("angry", "sad")


def split_proxies(emotion: str) -> tuple[str, str]:
    """(face, voice) expressions when the emotion is split across modalities.

    The face tells which pair of emotions (4 groups), the voice which member of the pair (2 groups): video
    alone can reach at most 50% accuracy, audio alone 25%, only their fusion 100%.
    """
    index = EMOTIONS.index(emotion)
    return VIDEO_PROXIES[index // 2], AUDIO_PROXIES[index % 2]


def render_clip(actor: Actor, emotion: str, intensity: int, statement: int, rng: np.random.Generator,
                config: SynthConfig, place: Placement | None = None,
                shade: float | None = None) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(RGB frames, their times in seconds, mono 48 kHz sound) of one clip of ``actor`` showing ``emotion``;
    ``place`` puts a real face there instead of drawing one; ``shade`` fixes the light (drawn per clip otherwise)."""
    face, voice = split_proxies(emotion) if config.split_cues else (emotion, emotion)
    seconds = rng.uniform(config.min_seconds, config.max_seconds)
    audio, env = render_audio(voice, intensity, statement, actor, seconds, config.sample_rate, rng)
    n = int(seconds * config.fps)
    times = np.arange(n) / config.fps
    if config.variable_frame_rate:
        steps = rng.uniform(0.5, 1.5, size=n) / config.fps
        times = np.concatenate([[0.0], np.cumsum(steps[:-1])])
        times = times[times < seconds]
    e, g = _strength(face, intensity, actor)
    canvas = _Canvas(config.width, config.height)
    drawn_shade = rng.uniform(0.85, 1.15)  # drawn in any case: a clip's random stream stays the same
    shade = drawn_shade if shade is None else shade
    mouth = [float(env[min(int(t * config.sample_rate), len(env) - 1)]) for t in times]
    if place is not None:
        frames = [render_real_frame(config.width, config.height, e, g, actor, place, t, m, shade)
                  for t, m in zip(times, mouth)]
    else:
        frames = [render_frame(canvas, e, g, actor, t, m, shade) for t, m in zip(times, mouth)]
    return frames, times, audio


def clip_name(emotion: int, intensity: int, statement: int, repetition: int, actor: int,
              modality: int = 1, vocal_channel: int = 1) -> str:
    return f"{modality:02d}-{vocal_channel:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"


def synthesize(out: Path, actors: int, clips_per_actor: int, seed: int = 0, config: SynthConfig | None = None,
               on_clip: Callable[[Path], None] | None = None) -> list[Path]:
    """Write ``actors`` x ``clips_per_actor`` RAVDESS-named clips under ``out/Actor_XX/``; return their paths.

    The same seed renders the same frames and sound. The H.264 bytes can differ between runs: x264's output was
    seen to vary with machine load here, so compare rendered content, not files. Existing clips are left
    alone, so an interrupted run can be resumed.
    """
    config = config or SynthConfig()
    if not 1 <= actors <= 24:
        raise ValueError("RAVDESS names allow actors 1-24")
    written, boxes = [], {}
    for number in range(1, actors + 1):
        actor = Actor.draw(number, seed)
        place = Placement.draw(number, seed, config.width, config.height) if config.faces == "real" else None
        for emo, inten, stmt, rep in clip_plan(clips_per_actor):
            path = out / f"Actor_{number:02d}" / f"{clip_name(emo, inten, stmt, rep, number)}.mp4"
            rng = np.random.default_rng([seed, number, emo, inten, stmt, rep])
            times = None
            if not path.exists():
                frames, times, audio = render_clip(actor, EMOTIONS[emo - 1], inten, stmt, rng, config, place)
                write_clip(path, frames, times, audio, config)
            if place is not None:
                shown = split_proxies(EMOTIONS[emo - 1])[0] if config.split_cues else EMOTIONS[emo - 1]
                e, g = _strength(shown, inten, actor)
                motion = max(0.2, 1 + g * e.motion)
                sway = [real_face_box(place, config.width, config.height, t, motion) for t in np.linspace(0, 3, 31)]
                boxes[path.stem] = [round(float(v), 1) for v in np.mean(sway, axis=0)]
                landmarks = out / "landmarks" / f"{path.stem}.csv"
                if not landmarks.exists():
                    if times is None:  # rendered before: its length is the first draw of its random stream
                        seconds = np.random.default_rng([seed, number, emo, inten, stmt, rep]).uniform(
                            config.min_seconds, config.max_seconds)
                        times = np.arange(int(seconds * config.fps)) / config.fps
                    write_landmarks(landmarks, [real_face_box(place, config.width, config.height, t, motion)
                                                for t in times], config.fps)
            written.append(path)
            if on_clip is not None:
                on_clip(path)
    if boxes:  # the true face box of every clip (its mean over the sway), to check detection against
        (out / "faces.json").write_text(json.dumps(boxes, indent=1))
    return written


def write_landmarks(path: Path, boxes: list[tuple[float, float, float, float]], fps: float) -> None:
    """An OpenFace-style landmark CSV for a clip whose face is at ``boxes`` frame by frame: what
    ``--crop landmarks`` reads (exact points: their box is the true face box)."""
    from avemo.pipeline.landmarks import openface_csv

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(openface_csv(boxes, fps))
    tmp.replace(path)


# --- Real faces -------------------------------------------------------------------------------------------------
# The photograph: scikit-image's astronaut (Eileen Collins, NASA, public domain), shipped inside its wheel.
# PHOTO_FACE is her face (brows to chin, ear to ear) in that 512 x 512 image, measured by eye; PHOTO_HEAD the
# part of the photograph pasted into the frames (head, hair and some background).
PHOTO_FACE = (180, 72, 92, 106)  # x, y, width, height
PHOTO_HEAD = (120, 5, 210, 245)


@dataclass(frozen=True)
class Placement:
    """Where an actor's real face sits: centre (fractions of the frame) and side (fraction of the short side)."""

    x: float
    y: float
    side: float

    @classmethod
    def draw(cls, number: int, seed: int, width: int, height: int) -> Placement:
        rng = np.random.default_rng([seed, number, 7])
        side = rng.uniform(0.25, 0.5)
        short = min(width, height)
        # Keep the face and a crop's margin around it inside the frame (hair and shoulders may leave it).
        half_w, half_h = 0.75 * side * short / width, 0.75 * side * short / height
        return cls(rng.uniform(half_w, 1 - half_w), rng.uniform(half_h, 1 - half_h), side)


@lru_cache(maxsize=1)
def _photo() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The head patch (RGB float32) and the face box inside it (x, y, width, height)."""
    try:
        from skimage import data
    except ImportError as err:
        raise RuntimeError("--faces real needs scikit-image (pip install scikit-image)") from err
    image = data.astronaut().astype(np.float32)
    x, y, w, h = PHOTO_HEAD
    fx, fy, fw, fh = PHOTO_FACE
    return image[y:y + h, x:x + w], (fx - x, fy - y, fw, fh)


def real_face_box(place: Placement, width: int, height: int, t: float, motion: float) -> tuple[float, float, float, float]:
    """The face's box (x, y, width, height) in frame pixels at time ``t``; ``motion`` scales the sway."""
    short = min(width, height)
    side = place.side * short
    _, (fx, fy, fw, fh) = _photo()
    scale = side / fh
    amp = short * 0.02 * motion
    cx = place.x * width + amp * np.sin(2 * np.pi * 0.7 * t)
    cy = place.y * height + 0.5 * amp * np.sin(2 * np.pi * 0.9 * t + 1)
    return cx - fw * scale / 2, cy - side / 2, fw * scale, side


def render_real_frame(width: int, height: int, e: Expression, g: float, actor: Actor, place: Placement, t: float,
                      mouth_env: float, shade: float) -> np.ndarray:
    """One RGB frame with the photographed face pasted at the actor's place, tinted and lit by the expression
    (the emotion shows less than on drawn faces: this mode is for testing face detection, not learning)."""
    import torch

    patch, (fx, fy, fw, fh) = _photo()
    x, y, w, h = real_face_box(place, width, height, t, max(0.2, 1 + g * e.motion))
    scale = h / fh
    ph, pw = round(patch.shape[0] * scale), round(patch.shape[1] * scale)
    resized = torch.nn.functional.interpolate(torch.from_numpy(patch).permute(2, 0, 1)[None], size=(ph, pw),
                                              mode="bilinear", antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
    tint = np.clip(1 + 0.004 * g * np.asarray(e.tint), 0.5, 1.5) * shade
    resized = resized * tint
    mouth_y = round((fy + 0.8 * fh) * scale)  # the mouth's row: darkened as it opens
    band = slice(max(0, mouth_y - round(0.03 * ph)), mouth_y + round(0.03 * ph))
    resized[band] *= 1 - 0.25 * np.clip(0.15 + 0.5 * mouth_env + 0.35 * g * e.mouth_open, 0, 1)
    img = np.empty((height, width, 3), np.float32)
    img[:] = actor.background * shade
    left, top = round(x - fx * scale), round(y - fy * scale)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + pw, width), min(top + ph, height)
    img[y0:y1, x0:x1] = resized[y0 - top:y1 - top, x0 - left:x1 - left]
    return np.clip(img, 0, 255).astype(np.uint8)


# --- A long clip whose emotion changes ----------------------------------------------------------------------------

UTTERANCES_PER_EMOTION = 2  # each emotion lasts this many clip-like utterances: 5.2-7.2 s at the default lengths


def _emotion_order(rng: np.random.Generator) -> Iterator[str]:
    """Random permutations of all eight emotions, back to back, never the same emotion twice in a row."""
    last = None
    while True:
        order = [EMOTIONS[i] for i in rng.permutation(len(EMOTIONS))]
        if order[0] == last:
            order.append(order.pop(0))
        yield from order
        last = order[-1]


def synthesize_long(path: Path, seconds: float, seed: int = 0, actor: int = 1, config: SynthConfig | None = None,
                    utterances: int = UTTERANCES_PER_EMOTION, intensity: int | None = None) -> dict:
    """Write one clip of ``seconds`` in which ``actor`` (as ``synthesize`` draws them with this seed) changes
    emotion every few seconds, and the truth beside it (``path`` with ``.json``); return the truth.

    The actor speaks as in the dataset's clips: each emotion lasts ``utterances`` utterances, each rendered
    exactly like one clip (its length drawn from the config's clip lengths, its statement drawn, silence at both
    ends), back to back under one light. A model trained on the clips thus meets their statistics, cut at
    other places by the timeline's windows; a stretch rendered as one long clip would instead stretch its pitch
    contour and drop the pauses. Intensity is drawn per emotion unless ``intensity`` fixes it (1 normal,
    2 strong). Utterances are streamed into the encoder one at a time, so memory does not grow with ``seconds``.
    """
    config = config or SynthConfig()
    if seconds <= 0:
        raise ValueError(f"--long {seconds}: give a positive number of seconds")
    if utterances < 1:
        raise ValueError(f"utterances {utterances}: an emotion needs at least one")
    rng = np.random.default_rng([seed, actor, 99])
    who = Actor.draw(actor, seed)
    place = Placement.draw(actor, seed, config.width, config.height) if config.faces == "real" else None
    shade = float(rng.uniform(0.85, 1.15))  # one light for the whole video
    emotions = _emotion_order(rng)
    segments: list[dict] = []
    boxes = []
    frame_index, sample_index, start = 0, 0, 0.0  # the whole clip's clock, whatever each utterance rendered
    with _Encoder(path, config, audio=True) as encoder:
        while start < seconds - 1e-9:
            emotion = next(emotions)
            drawn = int(rng.integers(1, 3))
            strength = 1 if emotion == "neutral" else intensity or drawn  # neutral is never strong, as in RAVDESS
            e, g = _strength(emotion, strength, who)
            spoken = []
            while len(spoken) < utterances and start < seconds - 1e-9:
                statement = int(rng.integers(1, 3))
                clip_rng = np.random.default_rng([seed, actor, 99, int(rng.integers(2 ** 31))])
                frames, _, audio = render_clip(who, emotion, strength, statement, clip_rng, config, place, shade)
                end = min(start + len(audio) / config.sample_rate, seconds)
                spoken.append({"start": round(start, 3), "end": round(end, 3), "statement": statement})
                n_frames = round(end * config.fps) - frame_index
                n_samples = round(end * config.sample_rate) - sample_index
                for image in (frames + frames[-1:] * n_frames)[:n_frames]:
                    t = frame_index / config.fps
                    encoder.frame(image, t)
                    if place is not None:
                        boxes.append(real_face_box(place, config.width, config.height, t - start,
                                                   max(0.2, 1 + g * e.motion)))
                    frame_index += 1
                encoder.sound(np.pad(audio, (0, max(0, n_samples - len(audio))))[:n_samples], sample_index)
                sample_index += n_samples
                start = end
            segments.append({"start": spoken[0]["start"], "end": spoken[-1]["end"], "emotion": emotion,
                             "intensity": strength, "utterances": spoken})
        encoder.end_video()
    truth = {"video": path.name, "seconds": round(seconds, 3), "actor": actor, "seed": seed, "faces": config.faces,
             "segments": segments}
    if boxes:
        truth["face_box"] = [round(float(v), 1) for v in np.mean(boxes, axis=0)]
    path.with_suffix(".json").write_text(json.dumps(truth, indent=1))
    return truth


def repeat_clip(source: Path, path: Path, seconds: float) -> int:
    """Write ``path``: ``source`` played again and again until ``seconds`` (whole repeats), its packets copied
    with shifted timestamps, nothing re-encoded: an hour-long video in seconds, for measuring the speed and
    memory of long runs (the decoder and the models do the same work as on an hour of new content). Returns
    the number of repeats."""
    # The period: the longest stream's span (first decoding time to its last packet's end), rounded up to
    # whole sound packets, so that each stream's decoding times keep increasing across the joins; the last
    # frame of each repeat stays on screen a little longer (32 ms for avemo's AAC clips). The sound's priming and
    # padding at each join decode as up to two AAC frames (43 ms) more per repeat: it lags the picture by that
    # much more each time, which changes nothing for speed and memory but makes the file unfit for judging
    # recognition.
    step: dict[int, float] = {}
    first: dict[int, float] = {}
    end: dict[int, float] = {}
    with av.open(str(source)) as probe:
        for packet in probe.demux():
            if packet.dts is None:
                continue
            first.setdefault(packet.stream.index, float(packet.dts * packet.time_base))
            end[packet.stream.index] = float((packet.dts + (packet.duration or 0)) * packet.time_base)
            if packet.stream.type == "audio" and packet.duration:
                step[packet.stream.index] = max(step.get(packet.stream.index, 0.0),
                                                float(packet.duration * packet.time_base))
    length = max((end[i] - first[i] for i in end), default=0.0)
    if length <= 0:
        raise ValueError(f"{source}: has no packets with times; it cannot be repeated")
    if step:
        unit = max(step.values())
        length = math.ceil(length / unit - 1e-6) * unit
    repeats = max(1, round(seconds / length))
    with av.open(str(path), "w") as out:
        with av.open(str(source)) as first:
            streams = {s.index: out.add_stream_from_template(s) for s in first.streams if s.type in ("video", "audio")}
        last: dict[int, int] = {}  # each stream's latest decoding time written
        for k in range(repeats):
            with av.open(str(source)) as clip:
                for packet in clip.demux(*[clip.streams[i] for i in streams]):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    index, shift = packet.stream.index, round(k * length / packet.time_base)
                    if packet.dts + shift <= last.get(index, -2**62):
                        continue
                    packet.pts = packet.pts + shift if packet.pts is not None else None
                    packet.dts += shift
                    last[index] = packet.dts
                    packet.stream = streams[index]
                    out.mux(packet)
    return repeats
