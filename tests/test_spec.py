"""The feature spec: exact JSON round trip, identity without paths, named differences, the fingerprint's layout."""

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from avemo.spec import (AudioBackbone, AudioConfig, FaceDetector, FeatureSpec, Normalization, SpecError, VideoBackbone,
                        VideoConfig, WeightsSpec)
from tests.conftest import make_spec


@pytest.mark.parametrize("crop", ["face", "center", "none"])
def test_json_round_trips_exactly(crop):
    spec = make_spec(VideoConfig(crop=crop, size=64, resize=64), dtype="float32")
    text = json.dumps(spec.to_json())
    again = FeatureSpec.from_json(json.loads(text))
    assert again == spec and json.dumps(again.to_json()) == text and again.fingerprint == spec.fingerprint


def test_where_weights_were_read_from_is_not_part_of_the_identity():
    spec = make_spec()
    moved = replace(spec.video_backbone.weights, path="/somewhere/else.pth")
    elsewhere = replace(spec, video_backbone=replace(spec.video_backbone, weights=moved))
    assert elsewhere != spec and elsewhere.fingerprint == spec.fingerprint and spec.differences(elsewhere) == []


def test_differences_name_what_would_change_the_features():
    spec = make_spec()
    other = make_spec(VideoConfig(crop="face", size=64, resize=64), dtype="float32", sha256="cd" * 32)
    assert spec.differences(other) == ["backbones.video.weights.sha256", "dtype", "face", "video.crop",
                                       "video.resize", "video.size"]
    assert spec.differences(other, within=spec.graph_scope("video")) == ["backbones.video.weights.sha256",
                                                                         "video.size"]
    assert spec.differences(other, within=spec.graph_scope("audio")) == []


HARA_2020_INPUT = {"name": "hara2020", "scale": 1 / 255, "mean": [0.4345, 0.4051, 0.3775],
                   "std": [0.2768, 0.2713, 0.2737]}
AUDIO_INPUT_WORDS = "per-clip z-scored log spectrogram, 1 channel repeated to 3"
AUDIO_DEFAULTS = {"sample_rate": 16000, "window_ms": 32.0, "hop_ms": 10.0, "freq_bins": 256, "segment_frames": 96,
                  "top_db": 80.0}
FIXTURES = Path(__file__).parent / "cache" / "fixtures"


def literal_spec(sha256: str, arch: str, video: VideoConfig, face: FaceDetector | None = None) -> FeatureSpec:
    """A spec written out value by value, as a cache or a run stores it (no helper of the code under test)."""
    return FeatureSpec(
        VideoBackbone(arch, WeightsSpec(sha256, "hara2020", "/weights/r3d10_K_200ep.pth", 700),
                      Normalization("hara2020", 1 / 255, (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737))),
        AudioBackbone(WeightsSpec("random-seed-0", "random", None, 1000), "resnet18", AUDIO_INPUT_WORDS),
        video, AudioConfig(16000, 32.0, 10.0, 256, 96, 80.0), face, "float16")


def test_the_fingerprint_hashes_the_layout_caches_have_always_hashed():
    """The documented layout, written out by hand: sha256 of its sorted JSON, first 16 hex digits. The centre
    crop is left out of ``video`` (it was the only crop then); where the weights were read from is not in it."""
    spec = literal_spec("ab" * 32, "r3d10", VideoConfig(snippets=6, frames=16, size=112, resize=112, crop="center"))
    layout = {
        "inputs": {
            "backbones": {
                "video": {"arch": "r3d10", "weights_sha256": "ab" * 32, "normalization": HARA_2020_INPUT},
                "audio": {"arch": "resnet18", "weights_sha256": "random-seed-0", "input": AUDIO_INPUT_WORDS},
            },
            "video": {"snippets": 6, "frames": 16, "size": 112, "resize": 112},
            "audio": AUDIO_DEFAULTS,
            "features": "avemo-features/1",
        },
        "dtype": "float16",
    }
    by_hand = hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:16]
    assert by_hand == "02ec53ad471fa36e"  # derived once from the layout above: the layout must not drift either
    assert spec.fingerprint == by_hand
    assert make_spec().fingerprint == by_hand  # the tests' usual spec is this one
    assert FeatureSpec.from_fingerprint_inputs(layout["inputs"], "float16").fingerprint == by_hand


# What avemo 0.1 recorded of its still-box cascade, value by value.
LEGACY_FACE = {"skimage": "0.26.0", "detector": "skimage-lbp-frontal-face", "frames": 3, "detect_side": 160,
               "decode_side": 256, "margin": 1.4, "centre_shift": 0.1, "min_hits": 2}


@pytest.mark.parametrize("name, video, face", [
    ("legacy-center", VideoConfig(size=32, resize=32), None),
    ("legacy-face", VideoConfig(size=32, resize=32, crop="face"), FaceDetector.from_dict(LEGACY_FACE)),
])
def test_caches_written_before_specs_existed_keep_their_fingerprints(name, video, face):
    """The fingerprint an old cache recorded is the one FeatureSpec gives its settings, written out here."""
    manifest = json.loads((FIXTURES / name / "manifest.json").read_text())
    spec = literal_spec("random-seed-0", "r3d10", video, face)
    assert spec.fingerprint == manifest["fingerprint"]
    assert FeatureSpec.from_fingerprint_inputs(manifest["inputs"], manifest["dtype"]).fingerprint == manifest["fingerprint"]


def test_the_spec_is_described_without_torch_or_numpy():
    code = "import sys, avemo.spec; assert not {'torch', 'numpy'} & set(sys.modules), sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_malformed_specs_are_refused_naming_the_problem():
    data = make_spec().to_json()
    with pytest.raises(SpecError, match="format"):
        FeatureSpec.from_json({**data, "format": "avemo-features/0"})
    del data["video"]
    with pytest.raises(SpecError, match="malformed feature spec.*video"):
        FeatureSpec.from_json(data)
    with pytest.raises(ValueError, match="face detector"):
        replace(make_spec(VideoConfig(crop="face")), face=None)
