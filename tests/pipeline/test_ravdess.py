from pathlib import Path

import pytest

from avemo.pipeline.discover import discover
from avemo.pipeline.ravdess import InvalidName, parse_name


def test_parse_name_reads_every_field():
    name = parse_name("01-01-06-01-02-01-12")
    assert (name.modality, name.vocal_channel, name.emotion, name.intensity) == (1, 1, 6, 1)
    assert (name.statement, name.repetition, name.actor) == (2, 1, 12)
    assert name.gender == "female"
    assert parse_name("01-02-05-02-01-02-07").gender == "male"
    assert name.stem() == "01-01-06-01-02-01-12"


@pytest.mark.parametrize("stem, fragment", [
    ("01-01-01-02-01-01-01", "neutral"),
    ("01-01-09-01-01-01-01", "emotion 09"),
    ("01-01-03-01-01-01-25", "actor 25"),
    ("04-01-03-01-01-01-01", "modality 04"),
    ("01-03-03-01-01-01-01", "vocal channel 03"),
    ("01-01-03-01-03-01-01", "statement 03"),
    ("01-01-03-01-01-03-01", "repetition 03"),
    ("01-01-03-01-01-01", "7 two-digit fields"),
    ("1-01-03-01-01-01-01", "7 two-digit fields"),
])
def test_parse_name_rejects_with_the_faulty_part(stem, fragment):
    with pytest.raises(InvalidName, match=fragment):
        parse_name(stem)


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_discover_accepts_actor_folders_and_flat_layout(tmp_path):
    _touch(tmp_path / "nested", "Actor_01/01-01-03-01-01-01-01.mp4", "Actor_02/01-02-04-02-02-02-02.mp4")
    _touch(tmp_path / "flat", "01-01-03-01-01-01-01.mp4", "01-02-04-02-02-02-02.mp4")
    for layout in ("nested", "flat"):
        found = discover(tmp_path / layout)
        assert [c.clip_id for c in found.clips] == ["01-01-03-01-01-01-01", "01-02-04-02-02-02-02"]
        first, second = found.clips
        assert (first.actor, first.gender, first.emotion, first.vocal_channel) == (1, "male", "happy", "speech")
        assert (second.emotion, second.intensity, second.vocal_channel, second.repetition) == ("sad", "strong", "song", 2)


def test_discover_skips_other_modalities_bad_names_and_duplicates_with_reasons(tmp_path):
    _touch(tmp_path, "Actor_01/01-01-03-01-01-01-01.mp4", "Actor_01/02-01-03-01-01-01-01.mp4",
           "Actor_01/03-01-03-01-01-01-01.wav", "Actor_01/holiday.mp4", "Actor_01/01-01-01-02-01-01-01.mp4",
           "flat/01-01-03-01-01-01-01.mp4", "Actor_01/notes.txt")
    found = discover(tmp_path)
    assert [c.clip_id for c in found.clips] == ["01-01-03-01-01-01-01"]
    assert found.skipped_by_reason() == {
        "video-only (modality 02)": 1, "audio-only (modality 03)": 1, "unparseable name": 2, "duplicate clip": 1,
    }


def test_discover_selects_vocal_channels(tmp_path):
    _touch(tmp_path, "01-01-03-01-01-01-01.mp4", "01-02-03-01-01-01-01.mp4")
    assert [c.vocal_channel for c in discover(tmp_path, vocal_channels=("song",)).clips] == ["song"]
    found = discover(tmp_path, vocal_channels=("speech",))
    assert [c.vocal_channel for c in found.clips] == ["speech"]
    assert found.skipped_by_reason() == {"vocal channel not selected": 1}


def test_discover_refuses_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        discover(tmp_path / "nope")
