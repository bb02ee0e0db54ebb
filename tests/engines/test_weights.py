"""Loading Hara's and torchvision's checkpoints in their real file formats, with random values."""

from pathlib import Path

import pytest
import torch
import torchvision

from avemo.engines.backbones import build_audio, build_video
from avemo.engines.resnet3d import resnet3d
from avemo.engines.weights import WeightsError, sha256_file
from avemo.spec import BackboneConfig
from tests.engines.reference import hara_layer4


def _randomise(state: dict) -> dict:
    """Non-trivial BatchNorm statistics, so that a wrongly wired or unnormalised model cannot agree."""
    g = torch.Generator().manual_seed(0)
    out = {}
    for key, value in state.items():
        if key.endswith("running_var") or (key.endswith(".weight") and value.dim() == 1 and "bn" in key) or \
                (key.endswith("downsample.1.weight")):
            value = torch.rand(value.shape, generator=g) + 0.5
        elif key.endswith("running_mean") or (key.endswith(".bias") and value.dim() == 1 and not key.startswith("fc")):
            value = torch.randn(value.shape, generator=g) * 0.1
        out[key] = value
    return out


def save_hara(path: Path, arch: str, classes: int, release: int, conv1_t_size: int = 7) -> dict:
    """A checkpoint laid out like Hara's releases: {'state_dict': {'module.<key>': ...}, 'arch', ...}.

    The 2017 files come from PyTorch 0.3: legacy (non-zip) serialisation and no num_batches_tracked.
    """
    state = _randomise(resnet3d(arch, num_classes=classes, conv1_t_size=conv1_t_size).state_dict())
    if release == 2017:
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    depth = arch.removeprefix("r3d")
    checkpoint = {"epoch": 200, "arch": f"resnet-{depth}", "state_dict": {f"module.{k}": v for k, v in state.items()},
                  "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=(release != 2017))
    return state


# Written out here, not imported: a wrong constant in avemo must fail these tests.
ACTIVITYNET_0_255 = ("hara2017", 1.0, (114.7748, 107.7354, 99.4750), (1.0, 1.0, 1.0))
KINETICS_0_1 = ("hara2020", 1 / 255, (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737))


@pytest.mark.slow
@pytest.mark.parametrize("release, classes, norm", [(2017, 400, ACTIVITYNET_0_255), (2020, 700, KINETICS_0_1)])
def test_full_size_hara_r3d101_loads_strictly_and_matches_reference_forward(tmp_path, release, classes, norm):
    path = tmp_path / "resnet-101-kinetics.pth"
    state = save_hara(path, "r3d101", classes, release)
    video, info = build_video(BackboneConfig(video_weights=str(path), video_arch="r3d101"))
    name, scale, mean, std = norm
    assert info.weights.release == name and info.weights.classes == classes and info.weights.sha256 == sha256_file(path)
    assert not video.training and not any(p.requires_grad for p in video.parameters())
    pixels = torch.randint(0, 256, (1, 3, 16, 112, 112), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    normalised = (pixels.double() * scale - torch.tensor(mean, dtype=torch.double).view(1, 3, 1, 1, 1)) \
        / torch.tensor(std, dtype=torch.double).view(1, 3, 1, 1, 1)
    normalised = normalised.float()
    with torch.inference_mode():
        ours = video(pixels)
        reference = hara_layer4(state, normalised, [3, 4, 23, 3], bottleneck=True)
    assert ours.shape == (1, 2048, 16) and reference.shape == (1, 2048, 1, 4, 4)
    torch.testing.assert_close(ours, reference.flatten(2), rtol=1e-4, atol=1e-4 * reference.abs().max().item())


def test_stem_temporal_kernel_is_read_from_the_checkpoint(tmp_path):
    path = tmp_path / "r3d18_K_200ep.pth"
    state = save_hara(path, "r3d18", 700, 2020, conv1_t_size=3)
    video, info = build_video(BackboneConfig(video_weights=str(path), video_arch="r3d18"))
    assert video.net.conv1.kernel_size == (3, 7, 7) and info.weights.release == "hara2020"
    pixels = torch.randint(0, 256, (2, 3, 16, 64, 64), dtype=torch.uint8)
    with torch.inference_mode():
        reference = hara_layer4(state, video.normalize(pixels), [2, 2, 2, 2], bottleneck=False)
        torch.testing.assert_close(video(pixels), reference.flatten(2), rtol=1e-4, atol=1e-4)


def test_a_2017_lineage_fine_tune_keeps_the_2017_normalisation(tmp_path):
    path = tmp_path / "resnet-18-ucf101.pth"  # 101 classes, saved like the 2017 release (no BN counters)
    save_hara(path, "r3d18", 101, 2017)
    video, info = build_video(BackboneConfig(video_weights=str(path), video_arch="r3d18"))
    assert info.weights.release == "hara2017" and video.normalization.mean == ACTIVITYNET_0_255[2]
    forced, _ = build_video(BackboneConfig(video_weights=str(path), video_arch="r3d18",
                                           video_normalization="hara2020"))
    assert forced.normalization.std == KINETICS_0_1[3]
    with pytest.raises(WeightsError, match="unknown video normalisation"):
        build_video(BackboneConfig(video_weights=str(path), video_arch="r3d18", video_normalization="imagenet"))


def test_checkpoint_of_another_depth_is_refused_by_key(tmp_path):
    path = tmp_path / "resnet-50-kinetics.pth"
    save_hara(path, "r3d50", 400, 2017)
    with pytest.raises(WeightsError, match=r"resnet-50-kinetics.pth: not Hara r3d101 weights: .*missing keys \(e.g. layer3.6"):
        build_video(BackboneConfig(video_weights=str(path), video_arch="r3d101"))


def test_basic_block_checkpoint_for_a_bottleneck_model_reports_shapes(tmp_path):
    path = tmp_path / "r3d34.pth"
    save_hara(path, "r3d34", 700, 2020)
    with pytest.raises(WeightsError, match="shape mismatches"):
        build_video(BackboneConfig(video_weights=str(path), video_arch="r3d50"))


def test_2d_checkpoint_is_not_a_3d_resnet(tmp_path):
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(WeightsError, match="not a 3D ResNet checkpoint"):
        build_video(BackboneConfig(video_weights=str(path)))


@pytest.mark.parametrize("content, message", [
    (None, "not found"), (b"", "empty"), (b"PK\x03\x04 definitely not a checkpoint", "not a readable PyTorch checkpoint"),
])
def test_missing_empty_and_corrupt_files(tmp_path, content, message):
    path = tmp_path / "weights.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=message) as info:
        build_video(BackboneConfig(video_weights=str(path)))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_is_never_unpickled_as_code(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        build_video(BackboneConfig(video_weights=str(path)))
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "r3d10.pth"
    save_hara(path, "r3d10", 400, 2020)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="corrupt, truncated"):
        build_video(BackboneConfig(video_weights=str(path), video_arch="r3d10"))


def test_torchvision_resnet18_file_loads_and_matches_torchvision_forward(tmp_path):
    net = torchvision.models.resnet18()
    state = _randomise(net.state_dict())
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state, path)  # torchvision's file is a plain state dict
    audio, info = build_audio(BackboneConfig(audio_weights=str(path)))
    assert info.weights.release == "state-dict" and not audio.training
    net.load_state_dict(state)
    net.fc = torch.nn.Identity()
    segments = torch.randn(3, 256, 96)
    with torch.inference_mode():
        expected = net.eval()(segments.unsqueeze(1).repeat(1, 3, 1, 1))
        torch.testing.assert_close(audio(segments), expected, rtol=1e-4, atol=1e-4)


def test_imagenet_weights_come_from_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cached)
    _, info = build_audio(BackboneConfig(audio_weights="imagenet"))
    assert info.weights.release == "torchvision-imagenet" and info.weights.path == str(cached.resolve())
    assert info.weights.sha256 == sha256_file(cached)


def test_audio_weights_of_another_resnet_are_refused(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34().state_dict(), path)
    with pytest.raises(WeightsError, match="not torchvision ResNet-18 weights: .*unexpected keys"):
        build_audio(BackboneConfig(audio_weights=str(path)))


def test_random_weights_warn_and_are_reproducible():
    with pytest.warns(UserWarning, match="RANDOM VIDEO WEIGHTS"):
        first, info = build_video(BackboneConfig(video_arch="r3d10"))
    with pytest.warns(UserWarning, match="RANDOM AUDIO WEIGHTS"):
        build_audio(BackboneConfig())
    second, _ = build_video(BackboneConfig(video_arch="r3d10"))
    assert info.weights.sha256 == "random-seed-0"
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
