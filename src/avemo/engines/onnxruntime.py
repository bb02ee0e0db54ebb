"""The ONNX Runtime backend: runs the graphs ``avemo export`` wrote, after checking they fit the weights.

On a CPU it uses ONNX Runtime's CPU provider; with onnxruntime-gpu and a CUDA device it uses the CUDA
provider and binds torch CUDA tensors directly (no copy through the host). The provider actually in use is
read back from the session, since onnxruntime-gpu silently falls back to the CPU without CUDA.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemo.cache import differing_keys

_NUMPY = {"torch.uint8": np.uint8, "torch.float16": np.float16, "torch.float32": np.float32}
_TORCH = {"torch.uint8": torch.uint8, "torch.float16": torch.float16, "torch.float32": torch.float32}


class EngineError(Exception):
    """A graph or engine that cannot be used; the message names the file and what to do."""


def graph_name(kind: str, backbone: dict[str, Any], precision: str) -> str:
    """File stem of a graph: kind, architecture, a short hash of the weights, precision."""
    weights = backbone["weights_sha256"]
    tag = weights[:12] if all(c in "0123456789abcdef" for c in weights) else weights.replace("-", "")
    return f"{kind}-{backbone['arch']}-{tag}-{precision}"


class _Graph:
    """One verified graph and its session."""

    def __init__(self, engines: Path, kind: str, backbone: dict[str, Any], precision: str, device: torch.device) -> None:
        import onnxruntime as ort

        path = engines / f"{graph_name(kind, backbone, precision)}.onnx"
        redo = f"run avemo export --engines {engines} --precision {precision} with the same weights"
        if not path.is_file():
            raise EngineError(f"{path}: no {kind} graph for these weights and precision; {redo}")
        try:
            manifest = json.loads(path.with_suffix(".json").read_text())
        except (OSError, json.JSONDecodeError):
            raise EngineError(f"{path.with_suffix('.json')}: missing or unreadable manifest; {redo}") from None
        changed = differing_keys(manifest.get("backbone", {}), backbone)
        if changed:
            raise EngineError(f"{path}: exported from other weights or settings (differs in "
                              f"{', '.join(changed[:4])}); {redo}")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != manifest.get("graph_sha256"):
            raise EngineError(f"{path}: changed or damaged since export (hash differs from its manifest); {redo}")
        wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
        providers = [p for p in wanted if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(data, providers=providers)
        except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            raise EngineError(f"{path}: ONNX Runtime cannot load it ({type(err).__name__}); {redo}") from None
        self.manifest, self.device = manifest, device
        self.provider = self.session.get_providers()[0]
        self.input_name = manifest["input"]["name"]
        self.input_dtype = manifest["input"]["dtype"]
        self.max_batch = int(manifest["max_batch"])

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
        self.session.run_with_iobinding(binding)
        return out.float().cpu()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        run = self._run_cuda if self.provider == "CUDAExecutionProvider" else self._run_host
        return torch.cat([run(chunk) for chunk in x.split(self.max_batch)])


class OnnxRuntimeBackend:
    """Both backbones through ONNX Runtime; batches above the graph's maximum are split."""

    name = "onnxruntime"

    def __init__(self, engines: Path, description: dict[str, Any], precision: str, device: torch.device) -> None:
        self.device = device
        self._video = _Graph(engines, "video", description["video"], precision, device)
        self._audio = _Graph(engines, "audio", description["audio"], precision, device)
        self.name = f"onnxruntime-{precision} ({self._video.provider})"

    def video(self, snippets: torch.Tensor) -> torch.Tensor:
        return self._video(snippets)

    def audio(self, segments: torch.Tensor) -> torch.Tensor:
        return self._audio(segments)
