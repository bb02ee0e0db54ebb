"""The benchmark suite behind ``avemo bench``: decoding, backbones, end-to-end extraction, a fusion step.

Each section compares its rows side by side in one run, on the same synthetic clips, as medians over repeats
(after a warm-up, except the seed's end-to-end row and avemo's extraction runs, whose set-up is excluded by
their own clock), and reads every row as a multiple of the section's baseline: the seed's approach (per-frame
seeks; a 256 x 256 squash through a train-mode 3D ResNet with autograd, one clip at a time; three forward
passes per triplet). The backbone rows also give their ratio to torch eager fp32. Beside the figures stand
the physical limits: FLOPs per clip counted by torch's FLOP counter, the device's measured matrix-multiply
peak, the decoder's frames per second.
"""

from __future__ import annotations

import math
import platform
import statistics
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

import torch

from avemo.choices import Dtype
from avemo.engines.backbones import AudioFeatures, VideoFeatures, build_audio, build_video
from avemo.engines.runtime import Backend, RuntimeRequest
from avemo.machine import BF16_EMULATED, cpu_features, native_bf16
from avemo.spec import AudioConfig, BackboneConfig, FeatureSpec, VideoConfig


@dataclass(frozen=True)
class BenchConfig:
    quick: bool = False  # a smaller, shorter run (see benchmarks/RESULTS.md for its measured time)
    device: str = "auto"
    workdir: Path | None = None  # synthetic clips and caches; a temporary folder by default
    train_scale: bool = False  # only the RAVDESS-scale 6-fold training section (minutes; not in the default run)
    train_folds: tuple[int, ...] | None = None  # that section's folds (default all 6)
    timeline_run: Path | None = None  # only the timeline section, with this run (e.g. the demo's)
    timeline_seconds: float | None = None  # its clip's length (default 120 s; 30 s quick)

    @property
    def repeats(self) -> int:
        return 2 if self.quick else 3

    @property
    def clips(self) -> int:
        return 2 if self.quick else 4

    @property
    def frame_size(self) -> tuple[int, int]:
        return (640, 360) if self.quick else (1280, 720)  # RAVDESS is 1280 x 720


@dataclass
class Row:
    name: str
    seconds: float  # median per unit (clip or step)
    unit: str  # what one ``seconds`` covers
    ratio: float = 1.0  # baseline seconds / these seconds: "x times the baseline"
    note: str = ""


@dataclass
class Section:
    title: str
    baseline: str
    rows: list[Row] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)

    def add(self, name: str, seconds: float, unit: str, note: str = "") -> None:
        base = self.rows[0].seconds if self.rows else seconds
        self.rows.append(Row(name, seconds, unit, base / seconds if seconds > 0 else float("inf"), note))


@dataclass
class BenchReport:
    device: str
    machine: str
    date: str
    quick: bool
    sections: list[Section] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        lines = [f"# avemo bench{' --quick' if self.quick else ''}: {self.device}, {self.machine}, {self.date}", ""]
        for section in self.sections:
            lines += [f"## {section.title}", "", f"Baseline: {section.baseline}.", "",
                      "| row | seconds | per | x baseline | note |", "|---|---|---|---|---|"]
            lines += [f"| {r.name} | {r.seconds:.4f} | {r.unit} | {r.ratio:.2f}x | {r.note} |" for r in section.rows]
            lines += [""] + [f"- {limit}" for limit in section.limits] + [""]
        return "\n".join(lines)


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` untimed ones (CUDA synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def matmul_peak(device: torch.device) -> str:
    """Measured peak of large matrix products in fp32 and bf16 (what the backbones' convolutions can hope for)."""
    n = 2048 if device.type == "cpu" else 8192
    parts = []
    # Emulated bf16 would take minutes here and print a meaningless rate (issue 12).
    dtypes = (torch.float32, torch.bfloat16) if device.type == "cuda" or native_bf16() else (torch.float32,)
    for dtype in dtypes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        seconds = median_seconds(lambda: a @ a, repeats=3)
        parts.append(f"{2 * n ** 3 / seconds / 1e9:.0f} GFLOP/s {str(dtype).split('.')[-1]}")
    return f"measured matrix-product rate ({n}x{n}; a reference for the device, not a ceiling): {', '.join(parts)}"


def count_gflop(net: torch.nn.Module, example: torch.Tensor) -> float:
    """Forward GFLOP of ``net`` on ``example`` as torch's FLOP counter counts them (multiply-add = 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        net(example)
    return counter.get_total_flops() / 1e9


def _synth(root: Path, config: BenchConfig, codec: str = "h264", faces: str = "drawn") -> list[Path]:
    from avemo.synth import SynthConfig, synthesize

    width, height = config.frame_size
    return synthesize(root, actors=1, clips_per_actor=config.clips, seed=3,
                      config=SynthConfig(width=width, height=height, codec=codec, faces=faces))


def bench_decoding(paths: list[Path], vp9: list[Path], config: BenchConfig, device: torch.device) -> Section:
    from avemo.bench.seed_extract import seek_frames
    from avemo.pipeline.decode import decode_clip
    from avemo.pipeline.face import current_detector
    from avemo.pipeline.prepare import crop_box, detection_frames, encode_clip, snippet_regions
    from avemo.pipeline.video import sample_indices, snippets_from_regions
    from avemo.pipeline.discover import discover
    from avemo.spec import DECODE_SIDE, LBP_CASCADE, FaceDetector

    video, audio = VideoConfig(), AudioConfig()
    width, height = config.frame_size
    section = Section(f"Video decoding, {len(paths)} synthetic {width}x{height} clips",
                      "the seed's per-frame seeks (96 seeks, frames squashed to 256 x 256)")
    section.add("seed: seek per frame", median_seconds(lambda: [seek_frames(p) for p in paths], config.repeats) / len(paths), "clip")
    frames = []
    pyav = median_seconds(lambda: frames.append(sum(len(decode_clip(p, video, audio.sample_rate).times) for p in paths)),
                          config.repeats) / len(paths)
    section.add("pyav: one pass, scaled while decoding (H.264)", pyav, "clip")
    section.limits.append(f"PyAV decodes {frames[-1] / len(paths) / pyav:.0f} frames/s on this machine (one process)")
    faces = paths[0].parent.parent.parent / "faces"
    face_paths = sorted(faces.rglob("*.mp4"))
    centre_cfg, face_cfg = VideoConfig(crop="center"), VideoConfig(crop="face")

    def crop(cfg: VideoConfig, detector: FaceDetector | None = None) -> None:
        for p in face_paths:
            decoded = decode_clip(p, cfg, audio.sample_rate)
            index = sample_indices(decoded.times, decoded.duration, cfg.snippets, cfg.frames)
            box = crop_box(cfg, [decoded.frames[i] for i in detection_frames(index)], decoded.size, detector=detector)
            snippets_from_regions(decoded.frames, index, snippet_regions(cfg, decoded.size, box, len(index)), cfg.size)

    centre_s = median_seconds(lambda: crop(centre_cfg), config.repeats) / len(face_paths)
    section.add("pyav + centre crop, clips with a photographed face", centre_s, "clip")
    from importlib.metadata import version

    detectors = {current_detector().detector: current_detector(), LBP_CASCADE: FaceDetector(LBP_CASCADE, version("scikit-image"))}
    for name, detector in detectors.items():
        face_s = median_seconds(lambda: crop(face_cfg, detector), config.repeats) / len(face_paths)
        section.add(f"pyav + face crop, {name} (decode at {DECODE_SIDE}, detect on each snippet's middle frame, "
                    "cut and scale)", face_s, "clip")
        section.limits.append(f"the face crop with {name} costs {face_s - centre_s:.3f} s per clip over the centre "
                              f"crop ({face_s / centre_s:.2f}x its decoding time)")
    from avemo.pipeline.dali import DaliFrames, dali_installed

    if not dali_installed():
        section.limits.append("DALI: not installed (pip install 'avemo[dali]' or 'avemo[gpu]'), no DALI rows")
        return section
    gpu = device.type == "cuda"
    clips = discover(paths[0].parent.parent if gpu else vp9[0].parent.parent).clips
    dali = DaliFrames(video, device, batch_size=len(clips))
    if not gpu:
        vp9_pyav = median_seconds(lambda: [decode_clip(p, video, audio.sample_rate) for p in vp9], config.repeats) / len(vp9)
        section.add("pyav on the same clips as VP9", vp9_pyav, "clip")

    def dali_path() -> None:  # the demuxing and audio decoding the DALI path still does on the CPU included
        dali([encode_clip(c, video, audio, cpu_decoder=not gpu).request for c in clips])

    seconds = median_seconds(dali_path, config.repeats) / len(clips)
    section.add(f"dali ({'GPU decoder, H.264' if gpu else 'CPU, VP9: the CPU decoder reads no H.264'}): "
                "demux + audio, then 96 sampled frames decoded, scaled and cropped", seconds, "clip")
    return section


Maker = Callable[[], Backend]


def _maker(request: RuntimeRequest, video_net: VideoFeatures, audio_net: AudioFeatures, device: torch.device,
           spec: FeatureSpec | None = None) -> Maker:
    """The backend ``request`` asks for on ``device``, built as extract builds it (when the row is timed)."""
    return lambda: request.resolve(device).create(video_net, audio_net, spec)


def _backends(video_net: VideoFeatures, audio_net: AudioFeatures, device: torch.device,
              quick: bool) -> list[tuple[str, Maker]]:
    """(label, maker) of every torch runtime worth timing on ``device``; torch eager fp32 first."""
    requests = [("torch eager fp32", RuntimeRequest(backend="torch"))]
    if device.type == "cuda" or native_bf16():
        requests.append(("torch bf16", RuntimeRequest(backend="torch", precision="bf16")))
    if device.type == "cuda":
        requests += [("torch fp16", RuntimeRequest(backend="torch", precision="fp16")),
                     ("torch fp16 + CUDA graphs", RuntimeRequest(backend="torch", precision="fp16", cuda_graphs=True))]
        if not quick:
            requests.append(("torch fp16 compiled", RuntimeRequest(backend="torch", precision="fp16", compile=True)))
    return [(label, _maker(request, video_net, audio_net, device)) for label, request in requests]


def _exported_backends(video_net: VideoFeatures, audio_net: AudioFeatures, spec: FeatureSpec,
                       backbones: BackboneConfig, device: torch.device, work: Path) -> list[tuple[str, Maker]]:
    """ONNX Runtime (and TensorRT on CUDA) rows: the graphs of ``backbones`` are exported first, which takes a
    while; ``spec`` is what the nets already built compute, which the graphs are checked against."""
    from avemo.engines.runtime import onnxruntime_installed
    from avemo.engines.tensorrt import tensorrt_installed

    if not onnxruntime_installed():
        return []
    from avemo.export.onnx import ExportConfig, export_backbones

    engines = work / "engines"
    rows = []
    for precision in ("fp32", "fp16"):
        export_backbones(ExportConfig(engines=engines, backbones=backbones, precision=precision))
        runtimes = [("onnxruntime", f"onnxruntime {precision} graph")]
        if device.type == "cuda" and tensorrt_installed():
            runtimes.append(("tensorrt", f"tensorrt {precision}"))
        for backend, label in runtimes:
            request = RuntimeRequest(backend=backend, precision=precision, engines=engines)
            rows.append((label, _maker(request, video_net, audio_net, device, spec)))
    return rows


def bench_backbones(config: BenchConfig, device: torch.device, work: Path) -> Section:
    from avemo.bench.seed_extract import seed_backbone

    backbones = BackboneConfig()
    video_net, video_backbone = build_video(backbones)
    audio_net, audio_backbone = build_audio(backbones)
    v, a = VideoConfig(), AudioConfig()
    section = Section("Backbones per runtime (3D ResNet-101 on 6 snippets + ResNet-18 on 6 segments per clip)",
                      "the seed's video backbone: 256 x 256 squash, train mode + autograd, one clip at a time")
    seed_net = build_video(backbones)[0].net.to(device)
    seed_input = torch.rand(6, 3, 16, 256, 256, device=device) * 255
    seed_gflop = 6 * count_gflop(seed_net, seed_input[:1])
    # The seed's rows are the slowest of all (benchmarks/RESULTS.md): --quick times one call, without a warm-up.
    seed_seconds = median_seconds(lambda: seed_backbone(seed_net, seed_input), max(1, config.repeats - 1),
                                  warmup=0 if config.quick else 1)
    section.add("seed (video only)", seed_seconds, "clip", f"{seed_gflop / seed_seconds:.0f} GFLOP/s")
    seed_net = seed_input = None  # freed before the next rows
    snippet_gflop = count_gflop(video_net, torch.zeros(1, 3, v.frames, v.size, v.size, dtype=torch.uint8))
    segment_gflop = count_gflop(audio_net, torch.zeros(1, a.freq_bins, a.segment_frames))
    clip_gflop = 6 * (snippet_gflop + segment_gflop)
    rows = _backends(video_net, audio_net, device, config.quick)
    if device.type == "cpu" and not native_bf16():
        section.limits.append(f"torch bf16: skipped, {BF16_EMULATED} ({cpu_features().describe()})")
    if not config.quick:
        # The graphs are exported with the default settings, so the default spec is theirs.
        spec = FeatureSpec.of(video_backbone, audio_backbone, v, a, Dtype.float16.value)
        rows += _exported_backends(video_net, audio_net, spec, backbones, device, work)
    for batch in (1,) if config.quick else (1, 4):
        snippets = torch.randint(0, 256, (6 * batch, 3, v.frames, v.size, v.size), dtype=torch.uint8, device=device)
        segments = torch.randn(6 * batch, a.freq_bins, a.segment_frames, device=device)
        eager = None
        for label, make in rows:
            try:
                backend = make()
            except Exception as err:  # noqa: BLE001 - a runtime that cannot start here is reported, not fatal
                section.limits.append(f"{label}: not measured ({type(err).__name__}: {str(err).splitlines()[0][:120]})")
                continue
            seconds = median_seconds(lambda: (backend.video(snippets), backend.audio(segments)), config.repeats) / batch
            eager = eager or seconds
            section.add(f"{label}, {batch} clip{'s' if batch > 1 else ''} per call", seconds, "clip",
                        f"{clip_gflop / seconds:.0f} GFLOP/s; {eager / seconds:.2f}x torch eager fp32")
    section.limits += [f"FLOPs per clip counted by torch: video {6 * snippet_gflop:.1f} GFLOP ({snippet_gflop:.1f} per "
                       f"16x{v.size}x{v.size} snippet), audio {6 * segment_gflop:.1f} GFLOP "
                       f"({segment_gflop:.2f} per {a.freq_bins}x{a.segment_frames} segment); the seed's 256 x 256 "
                       f"squash: {seed_gflop:.0f} GFLOP of video per clip",
                       matmul_peak(device)]
    return section


def bench_extract(paths: list[Path], config: BenchConfig, device: torch.device, work: Path) -> Section:
    from avemo.bench.seed_extract import seed_backbone, seek_frames
    from avemo.extraction import ExtractConfig, run_extract

    data = paths[0].parent.parent
    section = Section(f"Feature extraction end to end, {len(paths)} clips", "the seed's approach, one clip at a time")
    seed_net = build_video(BackboneConfig())[0].net.to(device)

    def seed() -> None:
        for p in paths:
            seed_backbone(seed_net, seek_frames(p).to(device))

    section.add("seed: seek per frame + 256x256 squash + train-mode backbone (video only)",
                median_seconds(seed, 1 if config.quick else config.repeats, warmup=0) / len(paths), "clip",
                "no warm-up: seconds per clip")
    seed_net = None  # freed before avemo's runs
    runs = iter(range(100))

    def avemo(decoder: str) -> float:
        summary = run_extract(ExtractConfig(data=data, cache=work / f"cache-{decoder}-{next(runs)}", device=str(device),
                                            decoder=decoder, batch_size=max(1, len(paths) // 2)))
        if summary.written < len(paths):
            raise RuntimeError(f"avemo extract wrote {summary.written} of {len(paths)} benchmark clips")
        return 1 / summary.clips_per_second

    note = f"batches of {max(1, len(paths) // 2)} clips; model set-up excluded"
    section.add("avemo extract, pyav decoder (video + audio)",
                statistics.median(avemo("pyav") for _ in range(config.repeats)), "clip", note)
    if device.type == "cuda":
        from avemo.pipeline.dali import dali_installed

        if dali_installed():
            section.add("avemo extract, dali decoder (video + audio)",
                        statistics.median(avemo("dali") for _ in range(config.repeats)), "clip", note)
    return section


def bench_training(config: BenchConfig, device: torch.device) -> Section:
    from avemo.bench.seed_fusion import SeedFusion, seed_step
    from avemo.fusion.losses import EmotionMetricLoss
    from avemo.fusion.model import FusionConfig, FusionModel

    batch = 1 if config.quick else 4  # the seed's step is slow on a CPU (benchmarks/RESULTS.md)
    ours = 8  # avemo's batch: labels repeat, so in-batch mining finds triplets and the metric term is timed
    torch.manual_seed(0)
    video = torch.randn(max(3 * batch, ours), 6, 2048, 16, device=device)
    audio = torch.randn(max(3 * batch, ours), 6, 512, device=device)
    labels = torch.arange(ours, device=device) % 4
    section = Section("Fusion training step, features of the real shapes, seconds per training clip",
                      f"the seed's loop at batch {batch} (3 forward passes per triplet, 2048 x 2048 channel scores)")
    seed_model = SeedFusion().to(device)
    seed_opt = torch.optim.Adam(seed_model.parameters(), lr=1e-4)
    triplet = torch.nn.TripletMarginLoss(margin=1.0)
    a, p, n = (slice(i * batch, (i + 1) * batch) for i in range(3))
    section.add("seed", median_seconds(lambda: seed_step(seed_model, seed_opt, triplet, (video[a], audio[a]),
                                                         (video[p], audio[p]), (video[n], audio[n])),
                                       max(1, config.repeats - 1), warmup=0 if config.quick else 1) / batch,
                "clip", "one step, no warm-up" if config.quick else "")
    seed_model = seed_opt = None  # freed before avemo's step
    model = FusionModel(FusionConfig()).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss = EmotionMetricLoss()

    def step() -> None:
        embeddings, logits = model(video[:ours], audio[:ours])
        optimizer.zero_grad()
        loss(embeddings, logits, labels)["loss"].backward()
        optimizer.step()

    section.add(f"avemo at batch {ours} (1 forward, in-batch triplet mining, XCiT channel attention)",
                median_seconds(step, config.repeats) / ours, "clip")
    return section


RAVDESS_ACTORS = 24


def ravdess_scale_records() -> list[dict[str, Any]]:
    """Index records of every RAVDESS audio-visual clip: 24 actors x 60 speech + 23 x 44 song = 2,452.

    Speech has all 8 emotions, song 6 (no disgust or surprise); neutral has no strong intensity; two
    statements, two repetitions; actor 18 recorded no song.
    """
    from avemo.emotions import EMOTIONS

    records = []
    for actor in range(1, RAVDESS_ACTORS + 1):
        for channel, emotions in ((1, range(1, 9)), (2, range(1, 7))):
            if channel == 2 and actor == 18:
                continue
            for emotion in emotions:
                for intensity in (1,) if emotion == 1 else (1, 2):
                    for statement in (1, 2):
                        for repetition in (1, 2):
                            clip_id = f"01-{channel:02d}-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"
                            records.append({"clip_id": clip_id, "dataset": "ravdess", "actor": actor,
                                            "gender": "male" if actor % 2 else "female",
                                            "emotion": EMOTIONS[emotion - 1],
                                            "vocal_channel": "speech" if channel == 1 else "song"})
    return records


def build_ravdess_scale_cache(root: Path, seed: int = 0, limit: int | None = None) -> int:
    """A float16 cache of RAVDESS's size (or its first ``limit`` clips) with random features of the real shapes;
    returns the entry count.

    The features carry a weak per-emotion direction under per-actor offsets and noise, so that training
    learns something and early stopping behaves as on data, not as on pure noise (which stops at once).
    """
    from avemo.cache import FeatureCache
    from avemo.emotions import EMOTIONS
    from avemo.spec import HARA_2020, RANDOM, AudioBackbone, FeatureSpec, VideoBackbone, WeightsSpec

    records = ravdess_scale_records()[:limit]
    # No backbone made these features: the spec says so through weights no file has.
    weights = WeightsSpec(f"bench-random-features-seed-{seed}", RANDOM)
    spec = FeatureSpec(VideoBackbone("r3d101", weights, HARA_2020), AudioBackbone(weights))
    cache = FeatureCache.create_or_open(root, spec, (6, 2048, 16), (6, 512))
    g = torch.Generator().manual_seed(seed)
    emotion_v = torch.randn(len(EMOTIONS), 1, 2048, 1, generator=g)
    emotion_a = torch.randn(len(EMOTIONS), 1, 512, generator=g)
    actor_v = torch.randn(RAVDESS_ACTORS + 1, 1, 2048, 1, generator=g)
    for record in records:
        k, actor = EMOTIONS.index(record["emotion"]), record["actor"]
        video = (torch.randn(6, 2048, 16, generator=g) + 0.3 * emotion_v[k] + 0.5 * actor_v[actor]).relu()
        audio = (torch.randn(6, 512, generator=g) + 0.3 * emotion_a[k]).relu()
        cache.write(record["clip_id"], video, audio, record, 96, 3.5, produced_by="bench: random features")
    cache.write_index()
    return len(records)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def bench_train_scale(config: BenchConfig, work: Path, on_progress: Callable[[str], None] | None = None) -> Section:
    """A full ``avemo train`` with default settings on a RAVDESS-sized cache of random features."""
    from avemo.fusion.runs import train_run
    from avemo.fusion.train import TrainConfig

    say = on_progress or (lambda _: None)
    cache = work / "ravdess-scale-cache"
    start = time.perf_counter()
    say("train-scale: writing a cache of 2,452 clips of random features (video (6, 2048, 16), audio (6, 512))")
    entries = build_ravdess_scale_cache(cache)
    build_s = time.perf_counter() - start
    train_config = TrainConfig(folds=list(config.train_folds) if config.train_folds else None)
    section = Section(f"RAVDESS-scale training: {entries} clips, 24 actors, 6 actor folds, default settings "
                      f"(batch {train_config.batch_size}, at most {train_config.epochs} epochs, patience "
                      f"{train_config.patience})", "the first fold")
    marks: list[tuple[str, float, float]] = []  # (fold, wall start, cpu start)
    epochs: dict[str, int] = {}

    def on_fold(fold) -> None:
        marks.append((fold.name, time.perf_counter(), time.process_time()))
        say(f"train-scale: {fold.name} ({len(fold.train)} training clips)")

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        epochs[marks[-1][0]] = epoch

    load_start = time.perf_counter()
    results = train_run(cache, work / "ravdess-scale-run", train_config, on_fold=on_fold, on_epoch=on_epoch)
    end, end_cpu = time.perf_counter(), time.process_time()
    load_s = marks[0][1] - load_start
    bounds = marks[1:] + [("end", end, end_cpu)]
    for (name, t0, c0), (_, t1, c1), result in zip(marks, bounds, results):
        n = epochs.get(name, 1)
        section.add(f"{name}: {result.epochs_run} epochs (best {result.best_epoch}, validation UAR "
                    f"{result.best_val_uar:.2f})", (t1 - t0) / 60, "fold (minutes)",
                    f"{(t1 - t0) / n:.1f} s/epoch wall, {(c1 - c0) / n:.1f} s/epoch CPU")
    total = end - load_start
    section.limits += [f"whole run: {total / 60:.1f} min wall for {len(results)} folds, of which loading the cache "
                       f"{load_s:.1f} s; peak resident memory of the process {_peak_rss_mb():.0f} MB",
                       f"writing the cache (not timed above): {build_s:.0f} s",
                       f"at most {train_config.epochs} epochs per fold: "
                       f"{max((r.seconds * 60 / max(1, epochs.get(r.name.split(':')[0], 1)) for r in section.rows), default=0) * train_config.epochs / 60:.1f} "
                       "min per fold if early stopping never triggers"]
    return section


PIECE = 20.0  # seconds of synthetic video the timeline section renders (slow at 640x360) and then repeats


class _PeakRss:
    """The most resident memory the process held while the block ran, sampled every 20 ms (Linux; elsewhere
    the process's peak so far)."""

    def __enter__(self) -> _PeakRss:
        import threading

        self.peak, self._stop = self._now(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._now())

    @staticmethod
    def _now() -> float:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return _peak_rss_mb()
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_timeline(config: BenchConfig, work: Path, on_progress: Callable[[str], None] | None = None) -> Section:
    """``Recognizer.timeline`` with a trained run on a synthetic 640x360 clip: seconds of compute per second of
    video, decoding one after the backbones against decoding in a thread alongside them, and peak memory."""
    from avemo.fusion.run import Run
    from avemo.pipeline.decode import media_seconds
    from avemo.synth import SynthConfig, repeat_clip, synthesize_long

    say = on_progress or (lambda _: None)
    seconds = config.timeline_seconds or (30.0 if config.quick else 120.0)
    video = work / f"long-{seconds:g}s.mp4"
    plays = math.ceil(seconds / PIECE - 1e-9)
    piece = seconds / plays
    say(f"timeline: synthesising a {piece:g} s 640x360 clip, played {plays} times")
    made = time.perf_counter()
    synthesize_long(work / "piece.mp4", piece, seed=0, config=SynthConfig(width=640, height=360))
    repeat_clip(work / "piece.mp4", video, seconds)
    made = time.perf_counter() - made
    seconds = media_seconds(video) or seconds  # the joins add a few milliseconds each
    run = Run(config.timeline_run)
    rec = run.recognizer(device=config.device).load()
    spec = rec.spec
    section = Section(f"timeline of a {seconds:.0f} s 640x360 clip: run {run.path.name} ({spec.video_backbone.arch}, "
                      f"{spec.video.crop} crop, {len(rec.folds)} folds) on {rec.device}",
                      "decode and cut, then the backbones, one after the other")
    repeats = 1 if seconds > 300 else config.repeats
    rows = [("one after the other", False), ("decoding in a thread alongside the backbones", True)]
    if seconds > 300:  # a long clip (the one-hour memory figure): the default way only, once
        rows = rows[1:]
        section.baseline = "none: the default way only, once, on a long clip"
    warm = work / "warm-up.mp4"
    synthesize_long(warm, 10, seed=1, config=SynthConfig(width=640, height=360))
    rec.timeline(warm)  # the first calls build the kernels; not timed
    times: dict[str, list[float]] = {name: [] for name, _ in rows}
    peaks: dict[str, float] = {name: 0.0 for name, _ in rows}
    notes: dict[str, str] = {}
    for turn in range(repeats):  # the rows take turns, so that neither has the machine's quieter moments
        for name, overlap in rows:
            say(f"timeline: {name}, run {turn + 1} of {repeats}")
            with _PeakRss() as peak:
                _sync()
                start = time.perf_counter()
                result = rec.timeline(video, overlap=overlap)
                _sync()
                times[name].append(time.perf_counter() - start)
            peaks[name] = max(peaks[name], peak.peak)
            notes[name] = (f"{len(result.windows)} windows of {result.window:.2f} s every {result.hop:.3f} s, "
                           f"{rec.snippets_run} snippets through the video backbone")
    for name, _ in rows:
        section.add(name, statistics.median(times[name]) / seconds, "video second",
                    f"{notes[name]}; peak RSS {peaks[name] / 1024:.2f} GB")
    section.limits += [f"median of {repeats} runs per row, the rows taking turns, after the models were loaded and "
                       f"one untimed 10 s clip; the clip is a {piece:g} s synthetic clip (an actor whose emotion "
                       f"changes) played {plays} times, made in {made:.0f} s (not timed)"]
    return section


def run_bench(config: BenchConfig, on_section: Callable[[Section], None] | None = None,
              on_progress: Callable[[str], None] | None = None) -> BenchReport:
    """Run every section; ``on_section`` sees each as it completes, ``on_progress`` a line as each starts."""
    warnings.filterwarnings("ignore", message="RANDOM .* WEIGHTS")
    device = RuntimeRequest(device=config.device).resolve().device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    report = BenchReport(device=name, machine=platform.processor() or platform.machine(), date=str(date.today()),
                         quick=config.quick)
    with tempfile.TemporaryDirectory(prefix="avemo-bench-") as tmp:
        work = config.workdir or Path(tmp)
        if config.train_scale or config.timeline_run is not None:
            section = bench_train_scale(config, work, on_progress) if config.train_scale else \
                bench_timeline(config, work, on_progress)
            report.sections.append(section)
            if on_section is not None:
                on_section(section)
            return report
        say = on_progress or (lambda _: None)
        say(f"synthesising {config.clips} clips (H.264, VP9, photographed faces)")
        paths = _synth(work / "h264", config)
        vp9 = _synth(work / "vp9", config, codec="vp9")
        _synth(work / "faces", config, faces="real")
        sections = [("video decoding", lambda: bench_decoding(paths, vp9, config, device)),
                    ("backbones per runtime", lambda: bench_backbones(config, device, work)),
                    ("extraction end to end", lambda: bench_extract(paths, config, device, work)),
                    ("fusion training step", lambda: bench_training(config, device))]
        for number, (label, run) in enumerate(sections, 1):
            say(f"section {number}/{len(sections)}: {label}")
            section = run()
            report.sections.append(section)
            if on_section is not None:
                on_section(section)
    return report


def plot(report: BenchReport, path: Path) -> None:
    """One horizontal bar panel per section on one shared log axis: each row's speed as a multiple of its
    section's baseline (the 1x line), with the absolute seconds per unit beside it; labels wrap, never cut."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    sections = [s for s in report.sections if s.rows]
    ratios = [r.ratio for s in sections for r in s.rows if r.ratio > 0]
    low, high = min(ratios + [1.0]) / 2, max(ratios + [1.0]) * 12  # room right of the longest bar for its text
    lines = sum(len(textwrap.wrap(r.name, 42)) for s in sections for r in s.rows)
    fig, axes = plt.subplots(len(sections), 1, figsize=(11, 1.0 + 0.75 * len(sections) + 0.24 * lines),
                             squeeze=False, sharex=True, constrained_layout=True,
                             gridspec_kw={"height_ratios": [max(1, len(s.rows)) for s in sections]})
    for ax, section in zip(axes[:, 0], sections):
        names = ["\n".join(textwrap.wrap(r.name, 42)) for r in section.rows]
        ax.barh(range(len(names)), [r.ratio for r in section.rows], color="tab:blue", height=0.6)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.9)
        ax.set_title(section.title, fontsize=9, loc="left")
        for y, r in enumerate(section.rows):
            ax.text(r.ratio * 1.08, y, f"{r.ratio:.2f}x  ({r.seconds:.3g} s/{r.unit})", va="center", fontsize=7)
    axes[-1, 0].xaxis.set_major_formatter(FormatStrFormatter("%gx"))
    axes[-1, 0].xaxis.set_minor_formatter(NullFormatter())
    axes[-1, 0].set_xlabel("speed as a multiple of the section's baseline (log scale; the black line is 1x)")
    fig.suptitle(f"avemo bench: {report.device}, {report.date}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
