"""A run trained briefly on the session's synthetic cache, and a long synthetic clip to analyse."""

import pytest

from avemo.synth import SynthConfig, synthesize_long


@pytest.fixture(scope="session")
def web_run(quick_run):
    return quick_run


@pytest.fixture(scope="session")
def talk(tmp_path_factory):
    """9 s of a face and a voice whose emotion changes every few seconds."""
    video = tmp_path_factory.mktemp("web-videos") / "talk.mp4"
    synthesize_long(video, 9, seed=3, config=SynthConfig(width=96, height=72))
    return video


@pytest.fixture(scope="session")
def recognizer(web_run):
    from avemo.fusion.run import Run

    return Run(web_run).recognizer(device="cpu")


@pytest.fixture(scope="session")
def cli_csv(web_run, talk, tmp_path_factory):
    """``avemo timeline``'s CSV of the clip, to hold the page's against."""
    from typer.testing import CliRunner

    from avemo.cli import app

    out = tmp_path_factory.mktemp("cli-timeline")
    result = CliRunner().invoke(app, ["timeline", str(talk), "--run", str(web_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return (out / "timeline.csv").read_text()
