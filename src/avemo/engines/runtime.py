"""The backend interface every runtime (torch, ONNX Runtime, TensorRT) implements, device choice, and the factory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import torch

from avemo.choices import BackendName, Precision
from avemo.engines.backbones import AudioFeatures, VideoFeatures
from avemo.errors import SetupError

if TYPE_CHECKING:
    from avemo.spec import FeatureSpec


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
        raise SetupError("--device cuda asked for, but PyTorch sees no CUDA device; use --device cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise SetupError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device(name)



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
    measured faster than ONNX Runtime's CPU provider (benchmarks/RESULTS.md), so ``auto`` keeps torch.
    """
    if device.type == "cuda" and engines is not None:
        from avemo.engines.tensorrt import tensorrt_installed

        if tensorrt_installed():
            return "tensorrt"
        if _onnxruntime_has_cuda():
            return "onnxruntime"
    return "torch"


def check_runtime(name: str, device: torch.device, engines: Path | None, precision: str, compile: bool = False,
                  cuda_graphs: bool = False) -> None:
    """Refuse, in one line, a runtime set-up that cannot work, before any model is built or file written."""
    names, precisions = [b.value for b in BackendName], [p.value for p in Precision]
    if name not in names:
        raise SetupError(f"unknown backend {name!r}; choose from {', '.join(names)}")
    if precision not in precisions:
        raise SetupError(f"--precision {precision!r}: choose {', '.join(precisions)}")
    if name == BackendName.auto:
        name = choose_backend(device, engines)
    if name in (BackendName.onnxruntime, BackendName.tensorrt):
        if engines is None:
            raise SetupError(f"--backend {name} needs --engines DIR (made by avemo export)")
        if precision not in (Precision.fp32, Precision.fp16):
            raise SetupError(f"--precision {precision}: exported graphs are fp32 or fp16")
        if compile or cuda_graphs:
            raise SetupError(f"--compile and --cuda-graphs are options of the torch backend, not {name}")
    if name == BackendName.onnxruntime and not onnxruntime_installed():
        raise SetupError("--backend onnxruntime: onnxruntime is not installed; pip install 'avemo[onnx]'")
    if name == BackendName.tensorrt:
        from avemo.engines.tensorrt import tensorrt_installed

        if not tensorrt_installed():
            raise SetupError("--backend tensorrt: TensorRT is not installed; pip install 'avemo[gpu]' on a CUDA machine")
        if device.type != "cuda":
            raise SetupError("--backend tensorrt runs on a CUDA device; use --device cuda (or auto on a GPU)")
    if name == BackendName.torch:
        if precision == Precision.fp16 and device.type != "cuda":
            raise SetupError("--precision fp16 with the torch backend needs CUDA; on a CPU use bf16 or fp32")
        if cuda_graphs and device.type != "cuda":
            raise SetupError("--cuda-graphs needs a CUDA device")


def create_backend(name: str, video: VideoFeatures, audio: AudioFeatures, device: torch.device,
                   engines: Path | None = None, precision: str = "fp32", spec: FeatureSpec | None = None,
                   compile: bool = False, cuda_graphs: bool = False, opt_batch: int = 12) -> Backend:
    """The runtime called ``name`` (``auto``: see :func:`choose_backend`); graphs and engines are checked
    against ``spec``, the features they must compute."""
    check_runtime(name, device, engines, precision, compile, cuda_graphs)
    if name == BackendName.auto:
        name = choose_backend(device, engines)
    if name in (BackendName.onnxruntime, BackendName.tensorrt) and spec is None:
        raise SetupError(f"--backend {name}: the exported graphs are checked against a feature spec; none given")
    if name == BackendName.onnxruntime:
        from avemo.engines.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(engines, spec, precision, device)
    if name == BackendName.tensorrt:
        from avemo.engines.tensorrt import TensorRTBackend

        return TensorRTBackend(engines, spec, precision, device, opt_batch=opt_batch)
    from avemo.engines.torch import TorchBackend

    return TorchBackend(video, audio, device, precision=precision, compile=compile, cuda_graphs=cuda_graphs)
