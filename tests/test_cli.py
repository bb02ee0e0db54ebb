"""The command line: choices and defaults in --help, early validation that leaves nothing behind, stdout for
results and stderr for the rest, plain progress lines in logs, --quiet, and no traceback ever."""

import json
import re
import shutil

import pytest
from typer.testing import CliRunner

from avemo.cli import app
from avemo.fusion.config import ConfigError, TrainConfig
from tests.conftest import FAST_EXTRACT

runner = CliRunner()


@pytest.mark.parametrize("command, shown", [
    ("extract", ["<face|landmarks|center|none>", "<auto|torch|onnxruntime|tensorrt>", "<auto|pyav|dali>",
                 "<fp32|bf16|fp16>", "<float16|float32>", "[default: face]"]),
    ("train", ["<emotion-metric|triplet>", "<actors|random-clips>", "<both|video|audio>", "[default: 40; at least 1]",
               "[default: 64; at least 2]", "[default: 0.00042]", "[default: 8; at least 1]", "[default: 0]"]),
    ("synth", ["<h264|vp9>", "<drawn|real>", "--long"]),
    ("timeline", ["the mean duration of its cache's clips, or 3.0", "[default: one snippet: the window / 6", "<auto|cpu|cuda>"]),
    ("export", ["<fp32|fp16>"]),
    ("fetch", ["WHAT <ravdess|cremad|weights>", "[default: AVEMO_ZENODO_URL, else https://zenodo.org]",
               "<hara2017|hara2020-k700|hara2020-km|none>", "[default: hara2017]"]),
    ("reproduce", ["DATASET <ravdess|cremad>", "[default: face]", "[default: hara2017]"]),
])
def test_help_lists_choices_and_real_defaults(command, shown):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for text in shown:
        assert text in result.output, (text, result.output)
    assert "<bool>" not in result.output and "list[" not in result.output


COMMANDS = ["fetch", "reproduce", "synth", "extract", "export", "inspect", "train", "evaluate", "predict", "timeline", "serve", "bench", "demo",
            "doctor"]


def test_help_shows_numbers_and_their_bounds_plainly():
    """A bounded number reads as any other (<int>) with its bounds in words, and a default as a value, not the
    ``<int range>``, ``x>=1`` and ``(40)`` Typer prints by itself."""
    root = runner.invoke(app, ["--help"], terminal_width=200)
    assert root.exit_code == 0 and re.findall(r"^  (\w+) ", root.output.split("Commands:")[1], re.M) == COMMANDS
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert result.exit_code == 0, (command, result.output)
        for broken in (" range>", "x>=", "x<=", "<=x", "[default: (", "; (", "<list"):
            assert broken not in result.output, (command, broken, result.output)
    shown = {"extract": ["--batch-size <int>", "[default: 2; at least 1]", "[default: 0.8; 0 to 1]",
                         "[default: none]", "[default: the cores free to this process; at least 1]"],
             "synth": ["--actors <int>", "[default: 8; 1 to 24]", "--fps <float>", "[default: 30.0; at least 1]"],
             "timeline": ["--hop <float>", "[default: one snippet: the window / 6; at least 0.04]"],
             "predict": ["VIDEO <path>", "[default: the run's]"]}
    for command, texts in shown.items():
        output = runner.invoke(app, [command, "--help"], terminal_width=200).output
        for text in texts:
            assert text in output, (command, text, output)


def test_train_settings_come_from_a_file_then_the_options(tmp_path):
    toml = tmp_path / "train.toml"
    toml.write_text('epochs = 12\nlr = 0.002\nseed = 3\n[model]\ndim = 128\nmodality = "video"\n')
    config = TrainConfig.from_sources(toml, {"epochs": 5, "lr": None, "dim": 64, "cross_attention": False,
                                             "modality": None})
    assert (config.epochs, config.lr, config.seed) == (5, 0.002, 3)  # an option given wins; None leaves the file's
    assert (config.model.dim, config.model.modality, config.model.cross_attention) == (64, "video", False)
    as_json = tmp_path / "train.json"
    as_json.write_text(json.dumps({"batch_size": 8, "model": {"dim": 32}}))
    config = TrainConfig.from_sources(as_json, {"dim": None, "patience": 2})
    assert (config.batch_size, config.patience, config.model.dim) == (8, 2, 32)
    assert TrainConfig.from_sources(None, {"modality": "audio"}).model.modality == "audio"  # under model


@pytest.mark.parametrize("text, overrides, named", [
    ("epochs = 3\nlearning_rate = 0.1\n", {}, ["train.toml", "learning_rate"]),
    ("[model]\nwidth = 3\n", {}, ["train.toml", "width"]),
    ("epochs = 3\n", {"dropout_rate": 0.5}, ["train.toml", "dropout_rate"]),
    ("epochs = 0\n", {}, ["train.toml", "epochs must be at least 1"]),
    ("loss = 'hinge'\n", {}, ["train.toml", "'hinge'", "emotion-metric"]),
    ("epochs = [\n", {}, ["train.toml", "cannot read"]),
])
def test_a_bad_setting_is_a_config_error_naming_the_file_and_the_setting(tmp_path, text, overrides, named):
    toml = tmp_path / "train.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_sources(toml, overrides)
    assert all(n in str(caught.value) for n in named), caught.value
    with pytest.raises(ConfigError, match="options: unknown training settings: speed"):
        TrainConfig.from_sources(None, {"speed": 2})


def test_a_bad_config_file_fails_in_one_line_and_leaves_no_run(fusion_cache, tmp_path):
    toml = tmp_path / "train.toml"
    toml.write_text("epochs = 3\nlearning_rate = 0.1\n")
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(tmp_path / "run"), "--config", str(toml)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert str(toml) in line and "learning_rate" in line and not (tmp_path / "run").exists()


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


def test_a_torchrun_rank_other_than_0_says_only_its_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    missing = tmp_path / "missing"
    result = runner.invoke(app, ["extract", str(missing), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: rank 1: {missing}: not a folder; point avemo at the folder that "
                                          "holds the dataset"]


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
