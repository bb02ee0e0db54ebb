"""``avemo fetch cremad`` against a loopback GitHub serving a Git LFS repository, and ``avemo fetch weights``
against a loopback Google Drive (with its virus-scan confirmation step) and a torchvision file host
(tests/fetch/hosts.py)."""

import hashlib
import os

import pytest
from typer.testing import CliRunner

from avemo.cli import app
from avemo.fetch import datasets
from avemo.pipeline.cremad import discover
from tests.fetch.hosts import Faults, Files, GitHubLFS, GoogleDrive

runner = CliRunner()
REPO, REF = "CheyneyComputerScience/CREMA-D", "master"


def _bytes(seed: int, n: int) -> bytes:
    return hashlib.shake_256(str(seed).encode()).digest(n)


@pytest.fixture
def cremad_repo():
    """A repository laid out as CREMA-D's: clips, WAV and MP3 soundtracks in LFS, a plain demographics sheet,
    and files fetch must leave alone."""
    files = {}
    for i, (actor, emotion) in enumerate([(1001, "ANG"), (1001, "SAD"), (1002, "HAP")]):
        stem = f"{actor}_DFA_{emotion}_XX"
        files[f"VideoFlash/{stem}.flv"] = _bytes(i, 30_000 + i)
        files[f"AudioWAV/{stem}.wav"] = _bytes(100 + i, 5_000)
        files[f"AudioMP3/{stem}.mp3"] = _bytes(200 + i, 3_000)
    files["VideoDemographics.csv"] = b"ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n" \
                                     b"1002,21,Female,Caucasian,Not Hispanic\n"
    files["README.md"] = b"# CREMA-D\n"
    files["processedResults/summaryTable.csv"] = _bytes(7, 2_000)
    return files


def _cremad(folder, server, *options):
    return runner.invoke(app, ["fetch", "cremad", str(folder), *options], env={"AVEMO_GITHUB_URL": server.url})


def test_cremad_lands_in_the_layout_extract_reads_checked_against_lfs_and_once(cremad_repo, tmp_path, monkeypatch):
    monkeypatch.setattr("avemo.fetch.http.time.sleep", lambda s: None)
    flv = "VideoFlash/1001_DFA_SAD_XX.flv"
    with GitHubLFS(REPO, REF, cremad_repo, plain={"VideoDemographics.csv", "README.md"}) as server:
        server.faults[flv] = Faults(drop_after=[10_000])  # the connection drops part-way
        wav = "AudioWAV/1002_DFA_HAP_XX.wav"
        server.faults[wav] = Faults(corrupt=1)
        result = _cremad(tmp_path / "cremad", server)
        assert result.exit_code == 0, result.output
        text = " ".join(result.output.split())
        assert "ODbL" in text and "avemo extract" in text and "--dataset cremad" in text
        for path, data in cremad_repo.items():
            landed = tmp_path / "cremad" / path
            assert landed.is_file() == (path.split("/")[0] in ("VideoFlash", "AudioWAV", "VideoDemographics.csv")), path
            if landed.is_file():
                assert landed.read_bytes() == data
        assert server.requests.count(f"/media/{REPO}/{REF}/{flv}") == 2
        assert server.served[flv] == len(cremad_repo[flv])  # resumed after the drop: no byte twice
        assert server.served[wav] == 2 * len(cremad_repo[wav])  # corrupted once: fetched again whole
        found = discover(tmp_path / "cremad")
        assert sorted(c.clip_id for c in found.clips) == ["1001_DFA_ANG_XX", "1001_DFA_SAD_XX", "1002_DFA_HAP_XX"]
        assert {c.actor: c.gender for c in found.clips} == {1001: "male", 1002: "female"}
        assert all(c.audio_path is not None for c in found.clips)
        seen = len(server.requests)
        again = _cremad(tmp_path / "cremad", server)
        assert again.exit_code == 0 and "nothing to do" in again.output
        assert server.requests[seen:] == [f"/api/repos/{REPO}/git/trees/{REF}"]  # pointers kept: only the tree
        mp3 = _cremad(tmp_path / "cremad", server, "--mp3")
        assert mp3.exit_code == 0, mp3.output
        assert (tmp_path / "cremad" / "AudioMP3" / "1001_DFA_ANG_XX.mp3").read_bytes() == \
            cremad_repo["AudioMP3/1001_DFA_ANG_XX.mp3"]


def test_a_pointer_that_is_not_the_committed_one_is_refused_and_a_dry_run_downloads_nothing(cremad_repo, tmp_path):
    with GitHubLFS(REPO, REF, cremad_repo, plain={"VideoDemographics.csv"}) as server:
        dry = _cremad(tmp_path / "a", server, "--dry-run")
        assert dry.exit_code == 0, dry.output
        listed = dict(line.split("\t")[:2] for line in dry.stdout.splitlines())
        assert sorted(listed) == sorted(p for p in cremad_repo if p.startswith(("VideoFlash/", "AudioWAV/",
                                                                               "VideoDemographics")))
        assert not any(p.startswith("/media/") for p in server.requests)
        assert not (tmp_path / "a" / "VideoFlash").exists()
        server.swapped.add("VideoFlash/1001_DFA_ANG_XX.flv")
        bad = _cremad(tmp_path / "b", server)
    assert bad.exit_code == 2
    text = " ".join(bad.output.split())
    assert "VideoFlash/1001_DFA_ANG_XX.flv: not the file the repository lists" in text and "Traceback" not in text


@pytest.fixture
def weights_hosts(monkeypatch):
    """Hara's two Drive folders (the 101-layer files large enough for the confirmation step) and a torchvision
    host. The real ResNet-18 name carries a hash prefix no test bytes have, so the name is made for the bytes."""
    files_2017 = {"resnet-101-kinetics.pth": b"PK\x03\x04" + _bytes(1, 20_000), "resnet-18-kinetics.pth": _bytes(2, 500)}
    files_2020 = {"r3d101_K_200ep.pth": b"PK\x03\x04" + _bytes(3, 20_000),
                  "r3d101_KM_200ep.pth": b"PK\x03\x04" + _bytes(4, 20_000)}
    audio = _bytes(5, 4_000)
    name = f"resnet18-{hashlib.sha256(audio).hexdigest()[:8]}.pth"
    monkeypatch.setattr(datasets, "RESNET18", name)
    drive = GoogleDrive({datasets.HARA_FOLDERS["hara2017"]: files_2017, datasets.HARA_FOLDERS["hara2020"]: files_2020})
    return drive, Files({name: audio, "resnet18-f37072fd.pth": audio}), files_2017, files_2020, (name, audio)


def _weights(folder, drive, torchvision, *options):
    return runner.invoke(app, ["fetch", "weights", str(folder), *options],
                         env={"AVEMO_GDRIVE_URL": drive.url, "AVEMO_TORCHVISION_URL": torchvision.url})


def test_weights_come_past_drives_confirmation_step_with_their_sha256_printed_and_once(weights_hosts, tmp_path):
    drive, torchvision, files_2017, files_2020, (audio_name, audio) = weights_hosts
    with drive, torchvision:
        result = _weights(tmp_path / "w", drive, torchvision)
        assert result.exit_code == 0, result.output
        assert (tmp_path / "w" / "resnet-101-kinetics.pth").read_bytes() == files_2017["resnet-101-kinetics.pth"]
        assert (tmp_path / "w" / audio_name).read_bytes() == audio
        assert "/download" in drive.requests  # through the virus-scan form
        assert not (tmp_path / "w" / "resnet-18-kinetics.pth").exists()
        printed = dict(reversed(line.split("  ")) for line in result.stdout.splitlines())
        assert printed == {str(tmp_path / "w" / "resnet-101-kinetics.pth"):
                           hashlib.sha256(files_2017["resnet-101-kinetics.pth"]).hexdigest(),
                           str(tmp_path / "w" / audio_name): hashlib.sha256(audio).hexdigest()}
        assert "MIT" in " ".join(result.output.split())
        seen = len(drive.requests), len(torchvision.requests)
        again = _weights(tmp_path / "w", drive, torchvision)
        assert again.exit_code == 0 and "nothing to do" in again.output
        assert (len(drive.requests), len(torchvision.requests)) == seen  # nothing asked of either host
        km = _weights(tmp_path / "w", drive, torchvision, "--video", "hara2020-km", "--audio", "none")
        assert km.exit_code == 0, km.output
        assert (tmp_path / "w" / "r3d101_KM_200ep.pth").read_bytes() == files_2020["r3d101_KM_200ep.pth"]
        assert not (tmp_path / "w" / "r3d101_K_200ep.pth").exists()


def test_a_used_up_quota_a_web_page_and_a_wrong_hash_are_each_named_in_one_line(weights_hosts, tmp_path, monkeypatch):
    drive, torchvision, _, _, _ = weights_hosts
    drive.quota_exceeded = True
    with drive, torchvision:
        quota = _weights(tmp_path / "a", drive, torchvision, "--audio", "none")
        assert quota.exit_code == 2
        assert "Too many users have viewed or downloaded this file recently" in " ".join(quota.output.split())
        monkeypatch.setattr(datasets, "RESNET18", "resnet18-f37072fd.pth")  # the real name: these bytes fail it
        wrong = _weights(tmp_path / "b", drive, torchvision, "--video", "none")
    assert wrong.exit_code == 1
    text = " ".join(wrong.output.split())
    assert "resnet18-f37072fd.pth: sha256" in text and "not the f37072fd" in text and "Traceback" not in text
    assert not list((tmp_path / "b").glob("*.pth"))
    page = tmp_path / "c"  # Drive's files have no published checksum: a sign-in page must not pass for one
    signin = GoogleDrive({datasets.HARA_FOLDERS["hara2017"]: {"resnet-101-kinetics.pth": b"<!DOCTYPE html><html>"}})
    with signin:
        html = runner.invoke(app, ["fetch", "weights", str(page), "--audio", "none", "--gdrive-url", signin.url])
    assert html.exit_code == 1 and "sent a web page, not the file" in " ".join(html.output.split())
    assert not (page / "resnet-101-kinetics.pth").exists() and os.path.isdir(page)


def test_a_server_that_goes_quiet_is_given_up_on_and_asked_again_from_where_it_stopped(tmp_path):
    from avemo.fetch.http import FetchError, Remote, Retry, download

    data = _bytes(9, 200_000)
    with Files({"big.bin": data}) as host:
        host.faults["big.bin"] = Faults(stall=[(1000, 1.5)])
        remote = Remote("big.bin", f"{host.url}/big.bin", len(data), sha256=hashlib.sha256(data).hexdigest())
        download(remote, tmp_path / "big.bin", retry=Retry(attempts=3, pause=0.0, timeout=0.3))
        assert (tmp_path / "big.bin").read_bytes() == data
        assert host.ranges == [("big.bin", ""), ("big.bin", "bytes=1000-")]  # the second asks for the rest only
        host.faults["big.bin"] = Faults(stall=[(1000, 1.5)] + [(0, 1.5)] * 3)  # bytes reset the count of tries
        with pytest.raises(FetchError, match=r"big.bin: stopped after 3 tries \(timed out\); what arrived is kept"):
            download(remote, tmp_path / "again.bin", retry=Retry(attempts=3, pause=0.0, timeout=0.3))
    assert (tmp_path / "again.bin.part").read_bytes() == data[:1000]


def test_a_full_disk_stops_with_one_line_keeps_what_arrived_and_the_same_command_finishes(tmp_path, monkeypatch):
    import errno
    import pathlib

    audio = _bytes(8, 300_000)
    name = f"resnet18-{hashlib.sha256(audio).hexdigest()[:8]}.pth"
    monkeypatch.setattr(datasets, "RESNET18", name)
    real_open = pathlib.Path.open

    class Full:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def __getattr__(self, attr):
            return getattr(self.handle, attr)

        def write(self, block):  # what fits in 100 kB is written, then the disk is full
            room = 100_000 - self.written
            self.written += self.handle.write(block[:room])
            if len(block) > room:
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(block)

    def full_open(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        return Full(handle) if self.name.endswith(".part") and "b" in mode and "r" not in mode.replace("r+", "") \
            else handle

    with Files({name: audio}) as host:
        folder = tmp_path / "w"
        monkeypatch.setattr(pathlib.Path, "open", full_open)
        full = runner.invoke(app, ["fetch", "weights", str(folder), "--video", "none", "--torchvision-url", host.url])
        monkeypatch.setattr(pathlib.Path, "open", real_open)
        assert full.exit_code == 2, full.output
        text = " ".join(full.output.split())
        assert "disk is full" in text.lower() or "no space" in text.lower()
        assert "run the same command again" in text and "Traceback" not in text
        assert (folder / f"{name}.part").stat().st_size == 100_000  # kept
        again = runner.invoke(app, ["fetch", "weights", str(folder), "--video", "none", "--torchvision-url", host.url])
        assert again.exit_code == 0, again.output
        assert (folder / name).read_bytes() == audio and host.ranges[-1] == (name, "bytes=100000-")


def test_a_file_of_unpublished_size_cut_short_is_asked_for_again_from_where_it_stopped(tmp_path, monkeypatch):
    from avemo.fetch.http import Remote, download

    monkeypatch.setattr("avemo.fetch.http.time.sleep", lambda s: None)
    data = _bytes(11, 256_000)
    with Files({"w.pth": data}) as host:
        host.faults["w.pth"] = Faults(drop_after=[10_000])  # Drive's files: no size, no checksum published
        download(Remote("w.pth", f"{host.url}/w.pth"), tmp_path / "w.pth")
    assert (tmp_path / "w.pth").read_bytes() == data  # not a 10 kB file taken for the whole
    assert host.ranges == [("w.pth", ""), ("w.pth", "bytes=10000-")]


def test_redirects_never_go_from_https_to_http_and_a_token_stays_with_its_host():
    import urllib.request

    from avemo.fetch.http import FetchError, _Redirects

    handler = _Redirects()
    request = urllib.request.Request("https://api.github.com/x", headers={"Authorization": "Bearer t"})
    with pytest.raises(FetchError, match="plain http"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://evil.example/x")
    moved = handler.redirect_request(request, None, 302, "Found", {}, "https://objects.example/x")
    assert moved.full_url == "https://objects.example/x" and not moved.has_header("Authorization")
    same = handler.redirect_request(request, None, 302, "Found", {}, "https://api.github.com/y")
    assert same.has_header("Authorization")
