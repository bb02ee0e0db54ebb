"""The ONNX Runtime backend: runs the graphs ``avemo export`` wrote, after checking they fit the weights.

On a CPU it uses ONNX Runtime's CPU provider; with onnxruntime-gpu and a CUDA device it uses the TensorRT
provider (when TensorRT is installed) or the CUDA provider, and binds torch CUDA tensors directly (no copy
through the host). The provider actually in use is
read back from the session, since onnxruntime-gpu silently falls back to the CPU without CUDA.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from avemo.engines.graphs import EngineError, load_graph
from avemo.engines.tensorrt import tensorrt_installed

if TYPE_CHECKING:
    from avemo.spec import FeatureSpec

_NUMPY = {"torch.uint8": np.uint8, "torch.float16": np.float16, "torch.float32": np.float32}
_TORCH = {"torch.uint8": torch.uint8, "torch.float16": torch.float16, "torch.float32": torch.float32}


class _Graph:
    """One verified graph and its session."""

    def __init__(self, engines: Path, kind: str, spec: FeatureSpec, precision: str, device: torch.device) -> None:
        import onnxruntime as ort

        graph = load_graph(engines, kind, spec, precision)
        path, manifest = graph.path, graph.manifest
        redo = f"run avemo export --engines {engines} --precision {precision} with the same weights"
        providers: list = ["CPUExecutionProvider"]
        available = ort.get_available_providers()
        if device.type == "cuda" and "CUDAExecutionProvider" in available:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
            if "TensorrtExecutionProvider" in available and tensorrt_installed():
                # ONNX Runtime's own TensorRT engines, cached beside the graphs like avemo's.
                cache = str(engines / "onnxruntime-tensorrt")
                providers.insert(0, ("TensorrtExecutionProvider", {
                    "device_id": device.index or 0, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
                    "trt_timing_cache_enable": True, "trt_timing_cache_path": cache}))
        try:
            self.session = ort.InferenceSession(graph.data, providers=providers)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            raise EngineError(f"{path}: ONNX Runtime cannot load it ({type(err).__name__}); {redo}") from None
        self.manifest, self.device = manifest, device
        self.provider = self.session.get_providers()[0]
        self.input_name = graph.input_name
        self.input_dtype = manifest["input"]["dtype"]
        self.max_batch = graph.max_batch

    def _run_host(self, x: torch.Tensor) -> torch.Tensor:
        array = x.cpu().numpy().astype(_NUMPY[self.input_dtype], copy=False)
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0]).float()

    def _run_cuda(self, x: torch.Tensor) -> torch.Tensor:
        """I/O binding: ONNX Runtime reads and writes torch's CUDA memory directly."""
        x = x.to(self.device, _TORCH[self.input_dtype]).contiguous()
        out_dtype = self.manifest["output"]["dtype"]
        out = torch.empty((x.shape[0], *self.manifest["output"]["shape"][1:]), dtype=_TORCH[out_dtype], device=self.device)
        binding = self.session.io_binding()
        index = self.device.index or 0
        binding.bind_input(self.input_name, "cuda", index, _NUMPY[self.input_dtype], tuple(x.shape), x.data_ptr())
        binding.bind_output("features", "cuda", index, _NUMPY[out_dtype], tuple(out.shape), out.data_ptr())
        # ONNX Runtime runs on its own stream: the input must be written (cast, DALI's copy) before it reads.
        torch.cuda.current_stream(self.device).synchronize()
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return out.float().cpu()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        run = self._run_host if self.provider == "CPUExecutionProvider" else self._run_cuda
        return torch.cat([run(chunk) for chunk in x.split(self.max_batch)])


class OnnxRuntimeBackend:
    """Both backbones through ONNX Runtime; batches above the graph's maximum are split."""

    name = "onnxruntime"

    def __init__(self, engines: Path, spec: FeatureSpec, precision: str, device: torch.device) -> None:
        self.device = device
        self._video = _Graph(engines, "video", spec, precision, device)
        self._audio = _Graph(engines, "audio", spec, precision, device)
        self.name = f"onnxruntime-{precision} ({self._video.provider})"

    def video(self, snippets: torch.Tensor) -> torch.Tensor:
        return self._video(snippets)

    def audio(self, segments: torch.Tensor) -> torch.Tensor:
        return self._audio(segments)
