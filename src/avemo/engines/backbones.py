"""The two frozen feature extractors exactly as avemo runs them, and the one place that builds them from
the plain settings of ``avemo.spec`` (``build_backbones``).

``VideoFeatures`` takes uint8 snippets and owns the normalisation of its weights, so every runtime (torch,
ONNX, TensorRT) computes the same thing from the same bytes. ``AudioFeatures`` takes normalised spectrogram
segments.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from avemo.choices import Dtype
from avemo.engines.resnet3d import ResNet3d, resnet3d
from avemo.engines.weights import (HARA_2017_CLASSES, WeightsError, load_strict, read_state_dict, sha256_file,
                                   warn_random)
from avemo.spec import (HARA_2017, HARA_2020, IMAGENET, NORMALIZATIONS, RANDOM, RANDOM_SEED, AudioBackbone,
                        AudioConfig, BackboneConfig, FeatureSpec, LandmarkSettings, Normalization, VideoBackbone,
                        VideoConfig, WeightsSpec, random_weights)

VIDEO_HINT = ("pass Hara et al.'s Kinetics checkpoint, e.g. --video-weights resnet-101-kinetics.pth "
              "(2017) or r3d101_K_200ep.pth (2020)")
AUDIO_HINT = "pass torchvision's resnet18-f37072fd.pth with --audio-weights FILE, or --audio-weights imagenet"


class VideoFeatures(nn.Module):
    """uint8 snippets (N, 3, T, H, W) -> layer4 of a 3D ResNet, flattened to (N, C, T' * H' * W')."""

    def __init__(self, net: ResNet3d, normalization: Normalization) -> None:
        super().__init__()
        self.net = net
        self.normalization = normalization
        shape = (1, 3, 1, 1, 1)
        self.register_buffer("scale", torch.tensor(normalization.scale))
        self.register_buffer("mean", torch.tensor(normalization.mean).view(shape))
        self.register_buffer("std", torch.tensor(normalization.std).view(shape))

    def normalize(self, snippets: torch.Tensor) -> torch.Tensor:
        return (snippets.to(self.mean.dtype) * self.scale - self.mean) / self.std

    def forward(self, snippets: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(self.normalize(snippets)).flatten(2)


class AudioFeatures(nn.Module):
    """Spectrogram segments (N, F, W) -> ResNet-18 layer4, averaged over space: (N, 512).

    The single spectrogram channel is repeated to the three input channels. No ImageNet mean/std is applied:
    the segments are already normalised per clip to zero mean and unit variance, the statistics that
    ImageNet normalisation gives photographs.
    """

    def __init__(self, net: torchvision.models.ResNet) -> None:
        super().__init__()
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool,
                                   net.layer1, net.layer2, net.layer3, net.layer4)

    def forward(self, segments: torch.Tensor) -> torch.Tensor:
        x = segments.unsqueeze(1).expand(-1, 3, -1, -1)
        return self.trunk(x).mean(dim=(2, 3))


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return build()


def calibrate_batchnorm(net: nn.Module, example_shape: tuple[int, ...]) -> nn.Module:
    """Give randomly initialised BatchNorm layers the statistics of seeded unit noise.

    A fresh BatchNorm in eval mode is the identity, so through 33 residual blocks random features reach
    ~1e4 and can overflow the float16 cache. One train-mode pass with cumulative averaging makes every layer
    output roughly unit-scale, deterministically (random weights are for demos and tests only).
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(RANDOM_SEED)
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None
        net.train()(torch.randn(example_shape))
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
    return net.eval()


def build_video(config: BackboneConfig) -> tuple[VideoFeatures, VideoBackbone]:
    """The video extractor with its weights loaded strictly (or seeded random weights, loudly).

    The normalisation follows the release: 2017 files (400 classes, or saved without BatchNorm counters as
    PyTorch 0.3 did) get 0-255 minus the ActivityNet mean, the others the 2020 0-1 mean/std.
    """
    if config.video_normalization != "auto" and config.video_normalization not in NORMALIZATIONS:
        raise WeightsError(f"unknown video normalisation {config.video_normalization!r}; choose auto, "
                           + ", ".join(NORMALIZATIONS))
    if config.video_weights == RANDOM:
        warn_random("VIDEO")
        net = calibrate_batchnorm(_seeded(lambda: resnet3d(config.video_arch)), (2, 3, 16, 64, 64))
        weights = random_weights(400)
        normalization = HARA_2020
    else:
        path = Path(config.video_weights)
        state = read_state_dict(path, VIDEO_HINT)
        if "fc.weight" not in state or "conv1.weight" not in state or state["conv1.weight"].dim() != 5:
            raise WeightsError(f"{path}: not a 3D ResNet checkpoint (no 5-D conv1.weight / fc.weight); "
                               f"{VIDEO_HINT}")
        classes = state["fc.weight"].shape[0]
        # The 2017 release was saved by PyTorch 0.3 (no BatchNorm counters) and has 400 classes.
        from_2017 = classes == HARA_2017_CLASSES or not any(k.endswith("num_batches_tracked") for k in state)
        net = resnet3d(config.video_arch, num_classes=classes, conv1_t_size=state["conv1.weight"].shape[2])
        load_strict(net, state, path, f"Hara {config.video_arch}")
        release = HARA_2017 if from_2017 else HARA_2020
        normalization = release
        weights = WeightsSpec(sha256_file(path), release.name, str(path.resolve()), classes)
    if config.video_normalization != "auto":
        normalization = NORMALIZATIONS[config.video_normalization]
    spec = VideoBackbone(config.video_arch, weights, normalization)
    return VideoFeatures(net, normalization).eval().requires_grad_(False), spec


def _imagenet_file() -> Path:
    """torchvision's ImageNet ResNet-18, from the torch hub cache or downloaded into it."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # the file name carries the first hex digits of its sha256, as torchvision checks it
            torch.hub.download_url_to_file(weights.url, str(path), hash_prefix=path.stem.rsplit("-", 1)[-1],
                                           progress=True)
        except Exception as err:  # noqa: BLE001 - any network failure means the same to the user
            raise WeightsError(f"{weights.url}: cannot download the ImageNet ResNet-18 ({type(err).__name__}); "
                               f"fetch {path.name} elsewhere and pass --audio-weights FILE") from None
    return path


def build_audio(config: BackboneConfig) -> tuple[AudioFeatures, AudioBackbone]:
    """The audio extractor (torchvision ResNet-18) with ImageNet, file or seeded random weights."""
    net = _seeded(lambda: torchvision.models.resnet18(weights=None))
    if config.audio_weights == RANDOM:
        warn_random("AUDIO")
        calibrate_batchnorm(net, (2, 3, 256, 96))
        weights = random_weights(1000)
    else:
        path = _imagenet_file() if config.audio_weights == IMAGENET else Path(config.audio_weights)
        state = read_state_dict(path, AUDIO_HINT)
        load_strict(net, state, path, "torchvision ResNet-18")
        release = "torchvision-imagenet" if config.audio_weights == IMAGENET else "state-dict"
        weights = WeightsSpec(sha256_file(path), release, str(path.resolve()), net.fc.out_features)
    return AudioFeatures(net).eval().requires_grad_(False), AudioBackbone(weights)


def build_backbones(config: BackboneConfig, video: VideoConfig = VideoConfig(), audio: AudioConfig = AudioConfig(),
                    dtype: str = Dtype.float16.value, landmarks: LandmarkSettings | None = None,
                    ) -> tuple[VideoFeatures, AudioFeatures, FeatureSpec]:
    """Both backbones as ``config`` says, and the spec of the features they make with these settings
    (``landmarks``: for crop "landmarks", its settings; the defaults when not given)."""
    video_net, video_backbone = build_video(config)
    audio_net, audio_backbone = build_audio(config)
    return video_net, audio_net, FeatureSpec.of(video_backbone, audio_backbone, video, audio, dtype, landmarks)
