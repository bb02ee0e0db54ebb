"""ONNX export and the ONNX Runtime backend: parity with torch, manifests, bad graphs, batch splitting.

Parity runs on small Hara architectures (r3d10; the same export code as r3d101) so the suite stays fast.
"""

import json
import shutil
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'avemo[onnx]')")
pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install 'avemo[onnx]')")

from avemo.cache import FeatureCache  # noqa: E402
from avemo.cli import app  # noqa: E402
from avemo.engines.backbones import build_backbones  # noqa: E402
from avemo.engines.graphs import EngineError  # noqa: E402
from avemo.engines.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from avemo.engines.runtime import RuntimeRequest  # noqa: E402
from avemo.engines.torch import TorchBackend  # noqa: E402
from avemo.errors import SetupError  # noqa: E402
from avemo.export.onnx import ExportConfig, export_backbones  # noqa: E402
from avemo.spec import BackboneConfig, VideoConfig  # noqa: E402
from tests.conftest import built_once  # noqa: E402

CPU = torch.device("cpu")
BACKBONES = BackboneConfig(video_arch="r3d10")
SMALL = VideoConfig(size=32, resize=32)
# Stated tolerances, relative to the largest feature: fp32 graphs agree to float rounding, fp16 ones to
# half-precision rounding accumulated over the network.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    def export(root):
        for precision in ("fp32", "fp16"):
            export_backbones(ExportConfig(engines=root, backbones=BACKBONES, video=SMALL, precision=precision,
                                          max_batch=4))

    return built_once(tmp_path_factory, "onnx-engines", export)


@pytest.fixture(scope="module")
def nets():
    return build_backbones(BACKBONES, SMALL)


def _close(got: torch.Tensor, expected: torch.Tensor, precision: str) -> None:
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=TOLERANCE[precision], atol=TOLERANCE[precision] * scale)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnxruntime_features_equal_torch_features(engines, nets, precision):
    video, audio, spec = nets
    ort_backend = OnnxRuntimeBackend(engines, spec, precision, CPU)
    reference = TorchBackend(video, audio, CPU)
    snippets = torch.randint(0, 256, (7, 3, 16, 32, 32), dtype=torch.uint8)  # 7 > max_batch 4: split
    segments = torch.randn(7, 256, 96)
    _close(ort_backend.video(snippets), reference.video(snippets), precision)
    _close(ort_backend.audio(segments), reference.audio(segments), precision)
    assert "CPUExecutionProvider" in ort_backend.name


def test_manifest_records_what_the_graph_is(engines, nets):
    manifest = json.loads(next(engines.glob("video-*-fp16.json")).read_text())
    assert manifest["input"] == {"name": "snippets", "shape": ["batch", 3, 16, 32, 32], "dtype": "torch.uint8"}
    assert manifest["output"]["shape"] == ["batch", 512, 1] and manifest["precision"] == "fp16"
    assert manifest["spec"]["backbones"]["video"]["normalization"]["name"] == "hara2020" and manifest["max_batch"] == 4
    assert manifest["spec"]["video"]["size"] == 32
    assert {"torch", "onnx"} <= set(manifest["versions"])


def test_graphs_of_other_weights_or_settings_are_not_used(engines, nets, tmp_path):
    video, audio, spec = nets
    weights = replace(spec.video_backbone.weights, sha256="0" * 64)
    other = replace(spec, video_backbone=replace(spec.video_backbone, weights=weights))
    with pytest.raises(EngineError, match="no video graph for these weights"):
        OnnxRuntimeBackend(engines, other, "fp32", CPU)
    copy = tmp_path / "engines"
    shutil.copytree(engines, copy)
    manifest = next(copy.glob("video-*-fp32.json"))
    data = json.loads(manifest.read_text())
    data["spec"]["backbones"]["video"]["normalization"]["name"] = "hara2017"
    manifest.write_text(json.dumps(data))
    with pytest.raises(EngineError, match=r"video-r3d10-\w+-fp32.onnx: exported for other settings \(differs in "
                                          r"backbones.video.normalization.name\)"):
        OnnxRuntimeBackend(copy, spec, "fp32", CPU)
    # What a graph does not depend on (the crop, the storage dtype) does not matter.
    OnnxRuntimeBackend(engines, replace(spec, dtype="float32"), "fp32", CPU)


def test_a_graph_exported_at_another_size_is_refused_by_name(engines, synth_root, tmp_path):
    result = CliRunner().invoke(app, ["extract", str(synth_root / "Actor_01"), "--cache", str(tmp_path / "c"),
                                      "--video-arch", "r3d10", "--size", "64", "--crop", "center",
                                      "--backend", "onnxruntime", "--engines", str(engines)])
    assert result.exit_code == 2, result.output
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "video-r3d10-" in line and "exported for other settings (differs in video.size)" in line
    assert "--size 64" in line and not (tmp_path / "c").exists()  # refused before the cache was created


def test_a_damaged_graph_is_refused_with_the_remedy(engines, nets, tmp_path):
    copy = tmp_path / "engines"
    shutil.copytree(engines, copy)
    graph = next(copy.glob("audio-*-fp32.onnx"))
    graph.write_bytes(graph.read_bytes()[:1000])
    with pytest.raises(EngineError, match="damaged since export.*avemo export"):
        OnnxRuntimeBackend(copy, nets[2], "fp32", CPU)


def test_auto_keeps_torch_on_a_cpu_where_it_measured_faster(engines, nets):
    video, audio, spec = nets
    assert RuntimeRequest(device="cpu").resolve().create(video, audio).name == "torch-fp32"
    assert RuntimeRequest(device="cpu", engines=engines).resolve().create(video, audio, spec).name == "torch-fp32"
    chosen = RuntimeRequest(backend="onnxruntime", device="cpu", engines=engines).resolve().create(video, audio, spec)
    assert chosen.name == "onnxruntime-fp32 (CPUExecutionProvider)"
    with pytest.raises(SetupError, match="needs --engines"):
        RuntimeRequest(backend="onnxruntime", device="cpu").resolve()


def test_extract_with_onnxruntime_matches_extract_with_torch(engines, synth_root, tmp_path):
    runner = CliRunner()
    data = tmp_path / "data"
    shutil.copytree(synth_root / "Actor_02", data / "Actor_02")
    common = ["--video-arch", "r3d10", "--size", "32", "--workers", "0"]
    for backend, cache in (("torch", "c_torch"), ("onnxruntime", "c_ort")):
        result = runner.invoke(app, ["extract", str(data), "--cache", str(tmp_path / cache), "--backend", backend,
                                     "--engines", str(engines), *common])
        assert result.exit_code == 0, result.output
    torch_cache, ort_cache = FeatureCache.open(tmp_path / "c_torch"), FeatureCache.open(tmp_path / "c_ort")
    assert torch_cache.fingerprint == ort_cache.fingerprint  # same features, whichever runtime made them
    for entry in torch_cache.index():  # stored as float16: equal up to one float16 rounding step (2^-10)
        for a, b in zip(torch_cache.read(entry["clip_id"]), ort_cache.read(entry["clip_id"])):
            scale = a.float().abs().max().item()
            torch.testing.assert_close(b.float(), a.float(), rtol=2e-3, atol=2e-3 * scale)


def test_export_cli_refuses_tensorrt_without_it(tmp_path):
    result = CliRunner().invoke(app, ["export", "--engines", str(tmp_path), "--tensorrt"])
    assert result.exit_code == 2 and "TensorRT" in result.output
