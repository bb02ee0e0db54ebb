from pathlib import Path

import pytest
import torch

from avemo.engines.backbones import build_audio, build_video
from avemo.engines.runtime import Runtime, RuntimeRequest
from avemo.engines.torch import TorchBackend
from avemo.errors import SetupError
from avemo.spec import BackboneConfig


@pytest.fixture(scope="module")
def nets():
    return build_video(BackboneConfig(video_arch="r3d10"))[0], build_audio(BackboneConfig())[0]


def test_features_do_not_depend_on_batch_company_or_splitting(nets):
    """Eval-mode BatchNorm: a clip's features are the same alone or in a batch (the seed ran train mode)."""
    video, audio = nets
    snippets = torch.randint(0, 256, (5, 3, 16, 32, 32), dtype=torch.uint8)
    segments = torch.randn(5, 256, 96)
    whole = TorchBackend(video, audio, torch.device("cpu"), max_batch=64)
    split = TorchBackend(video, audio, torch.device("cpu"), max_batch=2)
    v, a = whole.video(snippets), whole.audio(segments)
    assert v.shape == (5, 512, 1) and a.shape == (5, 512) and not v.requires_grad
    # oneDNN picks kernels by batch size, so expect float rounding (~1e-5); batch statistics would move
    # features by O(1).
    tol = dict(rtol=1e-4, atol=1e-4 * v.abs().max().item())
    torch.testing.assert_close(split.video(snippets), v, **tol)
    torch.testing.assert_close(whole.video(snippets[3:4]), v[3:4], **tol)
    torch.testing.assert_close(split.audio(segments), a, rtol=1e-4, atol=1e-4)


def test_full_size_backbones_give_the_paper_shapes():
    video, _ = build_video(BackboneConfig())
    audio, _ = build_audio(BackboneConfig())
    backend = RuntimeRequest(device="cpu").resolve().create(video, audio)
    v = backend.video(torch.randint(0, 256, (1, 3, 16, 112, 112), dtype=torch.uint8))
    a = backend.audio(torch.randn(6, 256, 96))
    assert v.shape == (1, 2048, 16) and a.shape == (6, 512)
    assert torch.isfinite(v).all() and v.abs().max() < 6e4  # fits float16


CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_device_and_backend_names_are_checked(monkeypatch):
    assert RuntimeRequest(device="cpu").resolve() == Runtime("torch", CPU, RuntimeRequest(device="cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert RuntimeRequest().resolve().device == CPU  # auto without a GPU
    with pytest.raises(SetupError, match="^--device cuda asked for, but PyTorch sees no CUDA device; use --device cpu$"):
        RuntimeRequest(device="cuda").resolve()
    with pytest.raises(SetupError, match="unknown device 'tpu'; choose auto, cpu or cuda"):
        RuntimeRequest(device="tpu").resolve()
    with pytest.raises(SetupError, match="unknown backend 'tensorflow'; choose from auto, torch, onnxruntime"):
        RuntimeRequest(backend="tensorflow").resolve(CPU)
    with pytest.raises(SetupError, match="--precision 'int8': choose fp32, bf16, fp16"):
        RuntimeRequest(precision="int8").resolve(CPU)


def test_the_device_given_replaces_the_one_asked_for(monkeypatch):
    """Under torchrun each rank resolves on its own GPU, whatever --device auto would pick in the process."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runtime = RuntimeRequest(precision="fp16").resolve(torch.device("cuda", 3))
    assert runtime.device == torch.device("cuda", 3) and runtime.backend == "torch"


def _assert_near(got: torch.Tensor, expected: torch.Tensor, tolerance: float) -> None:
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance * scale)


def test_bf16_torch_backend_is_close_to_fp32_and_leaves_the_nets_alone(nets):
    video, audio = nets
    snippets = torch.randint(0, 256, (3, 3, 16, 32, 32), dtype=torch.uint8)
    segments = torch.randn(3, 256, 96)
    reference = TorchBackend(video, audio, torch.device("cpu"))
    half = TorchBackend(video, audio, torch.device("cpu"), precision="bf16")
    assert half.name == "torch-bf16"
    # bf16 keeps 8 bits of mantissa: errors of a few % of the largest feature after 10 layers.
    _assert_near(half.video(snippets), reference.video(snippets), 6e-2)
    _assert_near(half.audio(segments), reference.audio(segments), 6e-2)
    assert next(video.parameters()).dtype == torch.float32  # the caller's nets were not cast in place


@pytest.mark.slow
def test_compiled_torch_backend_equals_eager(nets):
    video, audio = nets
    snippets = torch.randint(0, 256, (2, 3, 16, 32, 32), dtype=torch.uint8)
    segments = torch.randn(2, 256, 96)
    eager = TorchBackend(video, audio, torch.device("cpu"))
    compiled = TorchBackend(video, audio, torch.device("cpu"), compile=True)
    assert compiled.name == "torch-fp32-compiled"
    _assert_near(compiled.video(snippets), eager.video(snippets), 1e-4)
    _assert_near(compiled.audio(segments), eager.audio(segments), 1e-4)


@pytest.mark.parametrize("request_, message", [
    (RuntimeRequest(precision="fp16"), "--precision fp16 with the torch backend needs CUDA; on a CPU use bf16 or fp32"),
    (RuntimeRequest(cuda_graphs=True), "--cuda-graphs needs a CUDA device"),
    (RuntimeRequest(backend="onnxruntime"), "--backend onnxruntime needs --engines DIR (made by avemo export)"),
    (RuntimeRequest(backend="onnxruntime", engines=Path("e"), precision="bf16"),
     "--precision bf16: exported graphs are fp32 or fp16"),
    (RuntimeRequest(backend="onnxruntime", engines=Path("e"), compile=True),
     "--compile and --cuda-graphs are options of the torch backend, not onnxruntime"),
])
def test_runtimes_that_cannot_work_on_a_cpu_are_refused_in_one_line(request_, message):
    with pytest.raises(SetupError) as refused:
        request_.resolve(CPU)
    assert str(refused.value) == message


def test_auto_prefers_tensorrt_then_onnxruntime_gpu_then_torch(monkeypatch, tmp_path):
    from avemo.engines import runtime, tensorrt

    def auto(device, engines):
        return RuntimeRequest(engines=engines).resolve(device).backend

    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: True)
    monkeypatch.setattr(runtime, "_onnxruntime_has_cuda", lambda: True)
    assert auto(CUDA, tmp_path) == "tensorrt"
    assert auto(CUDA, None) == "torch"  # both ONNX runtimes need exported graphs
    assert auto(CPU, tmp_path) == "torch"  # faster than ONNX Runtime's CPU provider (benchmarks/RESULTS.md)
    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: False)
    assert auto(CUDA, tmp_path) == "onnxruntime"
    monkeypatch.setattr(runtime, "_onnxruntime_has_cuda", lambda: False)
    assert auto(CUDA, tmp_path) == "torch"


def test_tensorrt_backend_needs_engines_tensorrt_and_cuda(tmp_path, monkeypatch):
    from avemo.engines import tensorrt

    with pytest.raises(SetupError, match="--backend tensorrt needs --engines"):
        RuntimeRequest(backend="tensorrt").resolve(CPU)
    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: False)
    with pytest.raises(SetupError, match="TensorRT is not installed; pip install 'avemo\\[gpu\\]'"):
        RuntimeRequest(backend="tensorrt", engines=tmp_path).resolve(CPU)
    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: True)
    with pytest.raises(SetupError, match="--backend tensorrt runs on a CUDA device; use --device cuda"):
        RuntimeRequest(backend="tensorrt", engines=tmp_path).resolve(CPU)


def test_each_backend_is_built_with_its_own_settings(nets, tmp_path, monkeypatch):
    """The registry hands TensorRT the engines, precision and batch profile; torch its nets and options."""
    from avemo.engines import tensorrt

    made = {}

    class FakeTensorRT:
        def __init__(self, engines, spec, precision, device, opt_batch):
            made.update(engines=engines, spec=spec, precision=precision, device=device, opt_batch=opt_batch)

    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: True)
    monkeypatch.setattr(tensorrt, "TensorRTBackend", FakeTensorRT)
    request = RuntimeRequest(backend="tensorrt", precision="fp16", engines=tmp_path, opt_batch=24)
    runtime = request.resolve(torch.device("cuda", 1))
    with pytest.raises(SetupError, match="checked against a feature spec; none given"):
        runtime.create(*nets)
    runtime.create(*nets, spec="the spec")
    assert made == dict(engines=tmp_path, spec="the spec", precision="fp16", device=torch.device("cuda", 1),
                        opt_batch=24)
    backend = RuntimeRequest(device="cpu", precision="bf16").resolve().create(*nets)
    assert isinstance(backend, TorchBackend) and backend.name == "torch-bf16" and backend.device == CPU


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("options, tolerance", [
    (dict(precision="fp32"), 1e-3), (dict(precision="fp16"), 2e-2), (dict(precision="bf16"), 6e-2),
    (dict(precision="fp16", cuda_graphs=True), 2e-2), (dict(precision="fp16", compile=True), 2e-2),
])
def test_cuda_torch_backend_matches_the_cpu(nets, options, tolerance):
    video, audio = nets
    snippets = torch.randint(0, 256, (5, 3, 16, 32, 32), dtype=torch.uint8)
    segments = torch.randn(5, 256, 96)
    reference = TorchBackend(video, audio, torch.device("cpu"))
    expected_video, expected_audio = reference.video(snippets), reference.audio(segments)
    gpu = TorchBackend(video, audio, torch.device("cuda"), max_batch=2, **options)
    for _ in range(2):  # the second pass replays the captured graphs
        _assert_near(gpu.video(snippets.cuda()), expected_video, tolerance)
        _assert_near(gpu.audio(segments.cuda()), expected_audio, tolerance)
