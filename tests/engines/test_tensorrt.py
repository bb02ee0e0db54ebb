"""The TensorRT backend.

The engine cache's rules (when a plan is reused, rebuilt or refused) run everywhere, with plain callables in
place of TensorRT's builder and runtime. Building and running real engines needs TensorRT and a CUDA GPU;
those tests skip, with the reason, elsewhere.
"""

import dataclasses
import hashlib
import json

import pytest
import torch

from avemo.engines.graphs import EngineError
from avemo.engines.tensorrt import (EngineIdentity, Profile, engine_path, load_or_build, tensorrt_installed,
                                    timing_cache_path)

IDENTITY = EngineIdentity(graph_sha256="ab" * 32, gpu="NVIDIA H100 80GB HBM3", compute_capability="9.0",
                          tensorrt="10.13.0", profile=Profile(1, 12, 64))


class FakeTensorRT:
    """Builds 'plans' that are bytes and 'deserialises' those it recognises, counting builds."""

    def __init__(self, plan: bytes = b"plan-v1") -> None:
        self.plan, self.builds = plan, 0

    def build(self) -> bytes:
        self.builds += 1
        return self.plan

    def deserialize(self, data: bytes):
        return ("engine", data) if data == self.plan else None


def test_engine_is_built_once_then_reused(tmp_path, recwarn):
    path = tmp_path / "tensorrt" / "video.plan"
    trt = FakeTensorRT()
    assert load_or_build(path, IDENTITY, trt.build, trt.deserialize) == ("engine", b"plan-v1")
    assert load_or_build(path, IDENTITY, trt.build, trt.deserialize) == ("engine", b"plan-v1")
    assert trt.builds == 1
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["plan_sha256"] == hashlib.sha256(b"plan-v1").hexdigest()
    assert not recwarn.list  # a first build is not news


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(b"plan-v1 but cut"), "damaged since it was built"),
    (lambda p: p.with_suffix(".json").write_text("{not json"), "sidecar .json is missing or unreadable"),
    (lambda p: p.with_suffix(".json").unlink(), "sidecar .json is missing or unreadable"),
])
def test_damaged_engine_is_rebuilt_with_one_warning(tmp_path, damage, reason):
    path = tmp_path / "video.plan"
    trt = FakeTensorRT()
    load_or_build(path, IDENTITY, trt.build, trt.deserialize)
    damage(path)
    with pytest.warns(UserWarning, match=f"{path.name}: .*{reason}.*; rebuilding"):
        assert load_or_build(path, IDENTITY, trt.build, trt.deserialize) == ("engine", b"plan-v1")
    assert trt.builds == 2
    assert path.read_bytes() == b"plan-v1"


def test_engine_of_another_identity_or_tensorrt_is_rebuilt(tmp_path):
    path = tmp_path / "video.plan"
    old = FakeTensorRT()
    load_or_build(path, dataclasses.replace(IDENTITY, gpu="NVIDIA A100"), old.build, old.deserialize)
    new = FakeTensorRT()
    with pytest.warns(UserWarning, match="built for another GPU, TensorRT version"):
        load_or_build(path, IDENTITY, new.build, new.deserialize)
    assert new.builds == 1
    # Same identity on record, but this TensorRT cannot read the plan (e.g. an upgrade kept the version string).
    newer = FakeTensorRT(b"plan-v2")
    with pytest.warns(UserWarning, match="TensorRT cannot deserialise it"):
        assert load_or_build(path, IDENTITY, newer.build, newer.deserialize) == ("engine", b"plan-v2")


def test_unloadable_fresh_build_is_refused_and_nothing_is_written(tmp_path):
    path = tmp_path / "video.plan"
    broken = FakeTensorRT()
    with pytest.raises(EngineError, match="built an engine it cannot load"):
        load_or_build(path, IDENTITY, broken.build, lambda data: None)
    assert not path.exists() and not path.with_suffix(".json").exists()


def test_engine_names_separate_every_part_of_the_identity(tmp_path):
    graph = tmp_path / "video-r3d101-0123456789ab-fp16.onnx"
    variants = [IDENTITY] + [dataclasses.replace(IDENTITY, **{k: v}) for k, v in [
        ("graph_sha256", "cd" * 32), ("gpu", "NVIDIA L4"), ("compute_capability", "8.9"), ("tensorrt", "11.0.0"),
        ("profile", Profile(1, 24, 64))]]
    paths = {engine_path(tmp_path, graph, identity) for identity in variants}
    assert len(paths) == len(variants)
    assert all(p.parent == tmp_path / "tensorrt" and p.name.startswith(graph.stem) for p in paths)
    timing = timing_cache_path(tmp_path, IDENTITY)
    assert timing.name == "timing-nvidia-h100-80gb-hbm3-sm90-trt10.13.0.cache"
    assert timing_cache_path(tmp_path, dataclasses.replace(IDENTITY, profile=Profile(1, 1, 1))) == timing


def test_profile_must_be_ordered():
    with pytest.raises(ValueError, match="min <= opt <= max"):
        Profile(1, 80, 64)


# --- Real engines: TensorRT and a CUDA GPU ---------------------------------------------------------------------

needs_tensorrt = pytest.mark.skipif(not (tensorrt_installed() and torch.cuda.is_available()),
                                    reason="needs TensorRT (pip install 'avemo[gpu]') and a CUDA GPU")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnxscript", reason="the onnx extra is not installed")
    from avemo.engines.backbones import build_backbones
    from avemo.export.onnx import ExportConfig, export_backbones
    from avemo.spec import BackboneConfig, VideoConfig

    root = tmp_path_factory.mktemp("engines")
    config = BackboneConfig(video_arch="r3d10")
    small = VideoConfig(size=32, resize=32)
    for precision in ("fp32", "fp16"):
        export_backbones(ExportConfig(engines=root, backbones=config, video=small, precision=precision, max_batch=4))
    return (root, *build_backbones(config, small))


@needs_tensorrt
@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_tensorrt_features_equal_torch_features(exported, precision, tolerance):
    from avemo.engines.runtime import RuntimeRequest
    from avemo.engines.torch import TorchBackend

    root, video, audio, spec = exported
    cuda = torch.device("cuda")
    request = RuntimeRequest(backend="tensorrt", device="cuda", precision=precision, engines=root, opt_batch=2)
    engine = request.resolve().create(video, audio, spec)  # what extract builds
    assert engine.name == f"tensorrt-{precision}"
    reference = TorchBackend(video, audio, torch.device("cpu"))
    snippets = torch.randint(0, 256, (7, 3, 16, 32, 32), dtype=torch.uint8)  # 7 > the profile's 4: split
    segments = torch.randn(7, 256, 96)
    for got, expected in [(engine.video(snippets.to(cuda)), reference.video(snippets)),
                          (engine.audio(segments.to(cuda)), reference.audio(segments))]:
        scale = expected.abs().max().item()
        torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance * scale)


@needs_tensorrt
def test_tensorrt_engine_is_cached_and_a_damaged_one_rebuilt(exported):
    from avemo.engines.tensorrt import TensorRTBackend

    root, _, _, spec = exported
    cuda = torch.device("cuda")
    first = TensorRTBackend(root, spec, "fp32", cuda, opt_batch=3)
    built = first.video_engine.stat().st_mtime_ns
    assert TensorRTBackend(root, spec, "fp32", cuda, opt_batch=3).video_engine.stat().st_mtime_ns == built
    assert list((root / "tensorrt").glob("timing-*.cache"))
    first.video_engine.write_bytes(first.video_engine.read_bytes()[:1000])
    with pytest.warns(UserWarning, match="damaged since it was built"):
        again = TensorRTBackend(root, spec, "fp32", cuda, opt_batch=3)
    x = torch.randint(0, 256, (2, 3, 16, 32, 32), dtype=torch.uint8, device=cuda)
    torch.testing.assert_close(again.video(x), first.video(x))
