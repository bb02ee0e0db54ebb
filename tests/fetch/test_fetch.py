"""``avemo fetch ravdess`` against a loopback server that answers as Zenodo does (tests/fetch/zenodo.py), with
archives made of ``avemo synth`` clips in the official names and layout: the whole fetch, resuming after a
dropped connection and a killed process, a corrupted download, server errors, hostile archives, the disk
space check, ``--dry-run``, and https by default."""

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avemo.cli import app
from avemo.fetch.datasets import RAVDESS_RECORD, zenodo_base
from avemo.fetch.http import FetchError, check_scheme
from avemo.fetch.unpack import safe_unzip
from avemo.pipeline.discover import discover
from avemo.synth import SynthConfig, synthesize
from tests.fetch.hosts import zip_of
from tests.fetch.zenodo import Zenodo

runner = CliRunner()


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    """The record's files: a speech zip per actor (Actor_XX/ inside, as the official ones), a song zip, the
    landmarks zip and an audio-only zip that fetch must leave alone."""
    root = tmp_path_factory.mktemp("ravdess-src")
    clips = synthesize(root, actors=2, clips_per_actor=2, seed=0, config=SynthConfig(width=48, height=32))
    speech = {}
    for actor in (1, 2):
        speech[f"Video_Speech_Actor_{actor:02d}.zip"] = zip_of(
            {f"Actor_{actor:02d}/{p.name}": p.read_bytes() for p in clips if p.parent.name == f"Actor_{actor:02d}"})
    song_clip = clips[0]
    song_name = song_clip.name[:3] + "02" + song_clip.name[5:]  # vocal channel 02: song
    files = {**speech, "Video_Song_Actor_01.zip": zip_of({f"Actor_01/{song_name}": song_clip.read_bytes()}),
             "FacialTracking_Actors_01-24.zip": zip_of({"Actor_01/01-01-01-01-01-01-01.csv": b"frame, timestamp\n"}),
             "Audio_Speech_Actors_01-24.zip": zip_of({"Actor_01/03-01-01-01-01-01-01.wav": b"RIFF"})}
    return files, {p.name: p.read_bytes() for p in clips}, song_name


def _fetch(folder, *options, env=None):
    return runner.invoke(app, ["fetch", "ravdess", str(folder), *options], env=env)


def test_fetch_unpacks_the_layout_extract_reads_and_a_second_fetch_does_nothing(record, tmp_path):
    files, clips, song = record
    with Zenodo(RAVDESS_RECORD, files) as server:
        result = _fetch(tmp_path / "ravdess", env={"AVEMO_ZENODO_URL": server.url})
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert "CC BY-NC-SA 4.0" in text and "avemo extract" in text
        for name, data in clips.items():
            assert (tmp_path / "ravdess" / f"Actor_{name[-6:-4]}" / name).read_bytes() == data
        assert (tmp_path / "ravdess" / "Actor_01" / song).is_file()
        assert server.served["Audio_Speech_Actors_01-24.zip"] == 0  # audio-only: not asked for
        assert server.served["FacialTracking_Actors_01-24.zip"] == 0  # landmarks: only with --landmarks
        assert not list((tmp_path / "ravdess" / ".avemo-fetch").glob("*.zip"))  # archives gone once unpacked
        found = discover(tmp_path / "ravdess")
        assert len(found.clips) == len(clips) + 1 and not found.skipped
        served = dict(server.served)
        again = _fetch(tmp_path / "ravdess", env={"AVEMO_ZENODO_URL": server.url})
        assert again.exit_code == 0 and "nothing to do" in again.output
        assert server.served == served
        marks = _fetch(tmp_path / "ravdess", "--landmarks", env={"AVEMO_ZENODO_URL": server.url})
        assert marks.exit_code == 0, marks.output
        assert (tmp_path / "ravdess" / "FacialTracking" / "Actor_01" / "01-01-01-01-01-01-01.csv").is_file()
        assert server.served["Video_Speech_Actor_01.zip"] == served["Video_Speech_Actor_01.zip"]


def test_a_dropped_connection_and_a_killed_fetch_go_on_where_they_stopped(record, tmp_path, monkeypatch):
    files, clips, _ = record
    monkeypatch.setattr("avemo.fetch.http.time.sleep", lambda s: None)
    one, two = "Video_Speech_Actor_01.zip", "Video_Speech_Actor_02.zip"
    # a process killed part-way through the second archive left this behind
    (tmp_path / "d" / ".avemo-fetch").mkdir(parents=True)
    half = len(files[two]) // 2
    (tmp_path / "d" / ".avemo-fetch" / f"{two}.part").write_bytes(files[two][:half])
    with Zenodo(RAVDESS_RECORD, files) as server:
        server.faults[one].drop_after = [1000]  # the connection drops after 1000 bytes
        result = _fetch(tmp_path / "d", "--no-song", env={"AVEMO_ZENODO_URL": server.url})
        assert result.exit_code == 0, result.output
        assert server.ranges[:2] == [(one, ""), (one, "bytes=1000-")]
        assert server.served[one] == len(files[one])  # no byte twice
        assert (two, f"bytes={half}-") in server.ranges and server.served[two] == len(files[two]) - half
    for name, data in clips.items():
        assert (tmp_path / "d" / f"Actor_{name[-6:-4]}" / name).read_bytes() == data


def test_a_corrupted_download_is_fetched_once_more_then_named_and_the_rest_goes_on(record, tmp_path):
    files, _, _ = record
    one = "Video_Speech_Actor_01.zip"
    with Zenodo(RAVDESS_RECORD, files) as server:
        server.faults[one].corrupt = 1
        result = _fetch(tmp_path / "a", "--no-song", env={"AVEMO_ZENODO_URL": server.url})
        assert result.exit_code == 0, result.output
        assert server.served[one] == 2 * len(files[one])
        server.faults[one].corrupt = 2
        broken = _fetch(tmp_path / "b", "--no-song", env={"AVEMO_ZENODO_URL": server.url})
    assert broken.exit_code == 3
    text = " ".join(broken.output.split())
    assert f"{one}: md5" in text and "twice" in text and "Traceback" not in text
    assert (tmp_path / "b" / "Actor_02").is_dir() and not (tmp_path / "b" / "Actor_01").exists()
    assert not list((tmp_path / "b" / ".avemo-fetch").glob("*.part"))


def test_a_listing_cut_short_is_asked_for_again(record, tmp_path, monkeypatch):
    files, _, _ = record
    monkeypatch.setattr("avemo.fetch.http.time.sleep", lambda s: None)
    with Zenodo(RAVDESS_RECORD, files) as server:
        server.api_drops = 2
        result = _fetch(tmp_path / "a", "--dry-run", env={"AVEMO_ZENODO_URL": server.url})
        assert result.exit_code == 0, result.output
        assert server.api_calls == 3 and len(result.stdout.splitlines()) == 3


def test_server_errors_are_retried_with_back_off_then_named(record, tmp_path, monkeypatch):
    files, _, _ = record
    pauses = []
    monkeypatch.setattr("avemo.fetch.http.time.sleep", pauses.append)
    one = "Video_Speech_Actor_01.zip"
    with Zenodo(RAVDESS_RECORD, files) as server:
        server.faults[one].errors = 2
        result = _fetch(tmp_path / "a", "--no-song", env={"AVEMO_ZENODO_URL": server.url})
        assert result.exit_code == 0, result.output
        assert pauses == [2.0, 4.0]  # doubling
        server.faults[one].errors = 100
        failed = _fetch(tmp_path / "b", "--no-song", env={"AVEMO_ZENODO_URL": server.url})
    assert failed.exit_code == 3
    assert f"{one}: stopped after 5 tries (503" in " ".join(failed.output.split())


def test_hostile_archives_are_refused_and_nothing_lands_outside(tmp_path):
    target = tmp_path / "data"
    cases = {"dots": zip_of({"Actor_01/ok.mp4": b"x", "../evil.txt": b"x"}),
             "absolute": zip_of({"/tmp/evil-absolute.txt": b"x"})}
    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("Actor_01/link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../outside")
    cases["link"] = link.getvalue()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Actor_01/big.bin", b"\0" * 5_000_000)
    cases["bomb"] = bomb.getvalue()
    for name, data in cases.items():
        archive = tmp_path / f"{name}.zip"
        archive.write_bytes(data)
        with pytest.raises(FetchError, match="refused") as error:
            safe_unzip(archive, target, limit=1_000_000)
        assert str(archive) in str(error.value)
    clash = tmp_path / "clash.zip"  # a file, then a folder of the same name
    clash.write_bytes(zip_of({"Actor_09": b"x", "Actor_09/a.mp4": b"y"}))
    with pytest.raises(FetchError, match="clash.zip: cannot"):
        safe_unzip(clash, tmp_path / "other", limit=1_000_000)
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-absolute.txt").exists()
    assert not list(target.rglob("*")) or all(p.is_dir() for p in target.rglob("*"))
    # a bomb whose sizes lie is stopped while it is written
    lying = bytearray(cases["bomb"])
    declared = (5_000_000).to_bytes(4, "little")
    small = (1000).to_bytes(4, "little")
    lying = bytes(lying).replace(declared, small)
    (tmp_path / "lying.zip").write_bytes(lying)
    with pytest.raises(FetchError, match="more than|damaged"):
        safe_unzip(tmp_path / "lying.zip", target, limit=1_000_000)
    assert not list(target.rglob("*.bin"))


def test_dry_run_lists_what_would_come_and_too_little_disk_stops_before_any_download(record, tmp_path, monkeypatch):
    files, _, _ = record
    with Zenodo(RAVDESS_RECORD, files) as server:
        dry = _fetch(tmp_path / "a", "--dry-run", env={"AVEMO_ZENODO_URL": server.url})
        assert dry.exit_code == 0, dry.output
        listed = [line.split("\t")[0] for line in dry.stdout.splitlines()]
        assert listed == ["Video_Song_Actor_01.zip", "Video_Speech_Actor_01.zip", "Video_Speech_Actor_02.zip"]
        assert sum(server.served.values()) == 0 and not (tmp_path / "a" / "Actor_01").exists()
        import shutil

        monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
        full = _fetch(tmp_path / "a", env={"AVEMO_ZENODO_URL": server.url})
        assert full.exit_code == 2 and "needed" in full.output and "free" in full.output
        assert sum(server.served.values()) == 0


def test_https_by_default_and_plain_http_only_for_a_mirror_the_user_names(monkeypatch):
    monkeypatch.delenv("AVEMO_ZENODO_URL", raising=False)
    assert zenodo_base(None) == ("https://zenodo.org", False)
    assert zenodo_base("http://mirror.example/") == ("http://mirror.example", True)
    with pytest.raises(FetchError, match="only https"):
        check_scheme("http://zenodo.org", explicit=False)
    with pytest.raises(FetchError, match="only https"):
        check_scheme("ftp://mirror.example", explicit=True)


def test_older_zenodo_answers_name_files_by_filename_with_a_bare_md5(record, tmp_path):
    files, clips, _ = record
    with Zenodo(RAVDESS_RECORD, files, legacy_names=True) as server:
        result = _fetch(tmp_path / "a", "--no-song", "--zenodo-url", server.url)
    assert result.exit_code == 0, result.output
    name = next(iter(clips))
    assert hashlib.md5((tmp_path / "a" / f"Actor_{name[-6:-4]}" / name).read_bytes()).digest() == \
        hashlib.md5(clips[name]).digest()
