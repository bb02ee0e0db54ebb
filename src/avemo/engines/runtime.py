"""Runtimes that execute the backbones. ``export`` adds ONNX Runtime and TensorRT behind the same interface."""

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


class TorchBackend:
    """Eager PyTorch in eval and inference mode; batches larger than ``max_batch`` are split.

    Weights are kept channels-last: oneDNN's 3D convolutions run about 30% faster that way on a CPU
    (benchmarks/RESULTS.md), with the same results up to float rounding.
    """

    name = "torch"

    def __init__(self, video: VideoFeatures, audio: AudioFeatures, device: torch.device,
                 max_batch: int = 64) -> None:
        self.device = device
        self.max_batch = max_batch
        self.video_net = video.to(device, memory_format=torch.channels_last_3d).eval()
        self.audio_net = audio.to(device, memory_format=torch.channels_last).eval()

    def _run(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            outs = [net(chunk.to(self.device, non_blocking=True)).float().cpu()
                    for chunk in x.split(self.max_batch)]
        return torch.cat(outs)

    def video(self, snippets: torch.Tensor) -> torch.Tensor:
        return self._run(self.video_net, snippets)

    def audio(self, segments: torch.Tensor) -> torch.Tensor:
        return self._run(self.audio_net, segments)


BACKENDS = ("auto", "torch", "onnxruntime")


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


def create_backend(name: str, video: VideoFeatures, audio: AudioFeatures, device: torch.device,
                   engines: Path | None = None, precision: str = "fp32", description: dict | None = None) -> Backend:
    """The runtime called ``name``.

    ``auto`` takes ONNX Runtime on a CUDA device when graphs were exported (``engines``) and onnxruntime-gpu
    provides CUDA; otherwise torch. On a CPU, torch with channels-last weights measured 1.2-1.45x faster than
    ONNX Runtime's CPU provider (benchmarks/RESULTS.md), so ``auto`` does not take ONNX Runtime there.
    """
    if name not in BACKENDS:
        raise RuntimeError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if name == "auto":
        name = "onnxruntime" if engines is not None and device.type == "cuda" and _onnxruntime_has_cuda() else "torch"
    if name == "onnxruntime":
        if engines is None or description is None:
            raise RuntimeError("--backend onnxruntime needs --engines DIR (made by avemo export)")
        if not onnxruntime_installed():
            raise RuntimeError("--backend onnxruntime: onnxruntime is not installed; pip install 'avemo[onnx]'")
        from avemo.engines.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(engines, description, precision, device)
    return TorchBackend(video, audio, device)
