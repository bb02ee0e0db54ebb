"""Damaged fold checkpoints: every kind gives one line naming the file and what to do, in every command."""

import io
import shutil

import pytest
import torch
from typer.testing import CliRunner

from avemo.cli import app
from avemo.fusion.checkpoint import FORMAT, CheckpointError, build_model, load_checkpoint
from avemo.fusion.model import FusionConfig
from avemo.fusion.runs import train_run
from avemo.fusion.train import TrainConfig

runner = CliRunner()
CONFIG = TrainConfig(n_folds=4, folds=[1], epochs=2, batch_size=16, model=FusionConfig(dim=32))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)


@pytest.fixture(scope="module")
def trained(fusion_cache, tmp_path_factory):
    run = tmp_path_factory.mktemp("ckpt") / "run"
    train_run(fusion_cache, run, CONFIG)
    return run


def _rewrite(path, change):
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    path.write_bytes(buffer.getvalue())


def _other_model(checkpoint):  # the configuration says dim 64, the weights are dim 32
    checkpoint["config"]["model"]["dim"] = 64


def _other_format(checkpoint):
    checkpoint["format"] = "avemo-checkpoint/99"


class _Evil:
    def __reduce__(self):
        return (print, ("executed",))


DAMAGE = {
    "text": (lambda p: p.write_text("model weights go here\n"), "not a PyTorch checkpoint"),
    "png": (lambda p: p.write_bytes(PNG), "not a PyTorch checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "not a PyTorch checkpoint"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated or damaged"),
    "other model": (lambda p: _rewrite(p, _other_model), "another model configuration"),
    "other format": (lambda p: _rewrite(p, _other_format), "checkpoint format 'avemo-checkpoint/99'"),
    "not avemo": (lambda p: torch.save({"state_dict": {}}, p), "not an avemo"),
    "pickled object": (lambda p: torch.save({"model": _Evil()}, p), "objects other than tensors"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_damaged_best_checkpoint_gives_one_line_in_predict(trained, fusion_cache, tmp_path, kind, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    damage, reason = DAMAGE[kind]
    damage(run / "fold_1" / "best.pt")
    with pytest.raises(CheckpointError, match=reason) as caught:
        load_checkpoint(run / "fold_1" / "best.pt", "best")
    assert str(run / "fold_1" / "best.pt") in str(caught.value) and "\n" not in str(caught.value)
    assert "executed" not in capsys.readouterr().out  # never unpickled
    clip = next((fusion_cache.parent / "data" / "Actor_03").glob("*.mp4"))
    result = runner.invoke(app, ["predict", str(clip), "--run", str(run)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and reason in " ".join(result.output.split())
    assert "best.pt" in " ".join(result.output.split())


@pytest.mark.parametrize("kind", ["truncated", "png", "other format"])
def test_resume_from_a_damaged_last_checkpoint_says_what_to_do(trained, fusion_cache, tmp_path, kind):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    DAMAGE[kind][0](run / "fold_1" / "last.pt")
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), "--resume", "--n-folds", "4",
                                 "--folds", "1", "--epochs", "2", "--batch-size", "16", "--dim", "32"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and DAMAGE[kind][1] in text
    assert "last.pt" in text and "start a new --run" in text


def test_checkpoints_are_tagged_and_untagged_ones_still_load(trained, tmp_path):
    for kind in ("best", "last"):
        checkpoint = torch.load(trained / "fold_1" / f"{kind}.pt", weights_only=True)
        assert checkpoint["format"] == FORMAT and checkpoint["kind"] == kind
        del checkpoint["format"], checkpoint["kind"]  # as written before the tag existed
        old = tmp_path / f"{kind}.pt"
        torch.save(checkpoint, old)
        assert set(load_checkpoint(old, kind)) >= {"model", "config"}
    with pytest.raises(CheckpointError, match="a best.pt checkpoint saved under another name"):
        load_checkpoint(trained / "fold_1" / "best.pt", "last")


def _without_input_statistics(checkpoint):  # as written before avemo standardised the model's inputs
    checkpoint["model"] = {k: v for k, v in checkpoint["model"].items() if not k.startswith(("video_norm", "audio_norm"))}


def test_a_best_checkpoint_written_before_input_standardisation_loads_as_a_model_of_raw_features(trained, fusion_cache, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    fitted = build_model(load_checkpoint(run / "fold_1" / "best.pt", "best"), run / "fold_1" / "best.pt")
    assert not torch.equal(fitted.video_norm.std, torch.ones_like(fitted.video_norm.std))  # training fitted them
    _rewrite(run / "fold_1" / "best.pt", _without_input_statistics)
    old = build_model(load_checkpoint(run / "fold_1" / "best.pt", "best"), run / "fold_1" / "best.pt")
    assert torch.equal(old.video_norm.mean, torch.zeros_like(old.video_norm.mean))
    assert torch.equal(old.audio_norm.std, torch.ones_like(old.audio_norm.std))
    clip = next((fusion_cache.parent / "data" / "Actor_03").glob("*.mp4"))
    result = runner.invoke(app, ["predict", str(clip), "--run", str(run), "--json"])
    assert result.exit_code == 0, result.output


def test_resuming_a_fold_started_before_input_standardisation_is_refused_in_one_line(trained, fusion_cache, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    _rewrite(run / "fold_1" / "last.pt", _without_input_statistics)
    result = runner.invoke(app, ["train", str(fusion_cache), "--run", str(run), "--resume", "--n-folds", "4",
                                 "--folds", "1", "--epochs", "2", "--batch-size", "16", "--dim", "32"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "Traceback" not in result.output and "last.pt" in text and "raw features" in text
    assert "start a new --run" in text
