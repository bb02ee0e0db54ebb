"""Where extract's end-to-end time goes beyond its parts (decode + backbones), on 640x360 synthetic clips:
workers 1 vs 0, batch 1 vs 2, the variants taking turns. `python benchmarks/extract_gap.py [CLIPS]` (2: the
quick bench's own clips)."""

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from avemo.machine import configure_threads

warnings.filterwarnings("ignore", message="RANDOM")
configure_threads(None)

from avemo.bench.suite import BenchConfig, _synth  # noqa: E402 - after the threads are set
from avemo.extraction import ExtractConfig, run_extract  # noqa: E402

work = Path(tempfile.mkdtemp(prefix="gap-"))
n = int(sys.argv[1]) if len(sys.argv) > 1 else 4
paths = _synth(work / "h264", BenchConfig(quick=True)) if n == 2 else None
if paths is None:
    from avemo.synth import SynthConfig, synthesize
    synthesize(work / "data", actors=1, clips_per_actor=n, seed=0, config=SynthConfig(width=640, height=360))
    data = work / "data"
else:
    data = paths[0].parent.parent
runs = iter(range(1000))
rows = {}
variants = [("workers 1, batch 1", dict(workers=1, batch_size=1)),
            ("workers 0, batch 1", dict(workers=0, batch_size=1)),
            ("workers 1, batch 2", dict(workers=1, batch_size=2))]
for turn in range(2):
    for name, kw in variants:
        t = time.perf_counter()
        s = run_extract(ExtractConfig(data=data, cache=work / f"c{next(runs)}", device="cpu", decoder="pyav", **kw))
        wall = time.perf_counter() - t
        rows.setdefault(name, []).append((1 / s.clips_per_second, s.decode_seconds / s.written, s.backbone_seconds / s.written, s.setup_seconds, wall))
for name, r in rows.items():
    med = [statistics.median(x[i] for x in r) for i in range(5)]
    print(f"{name}: end-to-end {med[0]:.3f} s/clip, decode {med[1]:.3f}, backbones {med[2]:.3f}, setup {med[3]:.2f} s, wall {med[4]:.1f} s")
