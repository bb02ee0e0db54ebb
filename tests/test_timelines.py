"""``avemo timeline`` over folders: a stopped run resumed to the timeline of one that never stopped, refusals
to resume rows made otherwise, and many videos in one call (models loaded once, bad videos named, the rest
done)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from avemo.cli import app
from avemo.pipeline import stream
from avemo.synth import SynthConfig, synthesize_long
from tests.conftest import solid_clip

runner = CliRunner()
SMALL = SynthConfig(width=96, height=72)
FAST = ["--window", "3", "--hop", "1", "--batch-size", "2"]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    video = tmp_path_factory.mktemp("videos") / "talk.mp4"
    synthesize_long(video, 9, seed=3, config=SMALL)
    return video


def _cuts(monkeypatch) -> list[float]:
    """The start of every window the stream cuts (decodes, crops) from now on."""
    starts: list[float] = []
    whole = stream.WindowStream._cut

    def counted(self, k, *args):
        starts.append(k * self.hop)
        return whole(self, k, *args)

    monkeypatch.setattr(stream.WindowStream, "_cut", counted)
    return starts


def _stop_after(monkeypatch, n: int) -> None:
    """Ctrl-C while window ``n`` + 1 is being decoded."""
    whole = stream.WindowStream.windows

    def stopped(self, on_total=None):
        for k, window in enumerate(whole(self, on_total)):
            if k == n:
                raise KeyboardInterrupt
            yield window

    monkeypatch.setattr(stream.WindowStream, "windows", stopped)


def _windows(folder: Path) -> list[dict]:
    return json.loads((folder / "timeline.json").read_text())["windows"]


def test_a_stopped_timeline_resumes_where_it_stopped_and_ends_as_one_that_never_stopped(quick_run, long_clip,
                                                                                         tmp_path, monkeypatch):
    whole = runner.invoke(app, ["timeline", str(long_clip), "--run", str(quick_run), *FAST, "--out",
                                str(tmp_path / "whole")])
    assert whole.exit_code == 0, whole.output
    expected = _windows(tmp_path / "whole")
    assert [w["start"] for w in expected] == [0, 1, 2, 3, 4, 5, 6]
    with monkeypatch.context() as patch:
        _stop_after(patch, 4)
        stopped = runner.invoke(app, ["timeline", str(long_clip), "--run", str(quick_run), *FAST, "--out",
                                      str(tmp_path / "t")])
    assert stopped.exit_code == 130 and "--resume" in stopped.output
    rows = tmp_path / "t" / "timeline.jsonl"
    assert len(rows.read_text().splitlines()) == 4
    with rows.open("a") as handle:  # the row being written when the process died
        handle.write('{"start": 4.0, "end": 7.0, "top": "ha')
    cuts = _cuts(monkeypatch)
    resumed = runner.invoke(app, ["timeline", str(long_clip), "--run", str(quick_run), *FAST, "--out",
                                  str(tmp_path / "t"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert cuts == [4.0, 5.0, 6.0]  # only the windows the stopped run had not finished
    assert "4 kept from the stopped run" in resumed.output
    got = _windows(tmp_path / "t")
    assert [w["start"] for w in got] == [w["start"] for w in expected]
    for g, e in zip(got, expected):
        assert g["crop"] == e["crop"]
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=2e-3)
    lines = [json.loads(line) for line in rows.read_text().splitlines()]
    assert lines == got  # the JSON Lines hold the windows timeline.json lists
    with (tmp_path / "t" / "timeline.csv").open() as handle:
        assert [float(r["start"]) for r in csv.DictReader(handle)] == [0, 1, 2, 3, 4, 5, 6]
    state = json.loads((tmp_path / "t" / "timeline.json").read_text())
    assert state["status"] == "done" and (tmp_path / "t" / "timeline.png").is_file()
    # Resuming a finished timeline computes nothing and writes its files again (the plot too).
    (tmp_path / "t" / "timeline.png").unlink()
    cuts.clear()
    again = runner.invoke(app, ["timeline", str(long_clip), "--run", str(quick_run), *FAST, "--out",
                                str(tmp_path / "t"), "--resume"])
    assert again.exit_code == 0, again.output
    assert cuts == [] and (tmp_path / "t" / "timeline.png").is_file() and _windows(tmp_path / "t") == got


def test_rows_made_with_other_settings_or_damaged_are_not_resumed(quick_run, long_clip, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _stop_after(patch, 4)
        runner.invoke(app, ["timeline", str(long_clip), "--run", str(quick_run), *FAST, "--out", str(tmp_path / "t")])
    before = (tmp_path / "t" / "timeline.jsonl").read_text()
    assert len(before.splitlines()) == 4

    def resume(*options: str):
        return runner.invoke(app, ["timeline", str(long_clip), "--run", str(quick_run), "--window", "3",
                                   "--batch-size", "2", "--out", str(tmp_path / "t"), "--resume", *options])

    other_hop = resume("--hop", "0.5")
    assert other_hop.exit_code == 2 and "Traceback" not in other_hop.output
    (line,) = [l for l in other_hop.output.splitlines() if l.startswith("error:")]
    assert str(tmp_path / "t") in line and "--hop (1.0 then, 0.5 now)" in line and "drop --resume" in line
    assert (tmp_path / "t" / "timeline.jsonl").read_text() == before  # refused: nothing touched
    lines = before.splitlines()
    (tmp_path / "t" / "timeline.jsonl").write_text("\n".join([lines[0], "{not json", lines[2]]) + "\n")
    damaged = resume("--hop", "1")
    assert damaged.exit_code == 2 and "timeline.jsonl: line 2 is damaged" in " ".join(damaged.output.split())
    (tmp_path / "t" / "timeline.json").write_text("{")
    broken = resume("--hop", "1")
    assert broken.exit_code == 2 and "timeline.json: damaged" in " ".join(broken.output.split())


def test_many_videos_in_one_call_load_the_models_once_and_a_bad_video_stops_only_itself(quick_run, long_clip,
                                                                                         tmp_path, monkeypatch):
    import avemo.recognizer

    built = []
    backbones = avemo.recognizer.backbones_for
    monkeypatch.setattr(avemo.recognizer, "backbones_for", lambda *a, **k: built.append(1) or backbones(*a, **k))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = tmp_path / "a" / "talk.mp4"
    first.write_bytes(long_clip.read_bytes())
    second = tmp_path / "b" / "talk.mp4"  # the same name in another folder
    synthesize_long(second, 6, seed=4, config=SMALL)
    silent = solid_clip(tmp_path / "silent.mp4", (90, 90, 90), seconds=5, size=(96, 72))
    missing = tmp_path / "missing.mp4"
    result = runner.invoke(app, ["timeline", str(first), str(silent), str(second), str(missing), "--run",
                                 str(quick_run), *FAST, "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert built == [1]
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "silent.mp4: has no audio track" in text and "missing.mp4: no such file" in text
    assert "2 of 4 videos read" in text
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == ["a-talk-timeline", "b-talk-timeline"]  # nothing for the videos that could not be read
    one = json.loads((tmp_path / "out" / "a-talk-timeline" / "timeline.json").read_text())
    two = json.loads((tmp_path / "out" / "b-talk-timeline" / "timeline.json").read_text())
    assert one["path"] == str(first) and two["path"] == str(second)
    assert len(one["windows"]) == 7 and len(two["windows"]) == 4
    # each video's timeline is the one it gets alone
    alone = runner.invoke(app, ["timeline", str(second), "--run", str(quick_run), *FAST, "--out",
                                str(tmp_path / "alone")])
    assert alone.exit_code == 0, alone.output
    for g, e in zip(two["windows"], _windows(tmp_path / "alone")):
        assert g["probabilities"] == pytest.approx(e["probabilities"], abs=2e-3)
    # --json: a summary per video, in the order given
    listed = runner.invoke(app, ["timeline", str(first), str(missing), "--run", str(quick_run), *FAST, "--json",
                                 "--out", str(tmp_path / "j")])
    assert listed.exit_code == 3
    data = json.loads(listed.stdout)
    assert [d["video"] for d in data] == [str(first), str(missing)]
    assert data[0]["windows"] == 7 and data[0]["error"] is None and "no such file" in data[1]["error"]
    assert sum(data[0]["shares"].values()) == pytest.approx(1, abs=1e-3)


def test_a_video_refused_leaves_its_folder_as_it_was_and_two_videos_never_share_one(quick_run, long_clip, tmp_path):
    video = tmp_path / "talk.mp4"
    video.write_bytes(long_clip.read_bytes())
    first = runner.invoke(app, ["timeline", str(video), "--run", str(quick_run), *FAST])
    assert first.exit_code == 0, first.output
    folder = tmp_path / "talk-timeline"
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    solid_clip(video, (90, 90, 90), seconds=1, size=(96, 72), audio=np.zeros(48000, np.float32))  # now 1 s long
    again = runner.invoke(app, ["timeline", str(video), "--run", str(quick_run), *FAST])
    assert again.exit_code == 2 and "shorter than one 3.00 s window" in " ".join(again.output.split())
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before  # the earlier timeline is intact
    for out in ([], ["--out", str(tmp_path / "o")]):  # beside the video, or each in its own folder under --out
        twice = runner.invoke(app, ["timeline", str(long_clip), str(long_clip.parent / "." / long_clip.name), "--run",
                                    str(quick_run), *FAST, *out])
        assert twice.exit_code == 2 and "the same video twice" in twice.output
    other = tmp_path / "talk.mov"
    other.write_bytes(long_clip.read_bytes())
    clash = runner.invoke(app, ["timeline", str(video), str(other), "--run",
                                str(quick_run), *FAST])
    assert clash.exit_code == 2 and "--out DIR" in clash.output
