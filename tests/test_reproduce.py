"""``avemo reproduce`` from nothing against loopback hosts: Zenodo serving RAVDESS-format zips of ``avemo synth``
clips (photographed faces, so the paper's face crop runs), Google Drive serving a checkpoint in Hara's 2017
format (a small depth, so that it runs in seconds) and torchvision's host serving a ResNet-18 state dict."""

import hashlib
import io
import json

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from avemo.cli import app
from avemo.fetch import datasets
from avemo.synth import SynthConfig, synthesize
from tests.engines.test_weights import save_hara
from tests.fetch.hosts import Files, GoogleDrive, zip_of
from tests.fetch.zenodo import Zenodo

runner = CliRunner()
SMALL = ["--video-arch", "r3d10", "--size", "32", "--train-json",
         json.dumps({"epochs": 2, "batch_size": 8, "model": {"dim": 32}})]


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce-src")
    clips = synthesize(root / "clips", actors=6, clips_per_actor=8, seed=2,
                       config=SynthConfig(faces="real", min_seconds=1.2, max_seconds=1.6))
    record = {f"Video_Speech_Actor_{a:02d}.zip": zip_of({f"Actor_{a:02d}/{p.name}": p.read_bytes() for p in clips
                                                       if p.parent.name == f"Actor_{a:02d}"}) for a in range(1, 7)}
    record["Video_Song_Actor_01.zip"] = zip_of({"Actor_01/01-02-01-01-01-01-01.mp4": b"not asked for"})
    save_hara(root / "hara.pth", "r3d10", classes=400, release=2017)
    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), buffer)
    audio = buffer.getvalue()
    return record, (root / "hara.pth").read_bytes(), audio


def test_reproduce_goes_from_nothing_to_the_table_and_a_second_run_does_no_work_again(hosts, tmp_path, monkeypatch):
    record, video, audio = hosts
    monkeypatch.setattr(datasets, "RESNET18", f"resnet18-{hashlib.sha256(audio).hexdigest()[:8]}.pth")
    drive = GoogleDrive({datasets.HARA_FOLDERS["hara2017"]: {"resnet-101-kinetics.pth": video}})
    with Zenodo(datasets.RAVDESS_RECORD, record) as zenodo, drive, Files({datasets.RESNET18: audio}) as tv:
        env = {"AVEMO_ZENODO_URL": zenodo.url, "AVEMO_GDRIVE_URL": drive.url, "AVEMO_TORCHVISION_URL": tv.url}
        work = tmp_path / "work"
        dry = runner.invoke(app, ["reproduce", "ravdess", "--workdir", str(work), "--dry-run", *SMALL], env=env)
        assert dry.exit_code == 0, dry.output
        # nothing downloaded: Drive's address is resolved with a one-byte range, no more
        assert sum(zenodo.served.values()) == 0 and sum(drive.served.values()) <= 1 and not tv.served
        assert "Video_Speech_Actor_06.zip" in dry.stdout and "resnet-101-kinetics.pth" in dry.stdout

        zenodo.faults["Video_Speech_Actor_03.zip"].corrupt = 2  # fails its MD5 twice: named, and nothing goes on
        partial = runner.invoke(app, ["reproduce", "ravdess", "--workdir", str(work), *SMALL], env=env)
        assert partial.exit_code == 2
        assert "1 file(s) could not be fetched (Video_Speech_Actor_03.zip" in " ".join(partial.output.split())
        assert not (work / "cache").exists() and not (work / "weights").exists()

        result = runner.invoke(app, ["reproduce", "ravdess", "--workdir", str(work), *SMALL], env=env)
        assert result.exit_code == 0, result.output
        assert zenodo.served["Video_Song_Actor_01.zip"] == 0  # the paper's clips are the speech ones
        text = " ".join(result.stdout.replace("│", " ").split())
        for fold in range(1, 7):  # six folds of consecutive actors (one each here: six actors)
            assert f"fold_{fold} {fold} " in text
        assert "87.89 %" in text and "HiCMAE" in text
        for step in ("fetch data", "fetch weights", "extract", "train", "evaluate"):
            assert step in text
        # the fetched weights are the ones used: their hashes are in the cache's feature spec
        spec = (work / "cache" / "manifest.json").read_text()
        assert hashlib.sha256(video).hexdigest() in spec and hashlib.sha256(audio).hexdigest() in spec
        assert "face" in json.loads((work / "reproduce.json").read_text())["settings"]["crop"]
        served = dict(zenodo.served), dict(drive.served), dict(tv.served)
        last = {p: p.stat().st_mtime_ns for p in (work / "run").rglob("last.pt")}
        best = {p: p.read_bytes() for p in (work / "run").rglob("best.pt")}
        assert len(last) == len(best) == 6  # a fold each

        again = runner.invoke(app, ["reproduce", "ravdess", "--workdir", str(work), *SMALL], env=env)
        assert again.exit_code == 0, again.output
        assert (dict(zenodo.served), dict(drive.served), dict(tv.served)) == served  # nothing fetched twice
        assert "0 to extract" in " ".join(again.output.split())
        # no epoch trained again (last.pt untouched); a finished fold writes its best.pt again, the same bytes
        assert {p: p.stat().st_mtime_ns for p in (work / "run").rglob("last.pt")} == last
        assert {p: p.read_bytes() for p in (work / "run").rglob("best.pt")} == best

        other = runner.invoke(app, ["reproduce", "ravdess", "--workdir", str(work), "--crop", "center", *SMALL], env=env)
    assert other.exit_code == 2 and "made with other settings (crop)" in " ".join(other.output.split())


def test_a_cremad_dry_run_lists_the_clips_and_weights_and_the_disk_it_needs(tmp_path, monkeypatch):
    from tests.fetch.hosts import GitHubLFS

    files = {"VideoFlash/1001_DFA_ANG_XX.flv": b"v" * 5000, "AudioWAV/1001_DFA_ANG_XX.wav": b"a" * 800,
             "AudioMP3/1001_DFA_ANG_XX.mp3": b"m" * 300, "VideoDemographics.csv": b"ActorID,Sex\n1001,Male\n"}
    drive = GoogleDrive({datasets.HARA_FOLDERS["hara2017"]: {"resnet-101-kinetics.pth": b"PK" + b"w" * 3000}})
    with GitHubLFS("CheyneyComputerScience/CREMA-D", "master", files, plain={"VideoDemographics.csv"}) as hub, drive, \
            Files({}) as tv:
        env = {"AVEMO_GITHUB_URL": hub.url, "AVEMO_GDRIVE_URL": drive.url, "AVEMO_TORCHVISION_URL": tv.url}
        dry = runner.invoke(app, ["reproduce", "cremad", "--workdir", str(tmp_path / "w"), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    listed = [line.split("\t")[0] for line in dry.stdout.splitlines()]
    assert listed == ["AudioWAV/1001_DFA_ANG_XX.wav", "VideoDemographics.csv", "VideoFlash/1001_DFA_ANG_XX.flv",
                      "resnet-101-kinetics.pth", "resnet18-f37072fd.pth"]
    text = " ".join(dry.output.split())
    assert "r3d101, 112 px, crop face" in text and "7442 clips" in text and "ODbL" not in text  # nothing fetched
    assert not any(p.startswith("/media/") for p in hub.requests) and not tv.requests
