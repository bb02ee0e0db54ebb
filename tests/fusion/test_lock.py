"""Run folder locking: a second trainer into a live run is refused naming the first; a dead one's lock is taken."""

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from avemo.cli import app
from avemo.files import FolderLock, LockedError
from avemo.fusion.run import LOCK as LOCK_NAME

runner = CliRunner()
TRAIN = ["--n-folds", "4", "--folds", "1", "--epochs", "1", "--batch-size", "16", "--dim", "32"]
HOLD = ("import sys; from pathlib import Path; from avemo.files import FolderLock\n"
        "with FolderLock(Path(sys.argv[1]), 'training'):\n"
        "    print('held', flush=True); sys.stdin.read()\n")


def test_a_second_trainer_is_refused_naming_the_live_one_then_a_dead_ones_lock_is_taken(fusion_cache, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run / LOCK_NAME)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ})
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ([], ["--resume"]):
            result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), *TRAIN, *extra])
            assert result.exit_code == 2, result.output
            assert f"process {holder.pid} is training it now" in " ".join(result.output.split())
            assert "Traceback" not in result.output
        assert not (run / "config.json").exists()  # refused before anything was written
    finally:
        holder.stdin.close()
        holder.wait()
    # The holder is gone: its lock file is not; a lock whose process died (kill -9) is taken over likewise.
    (run / LOCK_NAME).write_text("999999999 nowhere\n")
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), *TRAIN])
    assert result.exit_code == 0, result.output
    assert (run / "fold_1" / "best.pt").is_file() and not (run / LOCK_NAME).exists()


def test_lock_is_exclusive_within_one_machine_and_free_after_release(tmp_path):
    first = FolderLock(tmp_path / "x.lock", "training")
    with first:
        assert (tmp_path / "x.lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(LockedError, match=f"process {os.getpid()} is training it now"):
            FolderLock(tmp_path / "x.lock", "training").acquire()
    with FolderLock(tmp_path / "x.lock", "training"):
        pass


def test_without_flock_the_recorded_pid_decides(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_flock(*_):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    lock = tmp_path / "x.lock"
    lock.write_text(f"{os.getppid()} {__import__('socket').gethostname()}\n")  # a live process here
    with pytest.raises(LockedError, match=f"process {os.getppid()} is training it now"):
        FolderLock(lock, "training").acquire()
    lock.write_text("999999999\n")  # a dead one: taken over
    with FolderLock(lock, "training"):
        assert lock.read_text().split()[0] == str(os.getpid())
    lock.write_text("12 otherhost\n")  # another machine's: cannot be checked, so refused with the remedy
    with pytest.raises(LockedError, match=f"process 12 on otherhost .*if it is gone, delete {lock}"):
        FolderLock(lock, "training").acquire()
