"""The torch runtime: PyTorch eager (channels-last), optionally compiled or replayed as CUDA graphs."""

from __future__ import annotations

import copy
import warnings

import torch

from avemo.engines.backbones import AudioFeatures, VideoFeatures


TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


_warned_bf16: list[bool] = []


def _warn_if_bf16_emulated() -> None:
    """Once per process: bf16 on a CPU without AVX512-BF16/AMX runs emulated, several times slower than fp32."""
    from avemo.machine import BF16_EMULATED, native_bf16

    if not native_bf16() and not _warned_bf16:
        _warned_bf16.append(True)
        warnings.warn(f"--precision bf16: {BF16_EMULATED}; use --precision fp32 here", UserWarning, stacklevel=3)


class _CudaGraphed:
    """Replays one captured CUDA graph per batch shape: launching a 3D ResNet's ~300 kernels costs more CPU
    time than small batches take on a fast GPU. Inputs are copied into the captured buffer; outputs are cloned
    out of it, since the next replay overwrites them."""

    def __init__(self, net: torch.nn.Module) -> None:
        self.net = net
        # One memory pool for all shapes: replays run one at a time and outputs are cloned at once, so the
        # graphs may reuse each other's intermediate memory instead of each keeping a full set.
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[tuple[tuple[int, ...], torch.dtype], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), x.dtype)
        if key not in self.graphs:
            static_in = x.clone()
            side = torch.cuda.Stream(x.device)
            side.wait_stream(torch.cuda.current_stream(x.device))
            with torch.cuda.stream(side):  # warm-up outside the capture, as CUDA graphs require
                for _ in range(2):
                    self.net(static_in)
            torch.cuda.current_stream(x.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: extract prepares the next batch on the GPU in another thread meanwhile.
            with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
                static_out = self.net(static_in)
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.clone()


class TorchBackend:
    """PyTorch in eval and inference mode; batches larger than ``max_batch`` are split.

    Weights are kept channels-last: oneDNN's 3D convolutions run faster that way on a CPU
    (benchmarks/RESULTS.md), with the same results up to float rounding; cuDNN's tensor-core kernels want the
    same layout. ``precision`` fp16 or bf16 casts weights and inputs (fp16 only on CUDA: CPUs lack fast fp16
    3D convolutions); ``compile`` runs the nets through ``torch.compile``; ``cuda_graphs`` replays captured
    CUDA graphs per batch shape. The options are checked by :meth:`avemo.engines.runtime.RuntimeRequest.resolve`,
    through which extract, predict and doctor build this backend.
    """

    def __init__(self, video: VideoFeatures, audio: AudioFeatures, device: torch.device, max_batch: int = 64,
                 precision: str = "fp32", compile: bool = False, cuda_graphs: bool = False) -> None:
        if precision == "bf16" and device.type == "cpu":
            _warn_if_bf16_emulated()
        self.device = device
        self.max_batch = max_batch
        self.dtype = TORCH_DTYPES[precision]
        if self.dtype != torch.float32 or next(video.parameters()).device != device:
            # Module.to works in place; the caller's nets stay as they are.
            video, audio = copy.deepcopy(video), copy.deepcopy(audio)
        self.video_net = self._prepare(video.to(device, self.dtype, memory_format=torch.channels_last_3d), compile, cuda_graphs)
        self.audio_net = self._prepare(audio.to(device, self.dtype, memory_format=torch.channels_last), compile, cuda_graphs)
        tags = [precision] + (["compiled"] if compile else []) + (["cuda-graphs"] if cuda_graphs else [])
        self.name = f"torch-{'-'.join(tags)}"

    @staticmethod
    def _prepare(net: torch.nn.Module, compile: bool, cuda_graphs: bool) -> torch.nn.Module:
        net = net.eval()
        if compile:
            net = torch.compile(net, dynamic=False)
        return _CudaGraphed(net) if cuda_graphs else net

    def _run(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            outs = []
            for chunk in x.split(self.max_batch):
                chunk = chunk.to(self.device, non_blocking=True)
                if chunk.is_floating_point():
                    chunk = chunk.to(self.dtype)
                outs.append(net(chunk).float().cpu())
        return torch.cat(outs)

    def video(self, snippets: torch.Tensor) -> torch.Tensor:
        return self._run(self.video_net, snippets)

    def audio(self, segments: torch.Tensor) -> torch.Tensor:
        return self._run(self.audio_net, segments)
