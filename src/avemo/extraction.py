"""``avemo extract``: discover clips, decode them, run the backbones, fill the cache.

DataLoader worker processes read the clips: with the PyAV decoder they decode and sample the frames, with
DALI they only demux (DALI decodes the chosen frames on the GPU) and decode the audio. A thread turns each
batch into backbone inputs while this one runs the backbones on the previous batch. A clip that fails is
reported and skipped; finished entries are skipped on the next run, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from avemo.cache import DAMAGED, CacheError, FeatureCache
from avemo.cache.store import SUFFIX
from avemo.distributed import World, join, leave
from avemo.engines.backbones import build_backbones
from avemo.engines.runtime import Backend, Runtime, RuntimeRequest
from avemo.files import DiskFullError
from avemo.machine import decode_workers
from avemo.pipeline.clips import Skipped
from avemo.pipeline.discover import discover
from avemo.pipeline.batches import InputBatch, dali_inputs, pyav_inputs, resolve_decoder
from avemo.pipeline.dali import DaliFrames
from avemo.pipeline.landmarks import LandmarkSource
from avemo.pipeline.prepare import ClipDataset, FailedClip, keep_as_list
from avemo.errors import AvemoError, SetupError
from avemo.files import atomic_write
from avemo.spec import AudioConfig, BackboneConfig, FeatureSpec, LandmarkSettings, VideoConfig


@dataclass(frozen=True)
class ExtractConfig:
    data: Path | None  # the dataset folder (None for a manifest)
    cache: Path
    dataset: str = "ravdess"
    vocal_channels: tuple[str, ...] = ("speech", "song")
    speaker_pattern: str | None = None  # folders: the regex whose group "speaker" names a clip's speaker
    manifest: Path | None = None  # manifest: the CSV/JSONL listing the clips
    backbones: BackboneConfig = field(default_factory=BackboneConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    backend: str = "auto"
    engines: Path | None = None  # graphs from avemo export, for the onnxruntime backend
    precision: str = "fp32"  # fp32 or fp16 graphs/engines; fp32, fp16 (CUDA) or bf16 for torch
    compile: bool = False  # torch backend: torch.compile the backbones
    cuda_graphs: bool = False  # torch backend on CUDA: replay captured CUDA graphs
    device: str = "auto"
    decoder: str = "auto"  # pyav, dali, or auto (dali on a CUDA device when DALI is installed)
    batch_size: int = 2  # clips per backbone batch (x6 snippets)
    workers: int | None = None  # decoding processes; 0 decodes in this process; None: machine.decode_workers
    dtype: str = "float16"
    landmarks: Path | None = None  # --crop landmarks: the folder of OpenFace CSVs named after the clips
    landmark_settings: LandmarkSettings = field(default_factory=LandmarkSettings)

    def __post_init__(self) -> None:
        if self.video.crop_mode.reads_landmarks and self.landmarks is None:
            raise SetupError("--crop landmarks needs --landmarks DIR (the OpenFace CSVs named after the clips)")

    @property
    def runtime(self) -> RuntimeRequest:
        """The runtime asked for; TensorRT engines are tuned for one batch of clips x snippets."""
        return RuntimeRequest(backend=self.backend, device=self.device, precision=self.precision,
                              engines=self.engines, compile=self.compile, cuda_graphs=self.cuda_graphs,
                              opt_batch=self.batch_size * self.video.snippets)


@dataclass
class ExtractSummary:
    found: int = 0
    cached_before: int = 0
    written: int = 0
    failed: list[Skipped] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)  # by discovery
    no_face: list[Path] = field(default_factory=list)  # --crop face found no face: centre crop used
    damaged: list[tuple[Path, str]] = field(default_factory=list)  # cached entries that failed verification: rebuilt
    # --crop landmarks: clips whose landmark file was missing or too unsure, and the box used instead
    # ("face": the detector's, "center": neither)
    no_landmarks: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
    setup_seconds: float = 0.0  # discovery, weights, cache check: before the first clip
    decode_seconds: float = 0.0  # summed over clips, in the workers
    backbone_seconds: float = 0.0
    backbones: str = ""  # what runs, for the start line: architectures and input normalisation
    backend: str = ""
    decoder: str = ""
    device: str = ""
    spec: FeatureSpec | None = None
    entries: int = 0
    ranks: int = 1  # torchrun processes whose shares this summary counts

    @property
    def clips_per_second(self) -> float:
        """Throughput of the extraction loop (set-up excluded, as it does not grow with the dataset)."""
        busy = self.seconds - self.setup_seconds
        return self.written / busy if busy > 0 else 0.0


class NothingToExtract(AvemoError):
    """Discovery found no usable clip; ``skipped`` says why each file was passed over."""

    def __init__(self, message: str, skipped: list[Skipped]) -> None:
        super().__init__(message)
        self.skipped = skipped


def feature_shapes(video: VideoConfig, channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Cache shapes: video (S, C, T'H'W') from the layer4 strides (16 in time, 32 in space), audio (S, 512)."""
    t = -(-video.frames // 16)
    s = -(-video.size // 32)
    return (video.snippets, channels, t * s * s), (video.snippets, 512)


def _init_worker(_: int) -> None:
    torch.set_num_threads(1)  # decoding workers only run torch.stft; leave the cores to the backbones


def extract_batch(backend: Backend, batch: InputBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of a batch: video (B, S, C, L), audio (B, S, 512)."""
    b = len(batch.clips)
    v, a = backend.video(batch.video), backend.audio(batch.audio)
    return v.view(b, -1, *v.shape[1:]), a.view(b, -1, a.shape[-1])


def run_extract(config: ExtractConfig, on_start: Callable[[int, ExtractSummary], None] | None = None,
                on_clip: Callable[[str], None] | None = None) -> ExtractSummary:
    """Fill ``config.cache`` with features of every usable clip under ``config.data``.

    Raises ``FileNotFoundError``, ``WeightsError``, ``CacheError`` or ``RuntimeError`` for a set-up that
    cannot work, and ``DiskFullError`` (naming the cache) when the disk fills; bad clips never raise, they end
    up in ``summary.failed``.

    Under torchrun every rank takes its own fixed share of the clips (:meth:`World.shard`) on its own device
    and writes its own entries; rank 0 creates the cache first, and once all ranks are done it writes the
    index and returns the summary of all of them (the callbacks run on rank 0 only, for its share).
    """
    start = time.perf_counter()
    # Every runtime check, once, before a world is joined or anything is built or written.
    runtime = config.runtime.resolve()
    world = join(runtime.device)
    # Under torchrun each rank takes its own GPU: a device of the same type, so the checks above still hold.
    runtime = replace(runtime, device=world.device(runtime.device))
    if not world.main:
        on_start = on_clip = None
    try:
        summary = _run(config, world, runtime, start, on_start, on_clip)
    finally:
        leave(world)
    return summary


def _run(config: ExtractConfig, world: World, runtime: Runtime, start: float,
         on_start: Callable[[int, ExtractSummary], None] | None, on_clip: Callable[[str], None] | None) -> ExtractSummary:
    # Cheap checks first (the runtime's are done): nothing is built or created for a set-up that cannot work.
    device = runtime.device
    decoder = resolve_decoder(config.decoder, device)
    found = discover(config.data, config.dataset, config.vocal_channels, config.speaker_pattern, config.manifest)
    if not found.clips:
        raise NothingToExtract(f"{config.manifest or config.data}: no usable clip ({len(found.skipped)} files "
                               f"skipped); check the folder and --dataset {config.dataset}", found.skipped)
    summary = ExtractSummary(found=len(found.clips), skipped=found.skipped)
    landmarks = config.landmark_settings if config.video.crop_mode.reads_landmarks else None
    video_net, audio_net, spec = build_backbones(config.backbones, config.video, config.audio, config.dtype,
                                                 landmarks=landmarks)
    video_shape, audio_shape = feature_shapes(config.video, video_net.net.feature_channels)
    video_backbone, audio_backbone = spec.video_backbone, spec.audio_backbone
    # The runtime before the cache: exported graphs that do not fit the spec are refused before anything is made.
    backend = runtime.create(video_net, audio_net, spec)
    if world.main:  # first, alone: it creates the cache and clears temporaries of killed runs
        cache = FeatureCache.create_or_open(config.cache, spec, video_shape, audio_shape)
    world.barrier()
    if not world.main:
        cache = FeatureCache.create_or_open(config.cache, spec, video_shape, audio_shape)
    world.barrier()  # no rank writes before every rank has opened (opening clears stale temporaries)
    frames = DaliFrames(config.video, device, config.batch_size) if decoder != "pyav" else None
    summary.backend, summary.device, summary.spec, summary.decoder = backend.name, str(device), spec, decoder
    summary.backbones = (f"video {video_backbone.arch} ({video_backbone.weights.release} weights, "
                         f"{video_backbone.normalization.name} input), audio {audio_backbone.arch} "
                         f"({audio_backbone.weights.release} weights)")

    mine = world.shard(found.clips)
    cached = [c.clip_id for c in mine if cache.has(c.clip_id)]
    # Every resume reads its cached entries whole and checks their checksums (a few seconds for RAVDESS, see
    # benchmarks/RESULTS.md): a damaged entry is extracted again, never kept.
    summary.damaged = [(check.path, check.reason) for check in cache.verify(cached) if check.status == DAMAGED]
    rebuild = {path.name[: -len(SUFFIX)] for path, _ in summary.damaged}
    done = set(cached) - rebuild
    todo = [c for c in mine if c.clip_id not in done]
    summary.cached_before = len(done)
    summary.setup_seconds = time.perf_counter() - start
    if on_start is not None:
        on_start(len(todo), summary)
    source = LandmarkSource(config.landmarks, config.landmark_settings) if landmarks is not None else None
    workers = config.workers if config.workers is not None else decode_workers(device.type)
    loader = DataLoader(ClipDataset(todo, config.video, config.audio, decoder, source), batch_size=config.batch_size,
                        num_workers=workers, collate_fn=keep_as_list, worker_init_fn=_init_worker,
                        prefetch_factor=2 if workers else None)
    def report_failed(failed: list[FailedClip]) -> None:
        for bad in failed:
            summary.failed.append(Skipped(bad.record.path, bad.error.reason, bad.error.hint))
            if on_clip is not None:
                on_clip(bad.record.clip_id)

    def store(batch: InputBatch) -> None:
        report_failed(batch.failed)
        if not batch.clips:
            return
        tick = time.perf_counter()
        video, audio = extract_batch(backend, batch)
        summary.backbone_seconds += time.perf_counter() - tick
        for clip, v, a in zip(batch.clips, video, audio):
            try:
                crop = clip.box.to_json() if clip.box is not None else None
                cache.write(clip.record.clip_id, v, a, clip.record.to_json(), clip.frame_count, clip.duration,
                            produced_by=f"{backend.name}, {decoder} decoder", crop=crop)
            except CacheError as err:  # e.g. features that overflow float16: this clip only
                summary.failed.append(Skipped(clip.record.path, "features not stored", str(err)))
            else:
                summary.decode_seconds += clip.seconds
                summary.written += 1
                if clip.box is not None and clip.box.source != config.video.crop:  # the crop fell back
                    if config.video.crop_mode.reads_landmarks:
                        summary.no_landmarks.append((clip.record.path, clip.box.source))
                    else:
                        summary.no_face.append(clip.record.path)
            if on_clip is not None:
                on_clip(clip.record.clip_id)

    side = torch.cuda.Stream(device) if device.type == "cuda" else None

    def inputs(ready: list) -> tuple[InputBatch, torch.cuda.Event | None]:
        if side is None:
            return (dali_inputs(frames, ready, config.audio, device) if frames is not None else pyav_inputs(ready)), None
        # Its own stream, so its kernels and copies do not queue behind the backbones' on the default stream.
        with torch.cuda.stream(side):
            batch = dali_inputs(frames, ready, config.audio, device) if frames is not None else pyav_inputs(ready)
            ready_event = torch.cuda.Event()
            ready_event.record(side)
        return batch, ready_event

    def consume(prepared: tuple[InputBatch, torch.cuda.Event | None]) -> None:
        batch, ready_event = prepared
        if ready_event is not None:
            current = torch.cuda.current_stream(device)
            current.wait_event(ready_event)
            for tensor in (batch.video, batch.audio):
                if tensor.is_cuda:
                    tensor.record_stream(current)  # made on the side stream, used on this one
        store(batch)

    # One thread turns batch N+1 into backbone inputs (DALI decoding, GPU spectrograms) while this one runs the
    # backbones on batch N; both mostly wait on native code that releases the GIL.
    full = False
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="avemo-inputs") as pool:
            pending: Future | None = None
            for batch in loader:
                report_failed([c for c in batch if isinstance(c, FailedClip)])
                ready = [c for c in batch if not isinstance(c, FailedClip)]
                upcoming = pool.submit(inputs, ready) if ready else None
                if pending is not None:
                    consume(pending.result())
                pending = upcoming
            if pending is not None:
                consume(pending.result())
    except DiskFullError as err:
        # Stop at once: every later entry would fail the same way. Finished entries are whole (atomic writes)
        # and the temporary file is gone, so the same command resumes once there is space.
        full = True
        entries = len(cache.scan()[0])
        with contextlib.suppress(DiskFullError):  # the index is a summary the next run rewrites
            cache.write_index()
        raise DiskFullError(err.errno, f"{err.reason} after {entries} entries; free space and run the same "
                            "command to resume", str(config.cache)) from None
    finally:
        summary.seconds = time.perf_counter() - start
        if world.size == 1 and not full:
            summary.entries = len(cache.write_index())
            write_report(config.cache, summary)
    if world.size > 1:  # reached by every rank, or by none (torchrun stops the others when one dies)
        summary = merge(world.gather(summary))
        world.barrier()
        if world.main:
            summary.entries = len(cache.write_index())
            write_report(config.cache, summary)
    return summary


def write_report(cache: Path, summary: ExtractSummary) -> None:
    """``CACHE/report.json``: every file skipped or failed, and the clips whose face was not found."""
    def items(skips: list[Skipped]) -> list[dict[str, str]]:
        return [{"path": str(s.path), "reason": s.reason, "detail": s.detail} for s in skips]

    report = {"skipped": items(summary.skipped), "failed": items(summary.failed),
              "no_face": [str(p) for p in summary.no_face],
              "no_landmarks": [{"path": str(p), "crop": source} for p, source in summary.no_landmarks]}
    atomic_write(cache / "report.json", json.dumps(report, indent=1).encode())


def merge(parts: list[ExtractSummary]) -> ExtractSummary:
    """One summary of all ranks' shares (rank 0's set-up, the slowest rank's wall time)."""
    total = parts[0]
    for part in parts[1:]:
        total.cached_before += part.cached_before
        total.written += part.written
        total.failed += part.failed
        total.no_face += part.no_face
        total.damaged += part.damaged
        total.no_landmarks += part.no_landmarks
        total.decode_seconds += part.decode_seconds
        total.backbone_seconds += part.backbone_seconds
        total.seconds = max(total.seconds, part.seconds)
    total.device = ", ".join(sorted({p.device for p in parts}))
    total.ranks = len(parts)
    return total


