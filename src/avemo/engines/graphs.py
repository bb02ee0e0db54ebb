"""The ONNX graphs ``avemo export`` writes, as the runtimes find and verify them.

A graph ``ENGINES/{kind}-{arch}-{weights hash}-{precision}.onnx`` has a manifest beside it (``.json``) that
records the feature spec it was exported for and the graph's own SHA-256. Every runtime that runs a graph,
or builds a TensorRT engine from one, goes through :func:`load_graph`, so none of them runs a graph exported
for other weights or another input size, or damaged since export.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avemo.errors import AvemoError

if TYPE_CHECKING:
    from avemo.spec import FeatureSpec


class EngineError(AvemoError):
    """A graph or engine that cannot be used; the message names the file and what to do."""


def graph_name(kind: str, spec: FeatureSpec, precision: str) -> str:
    """File stem of a graph: kind, architecture, a short hash of the weights, precision."""
    backbone = spec.video_backbone if kind == "video" else spec.audio_backbone
    weights = backbone.weights.sha256
    tag = weights[:12] if all(c in "0123456789abcdef" for c in weights) else weights.replace("-", "")
    return f"{kind}-{backbone.arch}-{tag}-{precision}"


@dataclass(frozen=True)
class Graph:
    """A verified graph: its path, bytes and manifest."""

    path: Path
    data: bytes
    manifest: dict[str, Any]

    @property
    def input_name(self) -> str:
        return self.manifest["input"]["name"]

    @property
    def max_batch(self) -> int:
        return int(self.manifest["max_batch"])


def load_graph(engines: Path, kind: str, spec: FeatureSpec, precision: str) -> Graph:
    """Read the ``kind`` graph for ``spec`` at ``precision``; refuse one that does not fit, naming the file and
    the settings that differ."""
    from avemo.spec import FeatureSpec, SpecError

    path = engines / f"{graph_name(kind, spec, precision)}.onnx"
    redo = (f"run avemo export --engines {engines} --precision {precision} with the same weights and "
            f"--size {spec.video.size}")
    if not path.is_file():
        raise EngineError(f"{path}: no {kind} graph for these weights and precision; {redo}")
    try:
        manifest = json.loads(path.with_suffix(".json").read_text())
        exported = FeatureSpec.from_json(manifest["spec"])
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        raise EngineError(f"{path.with_suffix('.json')}: missing or unreadable manifest; {redo}") from None
    except (KeyError, TypeError, SpecError):
        raise EngineError(f"{path.with_suffix('.json')}: records no feature spec (exported by an earlier avemo); "
                          f"{redo}") from None
    changed = exported.differences(spec, within=spec.graph_scope(kind))
    if changed:
        raise EngineError(f"{path}: exported for other settings (differs in {', '.join(changed[:4])}); {redo}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.get("graph_sha256"):
        raise EngineError(f"{path}: changed or damaged since export (hash differs from its manifest); {redo}")
    return Graph(path, data, manifest)
