"""The command line: choices and defaults in --help, early validation that leaves nothing behind, stdout for
results and stderr for the rest, plain progress lines in logs, --quiet, and no traceback ever."""

import shutil

import pytest
from typer.testing import CliRunner

from avemo.cli import app
from tests.conftest import FAST_EXTRACT

runner = CliRunner()


@pytest.mark.parametrize("command, shown", [
    ("extract", ["<face|landmarks|center|none>", "<auto|torch|onnxruntime|tensorrt>", "<auto|pyav|dali>",
                 "<fp32|bf16|fp16>", "<float16|float32>", "[default: face]"]),
    ("train", ["<emotion-metric|triplet>", "<actors|random-clips>", "<both|video|audio>", "[default: (40)",
               "[default: (64)", "[default: (0.00042)]", "[default: (8)", "[default: (0)]"]),
    ("synth", ["<h264|vp9>", "<drawn|real>", "--long"]),
    ("timeline", ["the mean duration of its cache's clips, or 3.0", "[default: 1.0", "<auto|cpu|cuda>"]),
    ("export", ["<fp32|fp16>"]),
])
def test_help_lists_choices_and_real_defaults(command, shown):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for text in shown:
        assert text in result.output, (text, result.output)
    assert "<bool>" not in result.output and "list[" not in result.output


def test_an_unknown_choice_is_refused_before_anything_is_made(synth_root, tmp_path):
    result = runner.invoke(app, ["extract", str(synth_root), "--cache", str(tmp_path / "c"), "--backend", "tf"])
    assert result.exit_code == 2 and "'tf' is not one of" in result.output and not (tmp_path / "c").exists()


@pytest.mark.parametrize("options, message", [
    (["--precision", "fp16"], "fp16 with the torch backend needs CUDA"),
    (["--backend", "onnxruntime"], "needs --engines DIR"),
    (["--cuda-graphs"], "--cuda-graphs needs a CUDA device"),
])
def test_impossible_runtimes_fail_in_one_line_and_leave_no_cache(synth_root, tmp_path, options, message):
    result = runner.invoke(app, ["extract", str(synth_root), "--cache", str(tmp_path / "c"), "--device", "cpu",
                                 *FAST_EXTRACT, *options])
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert message in line and not (tmp_path / "c").exists()


def test_a_folder_without_clips_fails_fast_and_leaves_no_cache(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no clips here")
    result = runner.invoke(app, ["extract", str(empty), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1 and "no usable clip" in result.output and not (tmp_path / "c").exists()
    result = runner.invoke(app, ["extract", str(tmp_path / "missing"), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 2 and "not a folder" in result.output and not (tmp_path / "c").exists()


def test_too_few_actors_for_the_folds_says_how_many_and_leaves_no_run(fusion_cache, tmp_path):
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(tmp_path / "run"), "--n-folds", "12"])
    assert result.exit_code == 2
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "the cache has 8 actors" in line and "use --n-folds 8" in line
    assert not (tmp_path / "run").exists()


def test_results_go_to_stdout_progress_to_stderr_as_plain_lines(synth_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synth_root / "Actor_01", data / "Actor_01")
    result = runner.invoke(app, ["extract", str(data), "--cache", str(tmp_path / "c"), *FAST_EXTRACT])
    assert result.exit_code == 0, result.output
    assert "entries in cache" in result.stdout and "extracting:" not in result.stdout  # the summary table
    # stderr is not a terminal here: a plain line every ~10 % instead of a bar
    progress = [l for l in result.stderr.splitlines() if l.startswith("extracting: ")]
    assert progress[-1].startswith("extracting: 8/8 clips (100%)") and 2 <= len(progress) <= 10
    shown = runner.invoke(app, ["inspect", str(tmp_path / "c")])
    assert "fingerprint" in shown.stdout and shown.stderr == ""  # `avemo inspect C > info.txt` keeps the table
    quiet = runner.invoke(app, ["--quiet", "extract", str(data), "--cache", str(tmp_path / "c"), *FAST_EXTRACT])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "entries in cache" in quiet.stdout


def test_training_prints_a_line_per_fold_and_progress_in_logs(fusion_cache, tmp_path):
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(tmp_path / "run"), "--n-folds", "4",
                                 "--folds", "1,2", "--epochs", "10", "--dim", "32"])
    assert result.exit_code == 0, result.output
    assert "M parameters" in result.stderr and "fold_1: test actors [1, 2], validation [3, 4]" in result.stderr
    assert "fold_2: 10/10 epochs (100%)" in result.stderr and "val UAR" in result.stderr
    assert "validation UAR" in result.stdout  # the table of folds


def test_an_unexpected_error_is_one_line_with_the_debug_hint(fusion_cache, tmp_path, monkeypatch):
    from avemo.fusion import runs

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(runs, "train_run", broken)
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert "ZeroDivisionError: division by zero" in line and "AVEMO_DEBUG=1" in line
    monkeypatch.setenv("AVEMO_DEBUG", "1")
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(tmp_path / "run")])
    assert isinstance(result.exception, ZeroDivisionError)  # the traceback, for whoever asked for it
