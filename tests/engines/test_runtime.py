import pytest
import torch

from avemo.engines.backbones import BackboneConfig, build_audio, build_video
from avemo.engines.runtime import create_backend, resolve_device
from avemo.engines.torch import TorchBackend


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
    backend = create_backend("auto", video, audio, torch.device("cpu"))
    v = backend.video(torch.randint(0, 256, (1, 3, 16, 112, 112), dtype=torch.uint8))
    a = backend.audio(torch.randn(6, 256, 96))
    assert v.shape == (1, 2048, 16) and a.shape == (6, 512)
    assert torch.isfinite(v).all() and v.abs().max() < 6e4  # fits float16


def test_device_and_backend_names_are_checked(nets):
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(RuntimeError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(RuntimeError, match="unknown backend"):
        create_backend("tensorflow", *nets, torch.device("cpu"))


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
    # bf16 keeps 8 bits of mantissa: ~3% of the largest feature after 10 layers, measured 3.5%.
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


def test_torch_options_that_need_cuda_are_refused_on_a_cpu(nets):
    with pytest.raises(RuntimeError, match="fp16 with the torch backend needs CUDA"):
        TorchBackend(*nets, torch.device("cpu"), precision="fp16")
    with pytest.raises(RuntimeError, match="--cuda-graphs needs a CUDA device"):
        TorchBackend(*nets, torch.device("cpu"), cuda_graphs=True)
    with pytest.raises(RuntimeError, match="choose fp32, fp16, bf16"):
        TorchBackend(*nets, torch.device("cpu"), precision="int8")


def test_auto_prefers_tensorrt_then_onnxruntime_gpu_then_torch(monkeypatch, tmp_path):
    from avemo.engines import runtime, tensorrt

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: True)
    monkeypatch.setattr(runtime, "_onnxruntime_has_cuda", lambda: True)
    assert runtime.choose_backend(cuda, tmp_path) == "tensorrt"
    assert runtime.choose_backend(cuda, None) == "torch"  # both ONNX runtimes need exported graphs
    assert runtime.choose_backend(cpu, tmp_path) == "torch"  # measured faster than ONNX Runtime's CPU provider
    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: False)
    assert runtime.choose_backend(cuda, tmp_path) == "onnxruntime"
    monkeypatch.setattr(runtime, "_onnxruntime_has_cuda", lambda: False)
    assert runtime.choose_backend(cuda, tmp_path) == "torch"


def test_tensorrt_backend_needs_engines_and_tensorrt(nets, tmp_path, monkeypatch):
    from avemo.engines import tensorrt

    with pytest.raises(RuntimeError, match="--backend tensorrt needs --engines"):
        create_backend("tensorrt", *nets, torch.device("cpu"))
    monkeypatch.setattr(tensorrt, "tensorrt_installed", lambda: False)
    with pytest.raises(RuntimeError, match="TensorRT is not installed; pip install 'avemo\\[gpu\\]'"):
        create_backend("tensorrt", *nets, torch.device("cpu"), engines=tmp_path)


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
