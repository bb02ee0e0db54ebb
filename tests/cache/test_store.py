import json
import os

import pytest
import torch

from avemo.cache import CacheError, FeatureCache

INPUTS = {"backbones": {"video": {"weights_sha256": "abc"}}, "video": {"size": 112, "mean": (1.0, 2.0)}}
SHAPES = ((6, 8, 4), (6, 5))


def _cache(root, inputs=INPUTS, dtype="float16"):
    return FeatureCache.create_or_open(root, inputs, *SHAPES, dtype)


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
    changed = {**INPUTS, "video": {"size": 64, "mean": (1.0, 2.0)}}
    with pytest.raises(CacheError, match=r"differs in video\.size\)") as info:
        _cache(tmp_path, changed)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(CacheError, match="differs in dtype"):
        _cache(tmp_path, dtype="float32")
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
