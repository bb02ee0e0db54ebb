"""``avemo serve``'s HTTP interface in-process (FastAPI's TestClient): upload, the event stream, results that
match ``avemo timeline``'s, downloads, deletion, the refusals (no video, no soundtrack, too large, names and
ids that try to leave the data folder, a missing token), and analyses that outlive a restart."""

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="avemo serve's tests need the web extra: pip install -e '.[web,test]'")

from fastapi.testclient import TestClient  # noqa: E402

from avemo.cli import app as cli  # noqa: E402
from avemo.web.analyses import Analyses  # noqa: E402
from avemo.web.app import ServeSettings, create_app  # noqa: E402
from tests.conftest import solid_clip  # noqa: E402


def _client(data, recognizer, web_run, token=None, max_upload=2 << 30):
    analyses = Analyses(data, recognizer, max_upload=max_upload)
    return TestClient(create_app(ServeSettings(web_run, data, token=token), analyses), base_url="http://localhost"), \
        analyses


def _events(client, analysis_id):
    """(kind, data) of every event of the stream, to its end."""
    events, kind = [], None
    with client.stream("GET", f"/api/analyses/{analysis_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


def test_an_upload_streams_its_windows_as_they_finish_and_ends_as_avemo_timeline_does(web_run, recognizer, talk,
                                                                                     cli_csv, tmp_path):
    client, analyses = _client(tmp_path / "data", recognizer, web_run)
    with client:
        answer = client.post("/api/analyses", files={"video": ("my talk.mp4", talk.read_bytes(), "video/mp4")})
        assert answer.status_code == 202, answer.text
        record = answer.json()
        assert record["name"] == "my talk.mp4" and record["status"] == "queued" and record["seconds"] > 8
        events = _events(client, record["id"])
        windows = [data for kind, data in events if kind == "window"]
        progress = [data for kind, data in events if kind == "progress"]
        kind, end = events[-1]
        assert kind == "end" and end["status"] == "done" and end["summary"]["shares"]
        done = [p["done_seconds"] for p in progress]
        assert done == sorted(done) and progress[-1]["status"] == "done"
        first_window = next(i for i, (kind, _) in enumerate(events) if kind == "window")
        assert any(kind == "progress" and data["status"] == "running" for kind, data in events[first_window + 1:]), \
            "windows arrive while the analysis runs, not only at its end"
        whole = json.loads(client.get(f"/api/analyses/{record['id']}/timeline.json").content)
        assert windows == whole["windows"]  # every window once, in order, as the file has them
        assert client.get(f"/api/analyses/{record['id']}/timeline.csv").text == cli_csv
        png = client.get(f"/api/analyses/{record['id']}/timeline.png")
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        later = client.get(f"/api/analyses/{record['id']}", params={"since": 3}).json()
        assert later["windows"] == windows[3:] and later["summary"] == whole["summary"]
        assert [a["id"] for a in client.get("/api/analyses").json()] == [record["id"]]
        part = client.get(f"/api/analyses/{record['id']}/video", headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == talk.read_bytes()[:100]
        assert part.headers["content-type"] == "video/mp4"
        run = client.get("/api/run").json()
        assert run["classes"] == recognizer.classes and set(run["colours"]) == set(run["classes"])
        assert client.delete(f"/api/analyses/{record['id']}").status_code == 204
        assert client.get(f"/api/analyses/{record['id']}").status_code == 404
    assert not list((tmp_path / "data" / "analyses").iterdir())  # its files went with it


def test_refusals_say_why_and_keep_nothing(web_run, recognizer, talk, tmp_path):
    data = tmp_path / "data"
    client, analyses = _client(data, recognizer, web_run, max_upload=talk.stat().st_size - 1)
    silent = solid_clip(tmp_path / "silent.mp4", (90, 120, 200), seconds=2.0)  # no soundtrack
    with client:
        cases = {
            "no video": (("notes.mp4", b"\x00\x01 this is not a video" * 100, "video/mp4"), 422, "cannot be read"),
            "no sound": (("silent.mp4", silent.read_bytes(), "video/mp4"), 422, "no soundtrack"),
            "too large": (("talk.mp4", talk.read_bytes(), "video/mp4"), 413, "larger than the server's limit"),
            "empty": (("empty.mp4", b"", "video/mp4"), 422, "no video arrived"),
        }
        for case, (upload, status, words) in cases.items():
            answer = client.post("/api/analyses", files={"video": upload})
            assert answer.status_code == status and words in answer.json()["detail"], (case, answer.text)
            assert str(data) not in answer.json()["detail"]  # the server's folders are its own business
        wrong_field = client.post("/api/analyses", files={"file": ("talk.mp4", b"x", "video/mp4")})
        assert wrong_field.status_code == 422 and "no video arrived" in wrong_field.json()["detail"]
        assert client.post("/api/analyses", content=b"raw").status_code == 415
        assert not list((data / "analyses").iterdir())  # nothing of a refused upload is kept
        analyses.max_upload = 2 << 30
        sneaky = client.post("/api/analyses", files={"video": ("../../../evil.mp4", talk.read_bytes(), "video/mp4")})
        assert sneaky.status_code == 202 and sneaky.json()["name"] == "evil.mp4"
        assert not (tmp_path / "evil.mp4").exists() and not list(tmp_path.rglob("evil.mp4"))
        for path in ("/api/analyses/..%2F..%2Fetc", "/api/analyses/0123", f"/api/analyses/{'f' * 32}",
                     f"/api/analyses/{sneaky.json()['id']}/timeline.exe", "/static/..%2Fanalysis.json",
                     "/static/index.html"):
            assert client.get(path).status_code == 404, path
        _events(client, sneaky.json()["id"])  # let it finish before the folder goes


def test_a_token_is_asked_of_every_request_when_set(web_run, recognizer, tmp_path):
    client, _ = _client(tmp_path / "data", recognizer, web_run, token="s3cret")
    with client:
        for path in ("/", "/static/app.js", "/api/run", "/api/analyses"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, params={"token": "s3cret"}).status_code == 200, path
        assert client.get("/api/run", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/run", params={"token": "wrong"}).status_code == 401
        page = client.get("/", params={"token": "s3cret"}).text
        assert 'src="/static/app.js?token=s3cret"' in page  # the page's own requests carry it


def test_analyses_left_queued_or_running_by_a_stopped_server_go_on_when_it_starts_again(web_run, recognizer, talk,
                                                                                       tmp_path):
    data = tmp_path / "data"
    first = Analyses(data, recognizer)  # its worker never starts: the server stopped before
    with talk.open("rb") as handle:
        queued = first.create(handle, "queued.mp4")
    with talk.open("rb") as handle:
        running = first.create(handle, "running.mp4")
    record = first.get(running.id)
    record.status = "running"  # as a server killed mid-analysis leaves it
    first._save(record)
    client, second = _client(data, recognizer, web_run)
    with client:
        for analysis in (queued, running):
            assert _events(client, analysis.id)[-1][1]["status"] == "done"
    assert {a.status for a in second.list()} == {"done"}


def test_without_a_token_only_this_machines_names_and_its_own_page_are_answered(web_run, recognizer, talk, tmp_path):
    analyses = Analyses(tmp_path / "data", recognizer)
    app = create_app(ServeSettings(web_run, tmp_path / "data"), analyses)
    with TestClient(app, base_url="http://attacker.example") as rebound:  # a web site's name rebound to 127.0.0.1
        assert rebound.get("/api/analyses").status_code == 403
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/api/analyses").status_code == 200
        upload = {"video": ("talk.mp4", talk.read_bytes(), "video/mp4")}
        crossed = local.post("/api/analyses", files=upload, headers={"Origin": "http://attacker.example"})
        assert crossed.status_code == 403 and not list((tmp_path / "data" / "analyses").iterdir())
        own = local.post("/api/analyses", files=upload, headers={"Origin": "http://127.0.0.1:8000"})
        assert own.status_code == 202
        _events(local, own.json()["id"])


def test_a_restarted_server_goes_on_from_the_windows_it_had_finished(web_run, recognizer, talk, tmp_path,
                                                                      monkeypatch):
    from avemo.pipeline import stream
    from avemo.timelines import timeline_into

    data = tmp_path / "data"
    first = Analyses(data, recognizer)
    with talk.open("rb") as handle:
        record = first.create(handle, "talk.mp4")
    whole = stream.WindowStream.windows

    def killed(self, on_total=None):  # the server dies while the fifth window is being cut
        for k, window in enumerate(whole(self, on_total)):
            if k == 4:
                raise KeyboardInterrupt
            yield window

    with monkeypatch.context() as patch:
        patch.setattr(stream.WindowStream, "windows", killed)
        with pytest.raises(KeyboardInterrupt):
            timeline_into(recognizer, first.video(record.id), first.folder(record.id) / "timeline")
    kept = first.windows(record.id)
    assert 0 < len(kept) <= 4
    left = first.get(record.id)
    left.status = "running"
    first._save(left)
    cut = []
    real_cut = stream.WindowStream._cut

    def counted(self, k, *args):
        cut.append(round(k * self.hop, 3))
        return real_cut(self, k, *args)

    monkeypatch.setattr(stream.WindowStream, "_cut", counted)
    client, _ = _client(data, recognizer, web_run)
    with client:
        events = _events(client, record.id)
    windows = [data for kind, data in events if kind == "window"]
    assert events[-1][1]["status"] == "done" and windows[:len(kept)] == kept
    assert cut == [w["start"] for w in windows[len(kept):]]  # only the windows not yet done were computed


def test_serve_refuses_another_host_without_a_token(web_run):
    result = CliRunner().invoke(cli, ["serve", "--run", str(web_run), "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "give --token" in " ".join(result.output.split())
