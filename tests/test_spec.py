"""The feature spec: exact JSON round trip, identity without paths, named differences, the fingerprint's layout."""

import hashlib
import json
from dataclasses import replace

import pytest

from avemo.pipeline.video import VideoConfig
from avemo.spec import FeatureSpec, SpecError
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


def test_the_fingerprint_hashes_the_layout_caches_have_always_hashed():
    spec = make_spec()
    inputs = spec.fingerprint_inputs()
    assert "crop" not in inputs["video"] and inputs["backbones"]["video"]["weights_sha256"] == "ab" * 32
    expected = hashlib.sha256(json.dumps({"inputs": inputs, "dtype": "float16"}, sort_keys=True).encode()).hexdigest()
    assert spec.fingerprint == expected[:16]
    assert FeatureSpec.from_fingerprint_inputs(inputs, "float16").fingerprint == spec.fingerprint


def test_malformed_specs_are_refused_naming_the_problem():
    data = make_spec().to_json()
    with pytest.raises(SpecError, match="format"):
        FeatureSpec.from_json({**data, "format": "avemo-features/0"})
    del data["video"]
    with pytest.raises(SpecError, match="malformed feature spec.*video"):
        FeatureSpec.from_json(data)
    with pytest.raises(ValueError, match="face detector"):
        replace(make_spec(VideoConfig(crop="face")), face=None)
