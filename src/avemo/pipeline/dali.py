"""Video frames decoded, sampled, scaled and cropped by NVIDIA DALI: on the GPU's decoder, or on the CPU.

The frames to sample are chosen exactly as on the PyAV path (:func:`avemo.pipeline.video.sample_indices` on
the presentation times read by demuxing), so both paths show the backbones the same frames, up to decoder
rounding of the pixels (chroma upsampling and scaling filters differ). DALI decodes only the distinct frames
a clip needs, cuts the clip's crop box (:mod:`avemo.pipeline.face`: the face, the centred square, or the
whole frame; in coded pixels, as the PyAV path cuts it), scales it to ``size`` x ``size``, and restores the
sampled order (repeats included) with ``sequence_rearrange``. On a CUDA device the decoding runs on NVDEC
(DALI's ``mixed`` backend) and the frames reach torch as CUDA tensors without a trip through the host.

DALI's CPU decoder reads VP9 (and VP8) but not H.264: on the CPU this module is how the graph is tested,
not how RAVDESS is read. ``nvidia.dali`` is imported only when a decoder is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avemo.spec import VideoConfig

CPU_CODECS = frozenset({"vp9", "vp8"})  # what DALI's CPU video decoder reads


def dali_installed() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class FrameRequest:
    """One clip for DALI: its file's bytes, the frame indices (snippets, frames) to sample, and the geometry the
    PyAV path uses: frames scaled to ``scaled``, then ``region`` cut and scaled to the snippet size."""

    encoded: np.ndarray  # uint8 bytes of the whole file
    scaled: tuple[int, int]  # (width, height): VideoConfig.decode_size of the coded size
    index: np.ndarray  # (S, F) indices into the frames in presentation order
    # (x, y, width, height) in the scaled frames, one per snippet (avemo.pipeline.video.region of each snippet's
    # box: the same unless the crop follows a moving face; always of one size)
    regions: list[tuple[int, int, int, int]]


class DaliFrames:
    """Decodes batches of clips into snippets (B, S, 3, F, size, size) uint8 on ``device``."""

    def __init__(self, video: VideoConfig, device: torch.device, batch_size: int, threads: int = 2) -> None:
        self.video, self.device, self.batch_size, self.threads = video, device, batch_size, threads
        self.pipe = self._build()

    def _build(self):
        from nvidia.dali import fn, pipeline_def, types

        video, device = self.video, self.device
        gpu = device.type == "cuda"

        # Depth 1: each batch is fed, then run; deeper queues expect data fed ahead of time.
        @pipeline_def(batch_size=self.batch_size, num_threads=self.threads,
                      device_id=(device.index or 0) if gpu else None, prefetch_queue_depth=1)
        def graph():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
            order = fn.external_source(name="order", dtype=types.INT32, ndim=1)
            scaled = fn.external_source(name="scaled", dtype=types.FLOAT, ndim=1)
            extent = fn.external_source(name="extent", dtype=types.FLOAT, ndim=1)
            anchor = fn.external_source(name="anchor", dtype=types.FLOAT, ndim=1)
            # pad_mode "none": a frame index the stream does not have is an error (the clip fails), never a
            # silently black frame.
            v = fn.decoders.video(encoded, device="mixed" if gpu else "cpu", frames=frames, pad_mode="none")
            v = fn.resize(v, resize_x=scaled[0], resize_y=scaled[1])
            v = fn.crop(v, crop_w=extent[0], crop_h=extent[1], crop_pos_x=anchor[0], crop_pos_y=anchor[1])
            v = fn.resize(v, resize_x=video.size, resize_y=video.size)  # the centre crop is already at size
            return fn.sequence_rearrange(v, new_order=order)

        pipe = graph()
        pipe.build()
        return pipe

    def reset(self) -> None:
        """A fresh pipeline: after DALI fails on a clip, the old one cannot run again."""
        del self.pipe  # first, so that two pipelines never hold the decoder and GPU memory at once
        self.pipe = self._build()

    def _feeds(self, requests: list[FrameRequest]) -> dict[str, list[np.ndarray]]:
        feeds: dict[str, list[np.ndarray]] = {k: [] for k in ("encoded", "frames", "order", "scaled", "extent", "anchor")}
        for r in requests:
            unique, order = np.unique(r.index.reshape(-1), return_inverse=True)
            width, height = r.scaled
            x, y, w, h = r.regions[0]
            # DALI places the crop at round(pos * (frame - crop)); these positions land on x and y exactly.
            pos = [x / (width - w) if width > w else 0.5, y / (height - h) if height > h else 0.5]
            feeds["encoded"].append(r.encoded)
            feeds["frames"].append(unique.astype(np.int32))
            feeds["order"].append(order.reshape(-1).astype(np.int32))
            feeds["scaled"].append(np.array([width, height], np.float32))
            feeds["extent"].append(np.array([w, h], np.float32))
            feeds["anchor"].append(np.array(pos, np.float32))
        return feeds

    def __call__(self, requests: list[FrameRequest]) -> torch.Tensor:
        """Snippets of up to ``batch_size`` clips; raises ``RuntimeError`` (DALI's) if a clip cannot be decoded.

        DALI's crop takes one region per sample, not per frame: a clip whose crop follows a moving face is cut
        as one sample per snippet (its file is decoded once per snippet; only such clips pay for it).
        """
        if not 0 < len(requests) <= self.batch_size:
            raise ValueError(f"{len(requests)} clips for a decoder of batch size {self.batch_size}")
        out: list[torch.Tensor | None] = [None] * len(requests)
        still = [i for i, r in enumerate(requests) if len(set(r.regions)) == 1]
        if still:
            for i, snippets in zip(still, self._run([requests[i] for i in still])):
                out[i] = snippets
        for i, r in enumerate(requests):
            if out[i] is None:
                parts = [FrameRequest(r.encoded, r.scaled, r.index[s:s + 1], [area]) for s, area in enumerate(r.regions)]
                done = [self._run(parts[j:j + self.batch_size]) for j in range(0, len(parts), self.batch_size)]
                out[i] = torch.cat(done)[:, 0]  # (S, 3, F, size, size)
        return torch.stack(out)

    def _run(self, requests: list[FrameRequest]) -> torch.Tensor:
        """(B, S, 3, F, size, size) for requests of one snippet count, each cut at one region."""
        for name, data in self._feeds(requests).items():
            self.pipe.feed_input(name, data)
        (out,) = self.pipe.run()
        frames = self._to_torch(out.as_tensor())  # (B, S*F, size, size, 3); DALI reuses its buffer: copied
        s, f, size = requests[0].index.shape[0], self.video.frames, self.video.size
        return frames.view(len(requests), s, f, size, size, 3).permute(0, 1, 5, 2, 3, 4).contiguous()

    def _to_torch(self, tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return torch.from_numpy(np.array(tensor))
        from nvidia.dali.plugin.pytorch import feed_ndarray

        out = torch.empty(tensor.shape(), dtype=torch.uint8, device=self.device)
        feed_ndarray(tensor, out, cuda_stream=torch.cuda.current_stream(self.device))
        return out
