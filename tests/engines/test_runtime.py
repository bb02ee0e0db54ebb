import pytest
import torch

from avemo.engines.backbones import BackboneConfig, build_audio, build_video
from avemo.engines.runtime import TorchBackend, create_backend, resolve_device


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
