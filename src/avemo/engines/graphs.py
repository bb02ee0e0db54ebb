"""The ONNX graphs ``avemo export`` writes, as the runtimes find and verify them.

A graph ``ENGINES/{kind}-{arch}-{weights hash}-{precision}.onnx`` has a manifest beside it
(``.json``) that records the backbone description (weights hashes, normalisation, input size) and the
graph's own SHA-256. Every runtime that runs a graph, or builds a TensorRT engine from one, goes through
:func:`load_graph`, so none of them runs a graph exported from other weights or damaged since export.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avemo.cache import differing_keys


class EngineError(Exception):
    """A graph or engine that cannot be used; the message names the file and what to do."""


def graph_name(kind: str, backbone: dict[str, Any], precision: str) -> str:
    """File stem of a graph: kind, architecture, a short hash of the weights, precision."""
    weights = backbone["weights_sha256"]
    tag = weights[:12] if all(c in "0123456789abcdef" for c in weights) else weights.replace("-", "")
    return f"{kind}-{backbone['arch']}-{tag}-{precision}"


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


def load_graph(engines: Path, kind: str, backbone: dict[str, Any], precision: str) -> Graph:
    """Read the ``kind`` graph for ``backbone`` at ``precision``; refuse one that does not fit, naming the file."""
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
    return Graph(path, data, manifest)
