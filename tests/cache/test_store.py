import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from avemo.cache import CacheError, FeatureCache
from avemo.spec import FaceDetector, FeatureSpec, VideoConfig
from tests.conftest import make_spec

SPEC = make_spec()
SHAPES = ((6, 8, 4), (6, 5))
FIXTURES = Path(__file__).parent / "fixtures"


def _cache(root, spec=SPEC):
    return FeatureCache.create_or_open(root, spec, *SHAPES)


def _write(cache, clip_id, value=1.0):
    record = {"clip_id": clip_id, "actor": 3, "emotion": "sad", "dataset": "ravdess"}
    cache.write(clip_id, torch.full(SHAPES[0], value), torch.full(SHAPES[1], -value), record, 96, 3.2,
                produced_by="torch-fp32, pyav decoder")


def test_round_trip_in_float16_with_metadata(tmp_path):
    cache = _cache(tmp_path)
    _write(cache, "a", 0.333)
    video, audio = cache.read("a")
    assert video.dtype == torch.float16 and video.shape == SHAPES[0] and audio.shape == SHAPES[1]
    assert video[0, 0, 0].item() == pytest.approx(0.333, abs=1e-3)
    (entry,) = cache.index()
    assert entry == {"clip_id": "a", "actor": 3, "emotion": "sad", "dataset": "ravdess", "frame_count": 96,
                     "duration": 3.2, "produced_by": "torch-fp32, pyav decoder", "crop": None}
    assert not (tmp_path / "index.json").exists()  # reading never writes
    assert cache.write_index() == [entry]
    assert json.loads((tmp_path / "index.json").read_text())["fingerprint"] == cache.fingerprint


def test_reopening_with_the_same_inputs_resumes(tmp_path):
    _write(_cache(tmp_path), "a")
    again = _cache(tmp_path)
    assert again.has("a") and not again.has("b")


def test_other_inputs_are_refused_naming_what_changed(tmp_path):
    _write(_cache(tmp_path), "a")
    with pytest.raises(CacheError, match=r"differs in video\.resize, video\.size\)") as info:
        _cache(tmp_path, make_spec(VideoConfig(size=64, resize=64)))
    assert str(tmp_path) in str(info.value)
    with pytest.raises(CacheError, match=r"differs in dtype\)"):
        _cache(tmp_path, make_spec(dtype="float32"))
    with pytest.raises(CacheError, match=r"differs in face, video\.crop\)"):
        _cache(tmp_path, make_spec(VideoConfig(crop="face")))
    assert _cache(tmp_path).has("a")  # the refusal wrote nothing


def test_half_written_and_foreign_entries_are_not_counted(tmp_path):
    cache = _cache(tmp_path)
    _write(cache, "a")
    _write(cache, "b")
    good = cache.entry_path("b").read_bytes()
    cache.entry_path("b").write_bytes(good[: len(good) // 2])  # as if copied half-way
    cache.entry_path("c").write_bytes(b"garbage")
    entries, broken = cache.scan()
    assert [e["clip_id"] for e in entries] == ["a"]
    assert sorted(p.name for p in broken) == ["b.safetensors", "c.safetensors"]
    assert not cache.has("b") and [e["clip_id"] for e in cache.index()] == ["a"]


def test_temporary_files_of_dead_writers_are_removed(tmp_path):
    cache = _cache(tmp_path)
    dead = cache.clips_dir / ".a.safetensors.999999999.tmp"
    alive = cache.clips_dir / f".b.safetensors.{os.getpid()}.tmp"
    dead.write_bytes(b"half")
    alive.write_bytes(b"in progress")
    _cache(tmp_path)
    assert not dead.exists() and alive.exists()


def test_wrong_shapes_and_non_finite_features_are_refused(tmp_path):
    cache = _cache(tmp_path)
    with pytest.raises(CacheError, match="shapes"):
        cache.write("a", torch.zeros(6, 8, 5), torch.zeros(6, 5), {}, 1, 1.0)
    for value in (float("inf"), 7e4):  # 7e4 is finite in float32 but overflows float16
        bad = torch.zeros(SHAPES[0])
        bad[0, 0, 0] = value
        with pytest.raises(CacheError, match="not finite in float16"):
            cache.write("a", bad, torch.zeros(SHAPES[1]), {}, 1, 1.0)
    assert not cache.entry_path("a").exists()


def test_entry_with_malformed_metadata_counts_as_broken(tmp_path):
    from safetensors.torch import save_file

    cache = _cache(tmp_path)
    save_file({"video": torch.zeros(SHAPES[0]), "audio": torch.zeros(SHAPES[1])}, str(cache.entry_path("x")),
              metadata={"fingerprint": cache.fingerprint, "record": "{not json"})
    assert not cache.has("x") and cache.scan()[1] == [cache.entry_path("x")]


def test_a_non_empty_folder_without_manifest_is_not_adopted(tmp_path):
    (tmp_path / "Actor_01").mkdir()
    with pytest.raises(CacheError, match="not empty and holds no manifest.json"):
        _cache(tmp_path)
    assert not (tmp_path / "manifest.json").exists()


def test_open_refuses_a_folder_that_is_not_a_cache(tmp_path):
    with pytest.raises(CacheError, match="not an avemo feature cache"):
        FeatureCache.open(tmp_path)


def test_the_same_weights_read_from_another_place_resume_and_are_recorded_there(tmp_path):
    _write(_cache(tmp_path), "a")
    weights = replace(SPEC.video_backbone.weights, path="/elsewhere/r3d10_K_200ep.pth")
    moved = replace(SPEC, video_backbone=replace(SPEC.video_backbone, weights=weights))
    assert moved.fingerprint == SPEC.fingerprint and moved.differences(SPEC) == []
    reopened = _cache(tmp_path, moved)
    assert reopened.has("a") and reopened.spec == moved
    assert FeatureCache.open(tmp_path).spec.video_backbone.weights.path == "/elsewhere/r3d10_K_200ep.pth"


@pytest.mark.parametrize("name, crop", [("legacy-center", "center"), ("legacy-face", "face")])
def test_caches_written_before_specs_existed_keep_opening_and_resuming(tmp_path, name, crop):
    """Fixtures written by avemo 0.1.0 as it landed on 2026-11-24 (r3d10, size 32, random weights)."""
    root = tmp_path / name
    shutil.copytree(FIXTURES / name, root)
    manifest = json.loads((root / "manifest.json").read_text())
    assert "spec" not in manifest and "inputs" in manifest  # today's format, as the fixture claims
    cache = FeatureCache.open(root)
    spec = cache.spec
    assert spec.fingerprint == manifest["fingerprint"]
    assert spec.video.crop == crop and spec.video.size == 32 and spec.video_backbone.arch == "r3d10"
    assert (spec.face is not None) == (crop == "face") and spec.video_backbone.weights.random
    entries, broken = cache.scan()
    assert len(entries) == 2 and broken == []
    shapes = tuple(manifest["video_shape"]), tuple(manifest["audio_shape"])
    # The settings it was made with resume it (a spec read back from its layout has the same fingerprint).
    same = FeatureSpec.from_json(spec.to_json())
    resumed = FeatureCache.create_or_open(root, same, *shapes)
    assert [e["clip_id"] for e in resumed.index()] == [e["clip_id"] for e in entries]
    if crop == "face":  # avemo 0.1's still cascade crops otherwise than today's detector: refused, named
        today = replace(spec, face=FaceDetector.current())
        with pytest.raises(CacheError, match=r"differs in .*face\.detector|differs in .*face\.tracking"):
            FeatureCache.create_or_open(root, today, *shapes)
