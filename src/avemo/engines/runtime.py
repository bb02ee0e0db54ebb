"""The backend interface every runtime (torch, ONNX Runtime, TensorRT) implements, device choice, and the factory."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from avemo.engines.backbones import AudioFeatures, VideoFeatures


class Backend(Protocol):
    """Executes both backbones on batches; inputs may be on any device, outputs are float32 on the CPU."""

    name: str
    device: torch.device

    def video(self, snippets: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, T, H, W) -> (N, C, S)."""
        ...

    def audio(self, segments: torch.Tensor) -> torch.Tensor:
        """float32 (N, F, W) -> (N, 512)."""
        ...


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a set-up error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA device; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise RuntimeError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)


BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")


def onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _onnxruntime_has_cuda() -> bool:
    if not onnxruntime_installed():
        return False
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def choose_backend(device: torch.device, engines: Path | None) -> str:
    """What ``--backend auto`` runs: tensorrt > onnxruntime-gpu > torch on CUDA, torch on a CPU.

    Exported graphs (``engines``) are needed by both ONNX runtimes. On a CPU, torch with channels-last weights
    measured 1.2-1.45x faster than ONNX Runtime's CPU provider (benchmarks/RESULTS.md), so ``auto`` keeps torch.
    """
    if device.type == "cuda" and engines is not None:
        from avemo.engines.tensorrt import tensorrt_installed

        if tensorrt_installed():
            return "tensorrt"
        if _onnxruntime_has_cuda():
            return "onnxruntime"
    return "torch"


def create_backend(name: str, video: VideoFeatures, audio: AudioFeatures, device: torch.device,
                   engines: Path | None = None, precision: str = "fp32", description: dict | None = None,
                   compile: bool = False, cuda_graphs: bool = False, opt_batch: int = 12) -> Backend:
    """The runtime called ``name`` (``auto``: see :func:`choose_backend`)."""
    if name not in BACKENDS:
        raise RuntimeError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name == "auto":
        name = choose_backend(device, engines)
    if name in ("onnxruntime", "tensorrt"):
        if engines is None or description is None:
            raise RuntimeError(f"--backend {name} needs --engines DIR (made by avemo export)")
        if precision not in ("fp32", "fp16"):
            raise RuntimeError(f"--precision {precision}: exported graphs are fp32 or fp16")
    if name == "onnxruntime":
        if not onnxruntime_installed():
            raise RuntimeError("--backend onnxruntime: onnxruntime is not installed; pip install 'avemo[onnx]'")
        from avemo.engines.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(engines, description, precision, device)
    if name == "tensorrt":
        from avemo.engines.tensorrt import TensorRTBackend, tensorrt_installed

        if not tensorrt_installed():
            raise RuntimeError("--backend tensorrt: TensorRT is not installed; pip install 'avemo[gpu]' on a CUDA machine")
        return TensorRTBackend(engines, description, precision, device, opt_batch=opt_batch)
    from avemo.engines.torch import TorchBackend

    return TorchBackend(video, audio, device, precision=precision, compile=compile, cuda_graphs=cuda_graphs)
