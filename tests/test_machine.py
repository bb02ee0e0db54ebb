"""CPU features from /proc/cpuinfo (as oneDNN will use them) and thread sizing."""

import os

import pytest
import torch

from avemo.machine import configure_threads, cpu_features, free_cores

AVX512_BF16 = "fpu sse4_1 avx avx2 fma avx512f avx512bw avx512_bf16"


@pytest.fixture
def cpuinfo(tmp_path):
    def write(flags: str):
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC 9999\nflags\t\t: {flags}\n\n"
                        f"processor\t: 1\nmodel name\t: AMD EPYC 9999\nflags\t\t: {flags}\n")
        return path
    return write


def test_features_come_from_the_flags(cpuinfo):
    cpu = cpu_features(cpuinfo(AVX512_BF16), isa_cap="")
    assert (cpu.model, cpu.avx2, cpu.avx512f, cpu.avx512_bf16, cpu.amx_bf16) == ("AMD EPYC 9999", True, True, True, False)
    assert cpu.native_bf16
    assert not cpu_features(cpuinfo("sse4_1 avx avx2 fma"), isa_cap="").native_bf16
    assert cpu_features(cpuinfo("avx2 avx512f amx_bf16 amx_tile"), isa_cap="").native_bf16  # AMX alone counts


def test_oneDNN_isa_cap_hides_what_oneDNN_will_not_use(cpuinfo):
    capped = cpu_features(cpuinfo(AVX512_BF16), isa_cap="avx2")
    assert capped.avx2 and not capped.avx512f and not capped.native_bf16
    assert "capped by ONEDNN_MAX_CPU_ISA=AVX2" in capped.describe() and "AVX-512F no" in capped.describe()
    core = cpu_features(cpuinfo(AVX512_BF16), isa_cap="AVX512_CORE")
    assert core.avx512f and not core.native_bf16


def test_environment_cap_is_honoured(cpuinfo, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu_features(cpuinfo(AVX512_BF16)).native_bf16


def test_threads_follow_the_affinity_mask_or_the_override(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert free_cores() == len(os.sched_getaffinity(0))
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert configure_threads() == free_cores()
        assert configure_threads(1) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # e.g. pytest-xdist splitting the cores between workers
        assert configure_threads() == 1
        assert os.environ["OMP_WAIT_POLICY"]  # set for the OpenMP runtime of any process avemo starts
    finally:
        torch.set_num_threads(before)


def test_extract_decodes_in_the_main_process_where_the_backbones_take_every_core(monkeypatch):
    import os

    from avemo.machine import decode_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert decode_workers("cpu") == 0  # two cores: both run the backbones
    assert decode_workers("cuda") == 1  # the GPU runs them: a process decodes alongside
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert decode_workers("cpu") == 1
