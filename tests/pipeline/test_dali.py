"""DALI's decoding graph against the PyAV path.

DALI's CPU decoder reads VP9, not H.264, so the graph (frame choice, scaling, crop, order) is tested on VP9
clips everywhere; the H.264 path on the GPU's decoder runs where CUDA is present.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from avemo.pipeline.dali import dali_installed

pytestmark = pytest.mark.skipif(not dali_installed(), reason="DALI is not installed (pip install 'avemo[dali]')")

from avemo.cache import FeatureCache  # noqa: E402
from avemo.cli import app  # noqa: E402
from avemo.pipeline.batches import resolve_decoder  # noqa: E402
from avemo.pipeline.dali import DaliFrames, FrameRequest  # noqa: E402
from avemo.pipeline.decode import decode_clip  # noqa: E402
from avemo.pipeline.face import centre_box  # noqa: E402
from avemo.pipeline.video import region, sample_indices, snippets_from_frames  # noqa: E402
from avemo.spec import VideoConfig  # noqa: E402
from avemo.synth import SynthConfig, synthesize  # noqa: E402
from tests.conftest import FAST_EXTRACT  # noqa: E402

VIDEO = VideoConfig(size=64, resize=72)
# PyAV and DALI use the same BT.601 matrix but upsample chroma differently (nearest vs bilinear) and resize
# with different filters: measured mean |difference| 1.7-1.9 of 255, at most ~30 at sharp colour edges.
MEAN_PIXEL_TOLERANCE = 3.0


@pytest.fixture(scope="module")
def vp9_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vp9")
    synthesize(root / "constant", 2, 2, seed=3, config=SynthConfig(codec="vp9", width=96, height=72))
    synthesize(root / "variable", 1, 2, seed=4, config=SynthConfig(codec="vp9", width=72, height=96,
                                                                   variable_frame_rate=True, fps=12))
    return root


def _pyav_and_request(path: Path, video: VideoConfig) -> tuple[torch.Tensor, FrameRequest]:
    full = decode_clip(path, video, 16000)
    demuxed = decode_clip(path, video, 16000, video_frames=False)
    # The frames DALI is asked for are chosen from demuxed packet times: they must be the decoded frames' times.
    np.testing.assert_allclose(demuxed.times, full.times)
    index = sample_indices(demuxed.times, demuxed.duration, video.snippets, video.frames)
    box = centre_box(*demuxed.size, video.size / video.resize).as_list()
    request = FrameRequest(np.frombuffer(path.read_bytes(), np.uint8), video.decode_size(*demuxed.size), index,
                           [region(video, demuxed.size, box)])
    return snippets_from_frames(full.frames, index, video.size), request


def test_dali_frames_equal_pyav_frames_on_vp9(vp9_root):
    paths = sorted(vp9_root.rglob("*.mp4"))
    assert len(paths) == 6  # landscape at 30 fps, portrait at a variable 6-18 fps (short: frames repeat)
    pairs = [_pyav_and_request(p, VIDEO) for p in paths]
    frames = DaliFrames(VIDEO, torch.device("cpu"), batch_size=4)
    got = torch.cat([frames([r for _, r in pairs[:4]]), frames([r for _, r in pairs[4:]])])
    assert got.shape == (6, 6, 3, 16, 64, 64) and got.dtype == torch.uint8
    for (expected, _), snippets in zip(pairs, got):
        diff = (snippets.int() - expected.int()).abs().float()
        assert diff.mean() < MEAN_PIXEL_TOLERANCE
        # The crop is where PyAV's is: one pixel off, the difference triples on these drawn faces.
        shifted = (snippets[..., 1:].int() - expected[..., :-1].int()).abs().float().mean()
        assert shifted > 2 * diff[..., 1:].mean()


def test_dali_cpu_refuses_h264_per_clip_and_extract_goes_on(vp9_root, synth_root, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(vp9_root / "constant", data)
    h264 = sorted(synth_root.rglob("*.mp4"))[0]
    shutil.copy(h264, data / "Actor_01" / "01-01-03-02-02-02-01.mp4")
    result = CliRunner().invoke(app, ["extract", str(data), "--cache", str(tmp_path / "c"), "--decoder", "dali",
                                      *FAST_EXTRACT])
    assert result.exit_code == 0, result.output
    assert "DALI cannot decode h264 on the CPU" in result.output and "--decoder pyav" in result.output
    assert len(FeatureCache.open(tmp_path / "c").index()) == 4


def test_extract_with_dali_matches_extract_with_pyav(vp9_root, tmp_path):
    caches = {}
    for decoder in ("dali", "pyav"):
        cache = tmp_path / decoder
        result = CliRunner().invoke(app, ["extract", str(vp9_root / "constant"), "--cache", str(cache),
                                          "--decoder", decoder, *FAST_EXTRACT])
        assert result.exit_code == 0, result.output
        assert f"decoder {'dali-cpu' if decoder == 'dali' else 'pyav'}" in result.output
        caches[decoder] = FeatureCache.open(cache)
    assert caches["dali"].fingerprint == caches["pyav"].fingerprint
    entries = caches["pyav"].index()
    assert len(entries) == 4
    assert {e["produced_by"] for e in caches["dali"].index()} == {"torch-fp32, dali-cpu decoder"}
    assert {e["produced_by"] for e in entries} == {"torch-fp32, pyav decoder"}
    for entry in entries:
        (dali_video, dali_audio) = caches["dali"].read(entry["clip_id"])
        (pyav_video, pyav_audio) = caches["pyav"].read(entry["clip_id"])
        torch.testing.assert_close(dali_audio, pyav_audio)  # same soundtrack path
        scale = pyav_video.float().abs().max().item()
        # Stated tolerance: pixel rounding moves features by up to ~3% of the largest one (measured 2.9%).
        torch.testing.assert_close(dali_video.float(), pyav_video.float(), rtol=5e-2, atol=5e-2 * scale)


def test_a_clip_dali_cannot_decode_fails_alone(vp9_root, tmp_path, monkeypatch):
    bad = sorted((vp9_root / "constant").rglob("*.mp4"))[1]
    bad_bytes = bad.read_bytes()
    decode = DaliFrames.__call__

    def fails_on_bad(self, requests):
        if any(r.encoded.tobytes() == bad_bytes for r in requests):
            raise RuntimeError("[/decoders/video] corrupt frame data")  # what DALI raises
        return decode(self, requests)

    monkeypatch.setattr(DaliFrames, "__call__", fails_on_bad)
    cache = tmp_path / "c"
    result = CliRunner().invoke(app, ["extract", str(vp9_root / "constant"), "--cache", str(cache),
                                      "--decoder", "dali", *FAST_EXTRACT])
    assert result.exit_code == 0, result.output
    assert f"{bad}: DALI cannot decode the video" in result.output.replace("\n", "")
    written = {e["clip_id"] for e in FeatureCache.open(cache).index()}
    assert len(written) == 3 and bad.stem not in written


def test_decoder_choice():
    cpu = torch.device("cpu")
    assert resolve_decoder("auto", cpu) == "pyav"  # DALI's CPU decoder cannot read RAVDESS's H.264
    assert resolve_decoder("dali", cpu) == "dali-cpu"
    assert resolve_decoder("dali", torch.device("cuda")) == "dali-gpu"
    with pytest.raises(RuntimeError, match="unknown decoder"):
        resolve_decoder("opencv", cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="DALI decodes H.264 only on a CUDA GPU (NVDEC)")
def test_dali_gpu_decodes_h264_like_pyav(synth_root):
    paths = sorted(synth_root.rglob("*.mp4"))[:3]
    pairs = [_pyav_and_request(p, VIDEO) for p in paths]
    got = DaliFrames(VIDEO, torch.device("cuda"), batch_size=3)([r for _, r in pairs])
    assert got.is_cuda
    for (expected, _), snippets in zip(pairs, got.cpu()):
        assert (snippets.int() - expected.int()).abs().float().mean() < MEAN_PIXEL_TOLERANCE
