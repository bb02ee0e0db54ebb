"""``avemo export``: the two backbones as ONNX graphs, exactly as ``extract`` runs them, with manifests.

Each graph takes what the torch backend takes (video: uint8 snippets, normalised inside the graph; audio:
spectrogram segments) and returns the same features, with a dynamic batch axis. An fp16 export converts the
weights to half precision in the graph itself, because TensorRT 10.12+ is strongly typed: precision comes
from the graph, not from a builder flag. Beside each ``NAME.onnx`` a ``NAME.json`` manifest records inputs,
outputs, the feature spec the graph computes (weights hashes, normalisation, input size) and library
versions; backends refuse a graph whose spec differs from theirs in what the graph depends on.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from avemo.files import atomic_write
from avemo.engines.backbones import build_backbones
from avemo.engines.graphs import graph_name
from avemo.spec import AudioConfig, BackboneConfig, VideoConfig

PRECISIONS = ("fp32", "fp16")
OPSET = 18


@dataclass(frozen=True)
class ExportConfig:
    engines: Path
    backbones: BackboneConfig = field(default_factory=BackboneConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    precision: str = "fp32"
    max_batch: int = 64  # snippets (or segments) per call; larger batches are split by the backends


def _export_one(module: torch.nn.Module, example: torch.Tensor, input_name: str, path: Path, max_batch: int) -> bytes:
    import onnx

    batch = torch.export.Dim("batch", min=1, max=max_batch)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        torch.onnx.export(module, (example,), str(out), input_names=[input_name], output_names=["features"],
                          dynamic_shapes={input_name: {0: batch}}, dynamo=True, opset_version=OPSET,
                          external_data=False, verbose=False)
        model = onnx.load(str(out))
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_backbones(config: ExportConfig) -> list[Path]:
    """Write ``video-*.onnx`` and ``audio-*.onnx`` (and their manifests) into ``config.engines``."""
    import onnx

    if config.precision not in PRECISIONS:
        raise ValueError(f"precision {config.precision!r}: choose {' or '.join(PRECISIONS)}")
    video_net, audio_net, spec = build_backbones(config.backbones, config.video, config.audio)
    half = config.precision == "fp16"
    v, a = config.video, config.audio
    jobs = [
        ("video", video_net, torch.zeros(2, 3, v.frames, v.size, v.size, dtype=torch.uint8), "snippets"),
        ("audio", audio_net, torch.zeros(2, a.freq_bins, a.segment_frames,
                                         dtype=torch.float16 if half else torch.float32), "segments"),
    ]
    config.engines.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, net, example, input_name in jobs:
        module = copy.deepcopy(net).eval()
        if half:
            module = module.half()
        name = graph_name(kind, spec, config.precision)
        path = config.engines / f"{name}.onnx"
        data = _export_one(module, example, input_name, path, config.max_batch)
        with torch.inference_mode():
            output_shape = list(module(example).shape[1:])
        manifest = {
            "graph": path.name, "graph_sha256": hashlib.sha256(data).hexdigest(), "kind": kind,
            "precision": config.precision, "opset": OPSET, "max_batch": config.max_batch,
            "input": {"name": input_name, "shape": ["batch", *example.shape[1:]], "dtype": str(example.dtype)},
            "output": {"name": "features", "shape": ["batch", *output_shape],
                       "dtype": "torch.float16" if half else "torch.float32"},
            "spec": spec.to_json(),
            "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        }
        atomic_write(path, data)
        atomic_write(path.with_suffix(".json"), json.dumps(manifest, indent=1).encode())
        written.append(path)
    return written
