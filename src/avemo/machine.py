"""What this CPU can do fast, and how many threads avemo may use on it.

Two facts decide avemo's CPU speed and were guessed wrong before (issue 12):

- **bfloat16 is fast only where the CPU has it natively** (AVX512-BF16 or AMX-BF16). Elsewhere oneDNN emulates
  it, several times slower than float32, so bf16 is never chosen or timed there.
- **Threads must fit the cores actually free to this process** (``os.sched_getaffinity``, not the machine's
  core count). Two processes that each start one OpenMP thread per core and spin-wait between parallel
  regions slow each other down far more than sharing alone explains; passive waiting stops that.

The CPU flags come from ``/proc/cpuinfo``. ``ONEDNN_MAX_CPU_ISA`` (oneDNN's own cap, used to emulate an older
CPU) is honoured: capped at AVX2, the CPU is reported as oneDNN will use it, without AVX-512 or native bf16.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# oneDNN's ISA names in ascending order; a cap at one of them hides the features of the later ones.
_ISA_ORDER = ["SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
              "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
              "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "DEFAULT", "ALL"]
# The first ISA level at which oneDNN uses each feature.
_FEATURE_ISA = {"avx2": "AVX2", "avx512f": "AVX512_CORE", "avx512_bf16": "AVX512_CORE_BF16",
                "amx_bf16": "AVX512_CORE_AMX"}


@dataclass(frozen=True)
class CpuFeatures:
    model: str
    avx2: bool
    avx512f: bool
    avx512_bf16: bool
    amx_bf16: bool
    isa_cap: str | None = None  # ONEDNN_MAX_CPU_ISA when it is set

    @property
    def native_bf16(self) -> bool:
        return self.avx512_bf16 or self.amx_bf16

    def describe(self) -> str:
        """One line for tables and benchmark records: the model and the features that decide speed."""
        names = [("AVX2", self.avx2), ("AVX-512F", self.avx512f), ("AVX512-BF16", self.avx512_bf16),
                 ("AMX-BF16", self.amx_bf16)]
        flags = ", ".join(f"{n} {'yes' if on else 'no'}" for n, on in names)
        cap = f"; capped by ONEDNN_MAX_CPU_ISA={self.isa_cap}" if self.isa_cap else ""
        return f"{self.model} ({flags}{cap})"


def _cpuinfo(path: Path) -> tuple[str, set[str]]:
    model, flags = "unknown CPU", set()
    try:
        text = path.read_text()
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo"), isa_cap: str | None = None) -> CpuFeatures:
    """The CPU's vector features as oneDNN will use them (``isa_cap`` defaults to ``$ONEDNN_MAX_CPU_ISA``)."""
    model, flags = _cpuinfo(cpuinfo)
    cap = (isa_cap if isa_cap is not None else os.environ.get("ONEDNN_MAX_CPU_ISA", "")).strip().upper() or None
    limit = _ISA_ORDER.index(cap) if cap in _ISA_ORDER else len(_ISA_ORDER)

    def has(flag: str) -> bool:
        return flag in flags and _ISA_ORDER.index(_FEATURE_ISA[flag]) <= limit

    return CpuFeatures(model=model, avx2=has("avx2"), avx512f=has("avx512f"), avx512_bf16=has("avx512_bf16"),
                       amx_bf16=has("amx_bf16"), isa_cap=cap)


def native_bf16() -> bool:
    """Whether bfloat16 runs natively on this CPU (as capped by ``ONEDNN_MAX_CPU_ISA``)."""
    return cpu_features().native_bf16


BF16_EMULATED = ("this CPU has no native bfloat16 (no AVX512-BF16 or AMX-BF16), so oneDNN emulates it, several "
                 "times slower than fp32")


def free_cores() -> int:
    """Cores this process may run on (its affinity mask: what taskset, cgroups cpusets and schedulers allow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def decode_workers(device_type: str) -> int:
    """Decoding processes for ``extract`` when the user names none: 0 (decode in the main process) for the
    backbones on a CPU of 2 cores or fewer, else 1. There the backbones keep both cores busy, so a decoding
    process only competes with them and costs its start-up (benchmarks/RESULTS.md: extraction end to end)."""
    return 0 if device_type == "cpu" and free_cores() <= 2 else 1


def prepare_environment() -> None:
    """Set the OpenMP waiting policy before torch is imported (the OpenMP runtime reads it once, at load).

    Spinning threads burn the cores another process (or our own decoding worker) needs; idle threads sleep
    instead. Values the user set are kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("KMP_BLOCKTIME", "0")  # the same for Intel's OpenMP, should torch be built with it
    os.environ.setdefault("OMP_NUM_THREADS", str(free_cores()))


def configure_threads(threads: int | None = None) -> int:
    """Size torch's thread pool to ``threads`` (default: ``OMP_NUM_THREADS``, else the cores free to this
    process); returns the count.

    Call before torch runs its first parallel region; :func:`prepare_environment` should have run before torch
    was imported.
    """
    prepare_environment()
    if not threads:  # OMP_NUM_THREADS as the user (or a test runner splitting the cores) set it, else the free cores
        try:
            threads = int(os.environ["OMP_NUM_THREADS"])
        except ValueError:
            threads = free_cores()
    n = max(1, threads)
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # avemo runs one op at a time; a second pool only competes
    except RuntimeError:  # already set, or parallel work already ran: keep what is there
        pass
    return torch.get_num_threads()
