"""avemo doctor: the CPU rows run for real; the report format and exit code are checked."""

import json

import pytest
import torch
from typer.testing import CliRunner

from avemo.cli import app
from avemo.doctor import DoctorReport, PathCheck, Status, _Clip, _compare
from avemo.engines.runtime import onnxruntime_installed
from avemo.machine import native_bf16
from avemo.pipeline.dali import dali_installed


def test_doctor_checks_every_cpu_path_and_names_what_is_missing():
    result = CliRunner().invoke(app, ["doctor", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    rows = {r["path"]: r for r in report["paths"]}
    assert report["exit_code"] == 0 and report["device"] == "cpu"
    assert {"python", "torch", "PyAV", "onnxruntime", "TensorRT", "DALI", "CPU", "threads"} <= set(report["environment"])
    assert "h264 yes" in report["environment"]["PyAV"]
    assert rows["pyav decoder, H.264 + AAC (CPU)"]["status"] == "ok"
    assert rows["torch fp32 (CPU): the reference"]["status"] == "ok"
    assert rows["torch bf16 (CPU)"]["status"] == ("ok" if native_bf16() else "not available")
    why = "--device cpu" if torch.cuda.is_available() else "no CUDA device visible to torch"
    for name in ("torch fp16 (CUDA)", "torch fp16 + CUDA graphs", "TensorRT engine fp16"):
        assert rows[name]["status"] == "not available" and rows[name]["detail"] == why
    expected = "ok" if onnxruntime_installed() else "not available"
    assert rows["onnxruntime fp32 (CPU)"]["status"] == rows["onnxruntime fp16 graph (CPU)"]["status"] == expected
    dali = rows["dali decoder, VP9 (CPU) vs pyav"]
    assert dali["status"] == ("ok" if dali_installed() else "not available")
    assert all(r["clips_per_second"] > 0 for r in report["paths"] if r["status"] == "ok")
    assert "r3d10" in report["about"]


def test_bf16_is_reported_unavailable_where_oneDNN_would_emulate_it(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    from avemo.doctor import environment

    assert environment()["bfloat16 on the CPU"].startswith("emulated")


class _Off:
    """A backend whose video features are 10% off: what a broken runtime looks like."""

    def video(self, snippets):
        return snippets.float() * 1.1

    def audio(self, segments):
        return segments


def test_a_path_outside_its_tolerance_fails_with_the_size_of_the_error():
    clip = _Clip(torch.rand(2, 3), torch.rand(2, 4))
    row = _compare("broken", _Off(), clip, (clip.snippets.float(), clip.segments), "fp16")
    assert row.status is Status.failed and "video features differ" in row.detail and "0.02" in row.detail
    exact = _compare("exact", _Off(), clip, (clip.snippets.float() * 1.1, clip.segments), "fp32")
    assert exact.status is Status.ok


def test_one_failed_path_makes_the_exit_code_1(monkeypatch):
    rows = [PathCheck("torch fp32 (CPU): the reference", Status.ok, "features finite", 3.0),
            PathCheck("onnxruntime fp32 (CPU)", Status.failed, "export failed: OSError: disk full")]
    monkeypatch.setattr("avemo.doctor.check_paths", lambda device, work, on_row=None: rows)
    result = CliRunner().invoke(app, ["doctor", "--device", "cpu"])
    assert result.exit_code == 1
    assert "FAILED" in result.stdout and "disk full" in result.stdout
    assert "1 path(s) FAILED: onnxruntime fp32 (CPU)" in result.stdout
    assert DoctorReport("cpu", {}, rows[:1]).exit_code == 0


def test_doctor_refuses_cuda_without_cuda_in_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(app, ["doctor", "--device", "cuda"])
    assert result.exit_code == 2 and "no CUDA device" in result.stderr and "Traceback" not in result.output
