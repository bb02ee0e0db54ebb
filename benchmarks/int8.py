"""int8 against fp32 for the frozen video backbone (Hara's 3D ResNet, 16 x 112 x 112 snippets) on the CPU.

Side by side in one run, on the same held-out clips: PyTorch eager fp32 (channels-last, as avemo's torch
backend runs it), ONNX Runtime fp32 (the graph ``avemo export`` writes), ONNX Runtime static int8 (QDQ,
per-channel weights, MinMax calibration; S8S8, U8S8, and U8S8 with 7-bit weights, the setting ONNX Runtime
advises for x86 without VNNI) and PyTorch int8 (FX graph mode, x86 qconfig). For each: seconds per clip (one
batch of 6 snippets; median over the held-out clips after a warm-up, the variants taking turns on each clip so
that any load on the machine falls on all of them alike), speed-ups, and the int8 features against PyTorch
fp32: relative error ||f - f_fp32|| / ||f_fp32|| over all held-out snippets, and the mean and minimum cosine
similarity of each snippet's flattened (C x L) features.

Clips: a dataset written by ``avemo synth`` (``--data``), cut by avemo's own ``prepare_file`` with the default
VideoConfig/AudioConfig; calibration on the first actor's clips, evaluation on the second actor's.

    avemo synth DATA --actors 2 --clips-per-actor 8
    python benchmarks/int8.py --data DATA --work WORK [--video-weights FILE] [--runtimes torch,ort]

The graphs (fp32 export, pre-processed, int8) and the calibration ranges are cached in WORK and reused; pass
--fresh to rebuild them. To approximate an AVX2-only machine, run the torch rows again with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ... --runtimes torch``
(ONNX Runtime has no such switch: MLAS picks its kernels from CPUID).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from avemo.engines.backbones import VideoFeatures, build_video
from avemo.export.onnx import _export_one
from avemo.pipeline.prepare import prepare_file
from avemo.spec import AudioConfig, BackboneConfig, VideoConfig

FLAGS = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8")
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS")
INPUT = "snippets"


# -- the machine ----------------------------------------------------------------------------------------------

def cpu_summary() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return model, [f for f in FLAGS if f in flags]


def header(threads: int) -> str:
    import onnx
    import onnxruntime as ort

    model, flags = cpu_summary()
    env = ", ".join(f"{k}={os.environ[k]}" for k in ISA_ENV if k in os.environ) or "none"
    return "\n".join([
        f"- CPU: {model}, {os.cpu_count()} logical CPUs; flags: {' '.join(flags)}",
        f"- torch {torch.__version__} (kernels: {torch.backends.cpu.get_cpu_capability()}, quantized engine "
        f"{torch.backends.quantized.engine}), onnxruntime {ort.__version__}, onnx {onnx.__version__}, "
        f"Python {platform.python_version()}",
        f"- ISA overrides in the environment: {env}; threads: {threads} (torch and ONNX Runtime intra-op)",
        f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ])


# -- clips ----------------------------------------------------------------------------------------------------

def load_clips(data: Path, calib: int, held_out: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(calibration snippets, held-out snippets): one (6, 3, 16, 112, 112) uint8 tensor per clip, the first
    actor's clips for calibration and the second actor's for evaluation."""
    actors = sorted(p for p in data.glob("Actor_*") if p.is_dir())
    if len(actors) < 2:
        sys.exit(f"{data}: need an avemo synth dataset with at least 2 actors")
    video, audio = VideoConfig(), AudioConfig()

    def prepare(paths: list[Path]) -> list[torch.Tensor]:
        return [prepare_file(p, video, audio)[0] for p in paths]

    return (prepare(sorted(actors[0].glob("*.mp4"))[:calib]),
            prepare(sorted(actors[1].glob("*.mp4"))[:held_out]))


# -- the runtimes ---------------------------------------------------------------------------------------------

class TorchFp32:
    """As avemo's TorchBackend runs it on a CPU: eval, channels-last 3D, inference mode."""

    def __init__(self, net: VideoFeatures) -> None:
        self.net = copy.deepcopy(net).to(memory_format=torch.channels_last_3d).eval()

    def __call__(self, snippets: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return self.net(snippets).numpy()


class _Trunk(torch.nn.Module):
    """The 3D ResNet up to layer4, as one traceable forward (normalised float snippets in)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x)


class TorchInt8Fx:
    """PyTorch eager int8 via FX graph mode with ``get_default_qconfig_mapping('x86')``: Conv3d+BN+ReLU fused,
    per-channel int8 weights, uint8 activations (7-bit range, the x86 default), histogram calibration. The
    uint8 -> float normalisation stays in fp32 before the first quantize."""

    def __init__(self, net: VideoFeatures, calibration: list[torch.Tensor]) -> None:
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        torch.backends.quantized.engine = "x86"
        self.normalize = copy.deepcopy(net).eval().normalize
        example = (self.normalize(calibration[0][:1]),)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FX graph mode's deprecation notices
            prepared = prepare_fx(_Trunk(copy.deepcopy(net.net)).eval(), get_default_qconfig_mapping("x86"), example)
            with torch.inference_mode():
                for clip in calibration:
                    prepared(self.normalize(clip))
            self.trunk = convert_fx(prepared).eval()

    def __call__(self, snippets: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            x = self.normalize(snippets).contiguous(memory_format=torch.channels_last_3d)
            return self.trunk(x).flatten(2).numpy()


class Ort:
    def __init__(self, path: Path, threads: int, optimized: Path | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if optimized is not None:  # what ORT actually runs, to count the int8 kernels
            options.optimized_model_filepath = str(optimized)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, snippets: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {INPUT: snippets.numpy()})[0]


def kernel_count(path: Path) -> str:
    """Which convolutions ORT runs after its graph optimisations: int8 (QLinearConv) or float."""
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    int8 = ops.count("QLinearConv")
    fp = sum("Conv" in op and op not in ("QLinearConv", "ConvInteger") for op in ops)
    return f"{int8} int8 / {fp} float convs"


# -- building the graphs --------------------------------------------------------------------------------------

def export_fp32(net: VideoFeatures, work: Path, fresh: bool) -> tuple[Path, Path, float]:
    """avemo's own ONNX export (dynamic batch, opset 18), then ORT's quantisation pre-processing."""
    from onnxruntime.quantization import quant_pre_process

    graph, pre = work / "video-fp32.onnx", work / "video-fp32-pre.onnx"
    start = time.perf_counter()
    if fresh or not graph.exists():
        v = VideoConfig()
        example = torch.zeros(2, 3, v.frames, v.size, v.size, dtype=torch.uint8)
        graph.write_bytes(_export_one(copy.deepcopy(net).eval(), example, INPUT, graph, max_batch=64))
    if fresh or not pre.exists():
        quant_pre_process(str(graph), str(pre))
    return graph, pre, time.perf_counter() - start


class Reader:
    """ONNX Runtime calibration reader: one clip (6 snippets) per call."""

    def __init__(self, clips: list[torch.Tensor]) -> None:
        self.clips = iter([{INPUT: c.numpy()} for c in clips])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.clips, None)


def quantize_ort(pre: Path, out: Path, calibration: list[torch.Tensor], cache: Path, activations: str,
                 reduce_range: bool, fresh: bool) -> float:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    start = time.perf_counter()
    if fresh or not out.exists():
        quantize_static(str(pre), str(out), Reader(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=reduce_range, activation_type=getattr(QuantType, activations),
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        calibration_cache_path=str(cache))
    return time.perf_counter() - start


# -- measuring ------------------------------------------------------------------------------------------------

def compare(features: np.ndarray, reference: np.ndarray) -> tuple[float, float, float, float]:
    """(relative error over all snippets, the same error relative to the snippets' spread around their mean,
    mean cosine, min cosine of per-snippet flattened features)."""
    f = features.reshape(len(features), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    error = np.linalg.norm(f - r)
    cos = (f * r).sum(1) / (np.linalg.norm(f, axis=1) * np.linalg.norm(r, axis=1))
    return (float(error / np.linalg.norm(r)), float(error / np.linalg.norm(r - r.mean(0))), float(cos.mean()),
            float(cos.min()))


def between_snippets(reference: np.ndarray) -> tuple[float, float]:
    """(mean, max) cosine between the fp32 features of different snippets: how close unrelated snippets
    already are, since post-ReLU features are all non-negative."""
    r = reference.reshape(len(reference), -1).astype(np.float64)
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    cos = (r @ r.T)[np.triu_indices(len(r), 1)]
    return float(cos.mean()), float(cos.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="an avemo synth dataset (2+ actors)")
    parser.add_argument("--work", type=Path, required=True, help="folder for the graphs and calibration cache")
    parser.add_argument("--video-weights", default="random", help="Hara checkpoint, or random (default)")
    parser.add_argument("--calib-clips", type=int, default=4, help="clips of the first actor (6 snippets each)")
    parser.add_argument("--eval-clips", type=int, default=4, help="held-out clips of the second actor = timed repeats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtimes", default="torch,ort", help="comma-separated: torch, ort")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached graphs and calibration")
    parser.add_argument("--times", type=Path, help="also write the raw seconds of every run here (JSON)")
    args = parser.parse_args()
    runtimes = set(args.runtimes.split(","))
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    print(header(args.threads), flush=True)

    start = time.perf_counter()
    calibration, held_out = load_clips(args.data, args.calib_clips, args.eval_clips)
    print(f"- clips: {len(calibration)} calibration + {len(held_out)} held-out, "
          f"{tuple(held_out[0].shape)} {held_out[0].dtype} each ({time.perf_counter() - start:.1f} s)", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loud random-weights warning; the report says so instead
        net, spec = build_video(BackboneConfig(video_weights=args.video_weights))
    print(f"- weights: {spec.weights.release} ({spec.arch}, normalisation {spec.normalization.name})", flush=True)

    # (name, runtime, callable, build seconds, note); the first is the reference
    variants: list[tuple[str, str, object, float, str]] = []
    variants.append(("fp32", "PyTorch eager", TorchFp32(net), 0.0, "channels-last 3D"))
    if "ort" in runtimes:
        graph, pre, seconds = export_fp32(net, args.work, args.fresh)
        variants.append(("fp32", "ONNX Runtime", Ort(graph, args.threads), seconds, "avemo's export graph"))
        cache = args.work / "calibration-minmax.json"
        if args.fresh:
            cache.unlink(missing_ok=True)
        for name, acts, reduce in (("int8 S8S8", "QInt8", False), ("int8 U8S8", "QUInt8", False),
                                   ("int8 U8S8 reduce_range", "QUInt8", True)):
            out = args.work / f"video-{name.split()[1].lower()}{'-rr' if reduce else ''}.onnx"
            seconds = quantize_ort(pre, out, calibration, cache, acts, reduce, args.fresh)
            optimized = out.with_suffix(".ort-optimized.onnx")
            session = Ort(out, args.threads, optimized)
            note = f"QDQ, per-channel, MinMax{', 7-bit weights' if reduce else ''}; runs {kernel_count(optimized)}"
            variants.append((name, "ONNX Runtime", session, seconds, note))
    if "torch" in runtimes:
        begin = time.perf_counter()
        try:
            fx = TorchInt8Fx(net, calibration)
            variants.append(("int8 FX x86", "PyTorch eager", fx, time.perf_counter() - begin,
                             "FX graph mode, x86 qconfig (7-bit activations), histogram calibration"))
        except Exception as err:  # noqa: BLE001 - report it and go on with the others
            print(f"- PyTorch FX int8 failed: {type(err).__name__}: {err}", flush=True)

    # Warm-up on a calibration clip, then every variant on each held-out clip in turn.
    for _, _, run, _, _ in variants:
        run(calibration[0])
    times: list[list[float]] = [[] for _ in variants]
    outputs: list[list[np.ndarray]] = [[] for _ in variants]
    for clip in held_out:
        for i, (_, _, run, _, _) in enumerate(variants):
            begin = time.perf_counter()
            outputs[i].append(run(clip))
            times[i].append(time.perf_counter() - begin)

    medians = [statistics.median(t) for t in times]
    reference = np.concatenate(outputs[0])
    fp32 = {rt: i for i, (name, rt, *_) in enumerate(variants) if name == "fp32"}

    def paired(base: int, i: int) -> float:
        """Median over the rounds of fp32 seconds / this variant's seconds in the same round: the two ran
        seconds apart, so a load that comes and goes mostly cancels out."""
        return statistics.median(b / t for b, t in zip(times[base], times[i]))

    print()
    print("| variant | runtime | s / clip (median) | min-max | vs fp32 same runtime | vs PyTorch fp32 "
          "| rel. error | error / spread | cosine mean | cosine min | build s | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, (name, rt, _, seconds, note) in enumerate(variants):
        rel, spread, cos_mean, cos_min = compare(np.concatenate(outputs[i]), reference)
        same = "-" if name == "fp32" else f"{medians[fp32[rt]] / medians[i]:.2f}x (paired {paired(fp32[rt], i):.2f}x)"
        print(f"| {name} | {rt} | {medians[i]:.3f} | {min(times[i]):.3f}-{max(times[i]):.3f} | {same} "
              f"| {medians[0] / medians[i]:.2f}x (paired {paired(0, i):.2f}x) | {rel:.4f} | {spread:.4f} "
              f"| {cos_mean:.5f} | {cos_min:.5f} | {seconds:.0f} | {note} |")
    if args.times:
        import json

        args.times.write_text(json.dumps({f"{name} / {rt}": t for (name, rt, *_), t in zip(variants, times)},
                                         indent=1))
    mean, most = between_snippets(reference)
    print(f"\nfp32 features of different held-out snippets: cosine mean {mean:.4f}, max {most:.4f}; error / spread: "
          "the error over the fp32 features' deviation from their mean across snippets")
    print(f"{len(held_out)} held-out clips x 6 snippets; errors against PyTorch fp32; load average at end: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
