"""A full disk (or quota, or read-only filesystem) stops a command at once with one line and leaves no debris."""

import errno
import os

import pytest
import torch
from typer.testing import CliRunner

from avemo.cache import FeatureCache
from avemo.cli import app
from avemo.files import DiskFullError, atomic_write
from tests.conftest import FAST_EXTRACT

runner = CliRunner()
TRAIN = ["--n-folds", "4", "--folds", "1", "--epochs", "3", "--batch-size", "16", "--dim", "32"]


def fill_disk(monkeypatch, name_ends: str, after: int, code: int = errno.ENOSPC) -> None:
    """Let ``after`` atomic writes of files named ``*name_ends`` succeed, then fail every one as a full disk does.

    It fails at the last step, the rename, so the temporary file is whole on disk and must be removed.
    """
    real_replace, done = os.replace, []

    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith(name_ends):
            if len(done) >= after:
                raise OSError(code, os.strerror(code), str(dst))
            done.append(dst)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def debris(folder) -> list:
    return sorted(p for p in folder.rglob("*.tmp"))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
def test_atomic_write_removes_its_temporary_and_raises_one_error_type(tmp_path, monkeypatch, code):
    (tmp_path / "f.json").write_text("old")
    fill_disk(monkeypatch, "f.json", after=0, code=code)
    with pytest.raises(DiskFullError) as caught:
        atomic_write(tmp_path / "f.json", b"new")
    assert caught.value.filename == str(tmp_path / "f.json") and caught.value.errno == code
    assert "free space" in caught.value.strerror
    assert (tmp_path / "f.json").read_text() == "old" and debris(tmp_path) == []


def test_other_errors_and_interrupts_leave_no_temporary_either(tmp_path, monkeypatch):
    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "f.bin", b"x" * 100)
    assert debris(tmp_path) == [] and not (tmp_path / "f.bin").exists()


def test_extract_stops_at_once_on_a_full_disk_and_the_same_command_resumes(synth_root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fill_disk(monkeypatch, ".safetensors", after=3)
    args = ["extract", str(synth_root / "Actor_01"), "--cache", str(cache), *FAST_EXTRACT]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{cache}: no space left on the device after 3 entries; free space and run the same command to " \
           "resume" in text, result.output
    assert "Traceback" not in result.output and "failed" not in text  # not 5 per-clip failures
    assert debris(cache) == []
    entries, broken = FeatureCache.open(cache).scan()
    assert len(entries) == 3 and broken == []
    monkeypatch.undo()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(FeatureCache.open(cache).scan()[0]) == 8


def test_train_stops_on_a_full_disk_keeping_the_last_whole_checkpoint_and_resumes(fusion_cache, tmp_path,
                                                                                   monkeypatch):
    run = tmp_path / "run"
    fill_disk(monkeypatch, "last.pt", after=1)
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), *TRAIN])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{run / 'fold_1' / 'last.pt'}: no space left on the device" in text and "--resume" in text
    assert "Traceback" not in result.output and debris(run) == []
    assert torch.load(run / "fold_1" / "last.pt", weights_only=True)["state"]["epoch"] == 1
    monkeypatch.undo()
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), *TRAIN, "--resume"])
    assert result.exit_code == 0, result.output
    assert torch.load(run / "fold_1" / "last.pt", weights_only=True)["state"]["epoch"] == 3


def test_evaluate_on_a_read_only_run_says_so_in_one_line(fusion_cache, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), *TRAIN]).exit_code == 0
    fill_disk(monkeypatch, ".png", after=0, code=errno.EROFS)
    result = runner.invoke(app, ["evaluate", str(run)])
    assert result.exit_code == 2, result.output
    assert "the file system is read-only" in " ".join(result.output.split()) and "Traceback" not in result.output
    assert debris(run) == [] and not (run / "confusion.png").exists()


def test_export_on_a_full_disk_says_so_in_one_line_and_leaves_no_temporary(tmp_path, monkeypatch):
    pytest.importorskip("onnxscript", reason="the onnx extra is not installed (pip install 'avemo[onnx]')")
    fill_disk(monkeypatch, ".onnx", after=0)
    result = runner.invoke(app, ["export", "--engines", str(tmp_path / "engines"), "--video-arch", "r3d10",
                                 "--size", "32", "--max-batch", "4"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert ".onnx: no space left on the device while writing it; free space and run the same command again" in text
    assert "Traceback" not in result.output and debris(tmp_path) == []
    assert not list((tmp_path / "engines").glob("*.onnx"))
