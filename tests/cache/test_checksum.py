"""Checksummed entries: a flipped byte is found, old entries without a checksum still read."""

import json

import pytest
import torch
from safetensors.torch import save

from avemo.cache import DAMAGED, NO_CHECKSUM, OK, DamagedEntryError, FeatureCache
from tests.conftest import make_spec

SHAPES = ((6, 8, 4), (6, 5))


def _cache(root):
    return FeatureCache.create_or_open(root, make_spec(), *SHAPES)


def _write(cache, clip_id, seed=0):
    g = torch.Generator().manual_seed(seed)
    record = {"clip_id": clip_id, "actor": 3, "emotion": "sad", "dataset": "ravdess"}
    cache.write(clip_id, torch.randn(*SHAPES[0], generator=g), torch.randn(*SHAPES[1], generator=g), record, 96, 3.2)


def flip_byte(path, tensor="video", at=17):
    """Flip one bit of one byte inside ``tensor``'s data, as bit rot would; the header stays valid."""
    data = bytearray(path.read_bytes())
    size = int.from_bytes(data[:8], "little")
    start = 8 + size + json.loads(data[8:8 + size])[tensor]["data_offsets"][0]
    data[start + at] ^= 0x04
    path.write_bytes(bytes(data))


def test_written_entries_verify_and_read_verified_equals_read(tmp_path):
    cache = _cache(tmp_path)
    _write(cache, "a")
    (check,) = cache.verify()
    assert (check.clip_id, check.status, check.reason) == ("a", OK, "")
    for plain, verified in zip(cache.read("a"), cache.read("a", verify=True)):
        assert torch.equal(plain, verified)


@pytest.mark.parametrize("tensor", ["video", "audio"])
def test_one_flipped_byte_in_the_features_is_damage_the_header_cannot_see(tmp_path, tensor):
    cache = _cache(tmp_path)
    _write(cache, "a")
    _write(cache, "b", seed=1)
    flip_byte(cache.entry_path("a"), tensor)
    assert [e["clip_id"] for e in cache.scan()[0]] == ["a", "b"]  # the header alone still looks whole
    checks = {c.clip_id: c for c in cache.verify()}
    assert checks["a"].status == DAMAGED and "checksum mismatch" in checks["a"].reason
    assert checks["b"].status == OK
    with pytest.raises(DamagedEntryError, match="a.safetensors: checksum mismatch"):
        cache.read("a", verify=True)


def test_a_changed_label_in_the_metadata_is_damage_too(tmp_path):
    cache = _cache(tmp_path)
    _write(cache, "a")
    path = cache.entry_path("a")
    path.write_bytes(path.read_bytes().replace(b'\\"sad\\"', b'\\"saD\\"'))  # same length: the header parses
    assert cache.scan()[0][0]["emotion"] == "saD"
    (check,) = cache.verify()
    assert check.status == DAMAGED and "checksum mismatch" in check.reason


def test_a_truncated_entry_is_damaged(tmp_path):
    cache = _cache(tmp_path)
    _write(cache, "a")
    path = cache.entry_path("a")
    path.write_bytes(path.read_bytes()[:-10])
    (check,) = cache.verify()
    assert check.status == DAMAGED and "truncated" in check.reason


def test_entries_written_before_checksums_verify_as_no_checksum_never_as_damaged(tmp_path):
    cache = _cache(tmp_path)
    meta = {"fingerprint": cache.fingerprint, "record": json.dumps({"clip_id": "old", "actor": 1, "emotion": "sad",
                                                                    "dataset": "ravdess"}),
            "frame_count": "96", "duration": "3.2000", "produced_by": "", "crop": "null"}  # the old layout
    video, audio = torch.ones(SHAPES[0], dtype=torch.float16), torch.ones(SHAPES[1], dtype=torch.float16)
    cache.entry_path("old").write_bytes(save({"video": video, "audio": audio}, metadata=meta))
    (check,) = cache.verify()
    assert check.status == NO_CHECKSUM
    assert torch.equal(cache.read("old", verify=True)[0], video)
    assert cache.health([], verify=True)["damaged_entries"] == []
