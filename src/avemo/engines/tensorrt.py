"""The TensorRT backend: engines built from avemo's ONNX graphs, cached per GPU and TensorRT version.

An engine is only valid for the GPU architecture and TensorRT version that built it, and for the graph and
optimisation profile it was built from. Its file name carries a hash of all four
(``ENGINES/tensorrt/{graph}-{key}.plan``) and a sidecar ``.json`` records them with the plan's own SHA-256,
so engines for several GPUs can share one folder and a damaged or foreign plan is rebuilt, never run.
Builds reuse a timing cache (``ENGINES/tensorrt/timing-{gpu}-{trt}.cache``), which turns a rebuild from
minutes of tactic timing into seconds.

TensorRT 10.12+ and 11 are strongly typed: the network is created with ``STRONGLY_TYPED`` and precision
comes from the graph (``avemo export --precision fp16`` writes half-precision weights into it). Inference
runs with ``execute_async_v3`` on torch's current CUDA stream, reading and writing torch CUDA tensors
directly, so inputs already on the GPU (DALI's output) never touch the host.

``tensorrt`` is imported only when this backend is used; the CPU install never imports it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from avemo.files import atomic_write
from avemo.engines.graphs import EngineError, Graph, load_graph

if TYPE_CHECKING:
    from avemo.spec import FeatureSpec

ENGINE_FORMAT = "avemo-tensorrt/1"
WORKSPACE_BYTES = 4 << 30


@dataclass(frozen=True)
class Profile:
    """Batch sizes of the optimisation profile: TensorRT tunes for ``opt`` and accepts ``min`` to ``max``."""

    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise ValueError(f"profile needs 1 <= min <= opt <= max, got {self.min}, {self.opt}, {self.max}")


@dataclass(frozen=True)
class EngineIdentity:
    """Everything an engine is valid for; a plan is reused only when all of it matches."""

    graph_sha256: str
    gpu: str
    compute_capability: str
    tensorrt: str
    profile: Profile
    format: str = ENGINE_FORMAT

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def engine_path(engines: Path, graph: Path, identity: EngineIdentity) -> Path:
    """Where the engine of ``graph`` for ``identity`` lives."""
    return engines / "tensorrt" / f"{graph.stem}-{identity.key()}.plan"


def timing_cache_path(engines: Path, identity: EngineIdentity) -> Path:
    """One timing cache per GPU architecture and TensorRT version (TensorRT refuses any other)."""
    gpu = "".join(c if c.isalnum() else "-" for c in identity.gpu).strip("-").lower()
    return engines / "tensorrt" / f"timing-{gpu}-sm{identity.compute_capability.replace('.', '')}-trt{identity.tensorrt}.cache"


def load_or_build(path: Path, identity: EngineIdentity, build: Callable[[], bytes],
                  deserialize: Callable[[bytes], Any], spec: dict[str, Any] | None = None) -> Any:
    """The engine at ``path`` when it matches ``identity`` and deserialises; otherwise build, save and load it.

    Every reason for a rebuild (no plan, a sidecar for another identity, a plan whose bytes changed, a plan
    TensorRT refuses) is reported in one warning naming the file. A fresh build that TensorRT then refuses is
    an error: building again would not help.
    """
    sidecar = path.with_suffix(".json")
    reason = _stale_reason(path, sidecar, identity)
    if reason is None:
        plan = path.read_bytes()
        engine = deserialize(plan)
        if engine is not None:
            return engine
        reason = "TensorRT cannot deserialise it"
    if path.exists() or sidecar.exists():
        warnings.warn(f"{path}: {reason}; rebuilding it (once per GPU, TensorRT version and graph)", stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    plan = build()
    engine = deserialize(plan)
    if engine is None:
        raise EngineError(f"{path}: TensorRT built an engine it cannot load; check the TensorRT installation")
    # The plan goes first: a sidecar never vouches for a plan that is not there.
    atomic_write(path, plan)
    # The feature spec of the graph it was built from, for people (the graph's hash in the identity binds it).
    atomic_write(sidecar, json.dumps({"identity": asdict(identity), "plan_sha256": hashlib.sha256(plan).hexdigest(),
                                      "spec": spec}, indent=1).encode())
    return engine


def _stale_reason(path: Path, sidecar: Path, identity: EngineIdentity) -> str | None:
    if not path.is_file():
        return "no engine yet"
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError):
        return "its sidecar .json is missing or unreadable"
    if recorded.get("identity") != json.loads(json.dumps(asdict(identity))):
        return "built for another GPU, TensorRT version, graph or batch profile"
    if hashlib.sha256(path.read_bytes()).hexdigest() != recorded.get("plan_sha256"):
        return "changed or damaged since it was built (hash differs from its sidecar)"
    return None


def tensorrt_installed() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def _identity(trt: Any, graph: Graph, profile: Profile, device: torch.device) -> EngineIdentity:
    major, minor = torch.cuda.get_device_capability(device)
    return EngineIdentity(graph_sha256=graph.manifest["graph_sha256"], gpu=torch.cuda.get_device_name(device),
                          compute_capability=f"{major}.{minor}", tensorrt=trt.__version__, profile=profile)


def build_plan(trt: Any, graph: Graph, profile: Profile, timing_cache: Path) -> bytes:
    """Parse the ONNX graph into a strongly typed network and build a serialised engine for ``profile``."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(graph.data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{graph.path}: TensorRT's ONNX parser refuses it ({errors[:300]}); re-export it with "
                          "this version of avemo")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if hasattr(trt.BuilderFlag, "TF32"):
        # An fp32 engine computes in fp32, as the parity tolerance and the fp32 graph promise (TF32 is on by
        # default and keeps 10 mantissa bits); speed comes from the fp16 graph.
        config.clear_flag(trt.BuilderFlag.TF32)
    cached = timing_cache.read_bytes() if timing_cache.is_file() else b""
    try:
        cache = config.create_timing_cache(cached)
    except Exception:  # noqa: BLE001 - a damaged cache file: TensorRT's error type is its own
        cache = None
    if cache is None or not config.set_timing_cache(cache, False):
        # A timing cache from another TensorRT build or GPU: start afresh rather than fail.
        warnings.warn(f"{timing_cache}: not usable by this TensorRT or GPU; timing from scratch", stacklevel=2)
        config.set_timing_cache(config.create_timing_cache(b""), False)
    tail = tuple(graph.manifest["input"]["shape"][1:])
    shapes = [(batch, *tail) for batch in (profile.min, profile.opt, profile.max)]
    optimisation = builder.create_optimization_profile()
    optimisation.set_shape(graph.input_name, *shapes)
    config.add_optimization_profile(optimisation)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(f"{graph.path}: TensorRT could not build an engine from it (see its log above)")
    atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(plan)


class _Engine:
    """One deserialised engine, run on torch CUDA tensors; batches above the profile's maximum are split."""

    def __init__(self, trt: Any, runtime: Any, engine: Any, device: torch.device) -> None:
        # The runtime must outlive the engines it deserialised.
        self.runtime, self.engine, self.device = runtime, engine, device
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"engine has inputs {inputs} and outputs {outputs}; expected one of each")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = _torch_dtype(trt, engine.get_tensor_dtype(self.input_name))
        self.output_dtype = _torch_dtype(trt, engine.get_tensor_dtype(self.output_name))
        self.max_batch = int(engine.get_tensor_profile_shape(self.input_name, 0)[2][0])

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.input_dtype, non_blocking=True).contiguous()
        if not self.context.set_input_shape(self.input_name, tuple(x.shape)):
            raise EngineError(f"engine refuses input shape {tuple(x.shape)}")
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output_name)), dtype=self.output_dtype,
                          device=self.device)
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        self.context.set_tensor_address(self.output_name, out.data_ptr())
        # The current stream orders TensorRT's kernels after whatever produced x (a DALI copy, a cast).
        if not self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise EngineError("TensorRT failed to enqueue the engine (see its log above)")
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.cuda.device(self.device):
            return torch.cat([self._run(chunk) for chunk in x.split(self.max_batch)]).float()


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.DataType.UINT8: torch.uint8, trt.DataType.HALF: torch.float16, trt.DataType.FLOAT: torch.float32,
             trt.DataType.BF16: torch.bfloat16}
    if dtype not in table:
        raise EngineError(f"engine tensor of type {dtype} is not one avemo exports")
    return table[dtype]


def load_engine(engines: Path, kind: str, spec: FeatureSpec, precision: str, profile: Profile,
                device: torch.device) -> tuple[_Engine, Path]:
    """The engine of the ``kind`` graph for ``spec``, from the engine cache or freshly built."""
    import tensorrt as trt

    graph = load_graph(engines, kind, spec, precision)
    profile = Profile(min(profile.min, graph.max_batch), min(profile.opt, graph.max_batch),
                      min(profile.max, graph.max_batch))
    identity = _identity(trt, graph, profile, device)
    path = engine_path(engines, graph.path, identity)
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    with torch.cuda.device(device):
        engine = load_or_build(path, identity,
                               build=lambda: build_plan(trt, graph, profile, timing_cache_path(engines, identity)),
                               deserialize=runtime.deserialize_cuda_engine, spec=graph.manifest["spec"])
        return _Engine(trt, runtime, engine, device), path


class TensorRTBackend:
    """Both backbones as TensorRT engines on one CUDA device; features come back float32 on the CPU."""

    def __init__(self, engines: Path, spec: FeatureSpec, precision: str, device: torch.device,
                 opt_batch: int = 12) -> None:
        self.device = device  # a CUDA device: RuntimeRequest.resolve refuses any other for tensorrt
        max_batch = 1 << 20  # bounded by each graph's exported maximum in load_engine
        profile = Profile(1, opt_batch, max_batch)
        self._video, self.video_engine = load_engine(engines, "video", spec, precision, profile, device)
        self._audio, self.audio_engine = load_engine(engines, "audio", spec, precision, profile, device)
        self.name = f"tensorrt-{precision}"

    def video(self, snippets: torch.Tensor) -> torch.Tensor:
        return self._video(snippets).cpu()

    def audio(self, segments: torch.Tensor) -> torch.Tensor:
        return self._audio(segments).cpu()


def build_engines(graphs: list[Path], device: torch.device, opt_batch: int = 12) -> list[Path]:
    """Build (or find up to date) the engines of exported ``graphs`` for this GPU; returns the plan paths.

    ``opt_batch`` should be what extract will run: ``--batch-size`` clips x 6 snippets (12 by default), since
    the profile is part of an engine's identity.
    """
    from avemo.spec import FeatureSpec

    plans = []
    for path in graphs:
        manifest = json.loads(path.with_suffix(".json").read_text())
        profile = Profile(1, opt_batch, int(manifest["max_batch"]))
        spec = FeatureSpec.from_json(manifest["spec"])
        _, plan = load_engine(path.parent, manifest["kind"], spec, manifest["precision"], profile, device)
        plans.append(plan)
    return plans
