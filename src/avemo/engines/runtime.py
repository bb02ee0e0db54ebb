"""The backend interface every runtime (torch, ONNX Runtime, TensorRT) implements, and the one place a runtime
set-up is checked and built.

A :class:`RuntimeRequest` is what the user asked for (``--backend``, ``--device``, ``--precision``,
``--engines``, ``--compile``, ``--cuda-graphs``). :meth:`RuntimeRequest.resolve` checks all of it once, before
any model is built or file written, and returns a :class:`Runtime`: the concrete backend and device.
:meth:`Runtime.create` builds that backend through a registry of factories, one per backend name::

    runtime = RuntimeRequest(backend="auto", device="cuda").resolve()
    backend = runtime.create(video_net, audio_net, spec)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import torch

from avemo.choices import BackendName, DeviceName, Precision
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


def _tensorrt_installed() -> bool:
    # Looked up on the module at each call, so that tests can stand in for TensorRT.
    from avemo.engines import tensorrt

    return tensorrt.tensorrt_installed()


# Runtimes that run the graphs ``avemo export`` wrote: they need --engines and a feature spec to check them by.
_EXPORTED = (BackendName.onnxruntime.value, BackendName.tensorrt.value)


@dataclass(frozen=True)
class RuntimeRequest:
    """What the user asked for: backend, device, precision, engines, compile, CUDA graphs.

    ``opt_batch`` is the batch TensorRT engines are tuned for (extract's clips per batch x snippets); it is part
    of an engine's identity, so engines built by ``avemo export --tensorrt`` are reused only when it matches.
    """

    backend: str = BackendName.auto.value
    device: str = DeviceName.auto.value
    precision: str = Precision.fp32.value
    engines: Path | None = None  # graphs from avemo export, for onnxruntime and tensorrt
    compile: bool = False  # torch: run the backbones through torch.compile
    cuda_graphs: bool = False  # torch on CUDA: replay captured CUDA graphs
    opt_batch: int = 12

    def resolve(self, device: torch.device | None = None) -> Runtime:
        """Check the request and pick the device and the concrete backend; raise ``SetupError`` in one line
        naming the option and what to do.

        ``device`` replaces the choice ``self.device`` would make (under torchrun: each rank's own GPU).
        ``auto`` runs tensorrt > onnxruntime-gpu > torch on CUDA when ``engines`` are given (both ONNX
        runtimes need exported graphs), and torch on a CPU, where torch with channels-last weights measured
        faster than ONNX Runtime's CPU provider (benchmarks/RESULTS.md).
        """
        backends, precisions = [b.value for b in BackendName], [p.value for p in Precision]
        if self.backend not in backends:
            raise SetupError(f"unknown backend {self.backend!r}; choose from {', '.join(backends)}")
        if self.precision not in precisions:
            raise SetupError(f"--precision {self.precision!r}: choose {', '.join(precisions)}")
        device = self._device() if device is None else device
        name = self._auto(device) if self.backend == BackendName.auto else self.backend
        if name in _EXPORTED:
            if self.engines is None:
                raise SetupError(f"--backend {name} needs --engines DIR (made by avemo export)")
            if self.precision not in (Precision.fp32, Precision.fp16):
                raise SetupError(f"--precision {self.precision}: exported graphs are fp32 or fp16")
            if self.compile or self.cuda_graphs:
                raise SetupError(f"--compile and --cuda-graphs are options of the torch backend, not {name}")
        if name == BackendName.onnxruntime and not onnxruntime_installed():
            raise SetupError("--backend onnxruntime: onnxruntime is not installed; pip install 'avemo[onnx]'")
        if name == BackendName.tensorrt:
            if not _tensorrt_installed():
                raise SetupError("--backend tensorrt: TensorRT is not installed; pip install 'avemo[gpu]' on a "
                                 "CUDA machine")
            if device.type != "cuda":
                raise SetupError("--backend tensorrt runs on a CUDA device; use --device cuda (or auto on a GPU)")
        if name == BackendName.torch:
            if self.precision == Precision.fp16 and device.type != "cuda":
                raise SetupError("--precision fp16 with the torch backend needs CUDA; on a CPU use bf16 or fp32")
            if self.cuda_graphs and device.type != "cuda":
                raise SetupError("--cuda-graphs needs a CUDA device")
        return Runtime(name, device, self)

    def _device(self) -> torch.device:
        """``auto`` picks CUDA when PyTorch sees a GPU; asking for CUDA without one is a set-up error."""
        name = self.device
        if name == DeviceName.auto:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if name != DeviceName.cpu and not name.startswith(DeviceName.cuda.value):
            raise SetupError(f"unknown device {name!r}; choose auto, cpu or cuda")
        if name.startswith(DeviceName.cuda.value) and not torch.cuda.is_available():
            raise SetupError("--device cuda asked for, but PyTorch sees no CUDA device; use --device cpu")
        try:
            return torch.device(name)
        except RuntimeError:  # e.g. "cuda:x"
            raise SetupError(f"unknown device {name!r}; choose auto, cpu or cuda (or cuda:N)") from None

    def _auto(self, device: torch.device) -> str:
        if device.type == "cuda" and self.engines is not None:
            if _tensorrt_installed():
                return BackendName.tensorrt.value
            if _onnxruntime_has_cuda():
                return BackendName.onnxruntime.value
        return BackendName.torch.value


@dataclass(frozen=True)
class Runtime:
    """A resolved, valid runtime: the concrete backend name and torch.device.

    Made by :meth:`RuntimeRequest.resolve`; whether a runtime is valid depends on the device's type only, so
    the same runtime on another device of that type (each torchrun rank's own GPU) is valid too.
    """

    backend: str
    device: torch.device
    request: RuntimeRequest

    def create(self, video: VideoFeatures, audio: AudioFeatures, spec: FeatureSpec | None = None) -> Backend:
        """The backend, built for ``video`` and ``audio``; exported graphs and engines are checked against
        ``spec``, the features they must compute (needed by onnxruntime and tensorrt)."""
        if self.backend in _EXPORTED and spec is None:
            raise SetupError(f"--backend {self.backend}: the exported graphs are checked against a feature spec; "
                             "none given")
        return BACKENDS[self.backend](self, video, audio, spec)


# -- the registry: each factory hands its backend only the settings it has ------------------------------------

Factory = Callable[[Runtime, VideoFeatures, AudioFeatures, "FeatureSpec | None"], Backend]


def _torch(runtime: Runtime, video: VideoFeatures, audio: AudioFeatures, spec: FeatureSpec | None) -> Backend:
    from avemo.engines.torch import TorchBackend

    request = runtime.request
    return TorchBackend(video, audio, runtime.device, precision=request.precision, compile=request.compile,
                        cuda_graphs=request.cuda_graphs)


def _onnxruntime(runtime: Runtime, video: VideoFeatures, audio: AudioFeatures, spec: FeatureSpec | None) -> Backend:
    from avemo.engines.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(runtime.request.engines, spec, runtime.request.precision, runtime.device)


def _tensorrt(runtime: Runtime, video: VideoFeatures, audio: AudioFeatures, spec: FeatureSpec | None) -> Backend:
    from avemo.engines.tensorrt import TensorRTBackend

    request = runtime.request
    return TensorRTBackend(request.engines, spec, request.precision, runtime.device, opt_batch=request.opt_batch)


BACKENDS: dict[str, Factory] = {
    BackendName.torch.value: _torch,
    BackendName.onnxruntime.value: _onnxruntime,
    BackendName.tensorrt.value: _tensorrt,
}
