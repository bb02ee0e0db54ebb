"""bf16 on a CPU that only emulates it: extract warns once (it would run several times slower than fp32)."""

import warnings

import pytest
import torch

import avemo.engines.torch as torch_engine
from avemo.engines.backbones import build_audio, build_video
from avemo.engines.torch import TorchBackend
from avemo.spec import BackboneConfig


@pytest.fixture(scope="module")
def nets():
    return build_video(BackboneConfig(video_arch="r3d10"))[0], build_audio(BackboneConfig())[0]


def test_emulated_bf16_warns_once_per_process(nets, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # what the slowest CI machine has: no native bf16
    monkeypatch.setattr(torch_engine, "_warned_bf16", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TorchBackend(*nets, torch.device("cpu"), precision="bf16")
        TorchBackend(*nets, torch.device("cpu"), precision="bf16")
        TorchBackend(*nets, torch.device("cpu"), precision="fp32")
    messages = [str(w.message) for w in caught if "bf16" in str(w.message)]
    assert len(messages) == 1
    assert "emulates it, several times slower than fp32" in messages[0] and "--precision fp32" in messages[0]


def test_native_bf16_does_not_warn(nets, monkeypatch):
    monkeypatch.setattr("avemo.machine.native_bf16", lambda: True)
    monkeypatch.setattr(torch_engine, "_warned_bf16", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TorchBackend(*nets, torch.device("cpu"), precision="bf16")
    assert not [w for w in caught if "bf16" in str(w.message)]
