"""Machine peaks, measured on this machine and cached: the roofs of the roofline (S54).

- compute: the best fp32 GFLOP/s of two FMA-bound kernels, square matmuls of side 512 to 2048 (``2 n³`` FLOPs
  each, through torch's BLAS) and dense 3×3 convolutions with 128 and 256 channels (through oneDNN), and the same
  in bf16 where the CPU has native bf16 arithmetic (AVX512-BF16, AMX or Arm BF16; emulated bf16 is no peak).
  Both are measured because on some CPUs only one library reaches the widest vector units (MKL's sgemm runs AVX2
  code on AMD CPUs, at half of what oneDNN's AVX-512 convolutions reach), and a roof that a kernel passes is no
  roof; each kernel's rate is kept in ``kernels``;
- bandwidth: the best GB/s of a large tensor copy, counting the read and the write (``2 · bytes``) over buffers
  much larger than the caches, so it is the memory bandwidth.

The best sample rather than the median is the peak: a roof is what the machine reached, not what it usually
does. Peaks depend on the thread count, so they are measured and cached per (CPU model, threads, torch version),
as JSON in the user cache directory (:func:`cache_dir`), written atomically. ``quick=True`` measures tiny sizes in
a fraction of a second (for tests; its copy fits in cache, so its bandwidth is not the memory's) and is cached
apart from the full measurement.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from convzoo.core.files import atomic_write_text
from convzoo.profile.timing import measure, use_threads

__all__ = [
    "ISA_FLAGS",
    "MachinePeaks",
    "cache_dir",
    "cpu_name",
    "fingerprint",
    "fingerprint_line",
    "machine_peaks",
    "measure_peaks",
    "native_bf16",
    "onednn_version",
    "peaks_path",
]

# matmul (side, repeats) and 3×3 conv (channels, side, repeats): the best of a few sizes, small ones repeated more so
# that on a shared machine some sample still lands in a quiet moment; the copy is 128 MiB each way (2^25 fp32).
_FULL = {
    "matmul": ((512, 40), (1024, 12), (2048, 4)),
    "conv": ((128, 28, 30), (256, 32, 20)),
    "copy_elements": 1 << 25,
    "copy_repeats": 12,
}
_QUICK = {"matmul": ((64, 3), (128, 3)), "conv": ((32, 8, 3),), "copy_elements": 1 << 16, "copy_repeats": 3}
_FORMAT = "v2"  # in the cache file name: a change of what is measured starts a new cache


@dataclass(frozen=True)
class MachinePeaks:
    """Measured roofs of this machine at ``threads`` intra-op threads (GFLOP/s and GB/s are 1e9 per second)."""

    cpu: str
    threads: int
    torch_version: str
    fp32_gflops: float
    bf16_gflops: float | None
    copy_gbps: float
    quick: bool = False
    measured_at: str = ""
    kernels: dict[str, float] = field(default_factory=dict)

    @property
    def ridge(self) -> float:
        """fp32 arithmetic intensity (FLOP/byte) where the compute roof meets the bandwidth roof."""
        return self.fp32_gflops / self.copy_gbps

    def peak_gflops(self, dtype: torch.dtype = torch.float32) -> float:
        """The compute roof for ``dtype``: bf16's where measured, else fp32's."""
        if dtype == torch.bfloat16 and self.bf16_gflops is not None:
            return self.bf16_gflops
        return self.fp32_gflops

    def roofline_ms(self, flops: int, bytes_moved: int, dtype: torch.dtype = torch.float32) -> float:
        """The least time the roofs allow: ``max(flops / peak, bytes / bandwidth)``, in milliseconds."""
        return max(flops / self.peak_gflops(dtype), bytes_moved / self.copy_gbps) / 1e6

    def bound(self, flops: int, bytes_moved: int, dtype: torch.dtype = torch.float32) -> str:
        """``"compute"`` or ``"memory"``: which roof sets :meth:`roofline_ms` (``"none"`` when nothing is done)."""
        if flops == 0 and bytes_moved == 0:
            return "none"
        return "compute" if flops / self.peak_gflops(dtype) >= bytes_moved / self.copy_gbps else "memory"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> MachinePeaks:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def cache_dir() -> Path:
    """convzoo's cache directory: ``$CONVZOO_CACHE_DIR``, else the platform's user cache directory + ``convzoo``."""
    if os.environ.get("CONVZOO_CACHE_DIR"):
        return Path(os.environ["CONVZOO_CACHE_DIR"])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "convzoo"


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_name() -> str:
    """The CPU model as the OS reports it (``model name`` in /proc/cpuinfo, else the platform's name)."""
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or platform.machine() or "unknown cpu"


# The ISA extensions that change which kernels oneDNN, MKL and ATen run (and so the figures): /proc/cpuinfo names.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def _isa() -> tuple[list[str], str]:
    """The :data:`ISA_FLAGS` this CPU has and where that was read: /proc/cpuinfo, else torch's capability probe."""
    flags = set((_cpuinfo().get("flags") or "").split())
    if flags:
        return [flag for flag in ISA_FLAGS if flag in flags], "/proc/cpuinfo"
    probes = {
        "avx512_vnni": "_is_avx512_vnni_supported",
        "avx512_bf16": "_is_avx512_bf16_supported",
        "amx_tile": "_is_amx_tile_supported",
    }
    capability = torch.backends.cpu.get_cpu_capability()  # "DEFAULT", "AVX2", "AVX512", ...
    found = {"avx2": capability in ("AVX2", "AVX512"), "avx512f": capability == "AVX512"}
    found |= {flag: bool(getattr(torch.cpu, probe, lambda: False)()) for flag, probe in probes.items()}
    return [flag for flag in ISA_FLAGS if found.get(flag)], "torch.backends.cpu.get_cpu_capability"


def onednn_version() -> str | None:
    """oneDNN's version as torch was built with it (``torch.__config__.show()``), ``None`` without oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    found = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([0-9][0-9.]*)", torch.__config__.show())
    return found.group(1) if found else "unknown version"


_CPU_ID = ("cpu family", "model", "stepping")  # /proc/cpuinfo keys: a generic "model name" (VMs) still tells apart


def fingerprint(threads: int | None = None) -> dict:
    """What produced a figure: CPU model and vendor, the ISA extensions that pick kernels, cores, torch, oneDNN and
    the intra-op threads (``threads``, default the count in force). The one statement every measurement carries
    (``convzoo bench``, ``convzoo profile``, ``convzoo machine`` and the study).

    >>> sorted(fingerprint(1))  # doctest: +NORMALIZE_WHITESPACE
    ['cpu', 'cpu_capability', 'cpu_id', 'isa', 'isa_source', 'logical_cpus', 'onednn', 'platform', 'python', 'threads',
     'torch', 'usable_cpus', 'vendor']
    """
    info = _cpuinfo()
    isa, source = _isa()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_name(),
        "vendor": info.get("vendor_id") or platform.machine() or "unknown",
        "cpu_id": " ".join(f"{key.split()[-1]} {info[key]}" for key in _CPU_ID if key in info),
        "isa": isa,
        "isa_source": source,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "torch": torch.__version__,
        "onednn": onednn_version(),
        "threads": torch.get_num_threads() if threads is None else threads,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()}",
    }


def fingerprint_line(facts: dict) -> str:
    """A :func:`fingerprint` as one line for a report header."""
    isa = " ".join(facts["isa"]) or "none of " + "/".join(ISA_FLAGS[:3])
    onednn = f"oneDNN {facts['onednn']}" if facts["onednn"] else "no oneDNN"
    return (
        f"{facts['cpu']} ({facts['vendor']} {facts['cpu_id']}; {isa}; ATen {facts['cpu_capability']}), "
        f"{facts['usable_cpus']}/{facts['logical_cpus']} cpus usable, {facts['threads']} threads, "
        f"torch {facts['torch']}, {onednn}"
    )


def native_bf16() -> bool:
    """Whether the CPU computes in bf16 natively (x86 AVX512-BF16 or AMX-BF16, Arm BF16)."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if flags:
        return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def peaks_path(threads: int, quick: bool = False) -> Path:
    """The cache file of the peaks for this CPU model, ``threads`` and torch version."""
    key = f"{cpu_name()}-{threads}t-torch{torch.__version__}-{_FORMAT}" + ("-quick" if quick else "")
    return cache_dir() / "machine" / (re.sub(r"[^A-Za-z0-9.]+", "-", key).strip("-") + ".json")


def _matmul_gflops(sizes: tuple[tuple[int, int], ...], dtype: torch.dtype) -> float:
    """The best GFLOP/s of square matmuls ``(n, n) @ (n, n)`` over ``(n, repeats)`` in ``sizes``."""
    best = 0.0
    for size, repeats in sizes:
        a = torch.randn(size, size).to(dtype)
        b = torch.randn(size, size).to(dtype)
        out = torch.empty(size, size, dtype=dtype)
        timing = measure(lambda a=a, b=b, out=out: torch.mm(a, b, out=out), repeats=repeats, warmup=2)
        best = max(best, 2 * size**3 / (timing.min_ms * 1e6))
    return best


def _conv_gflops(sizes: tuple[tuple[int, int, int], ...], dtype: torch.dtype) -> float:
    """The best GFLOP/s of dense 3×3 convolutions ``C → C`` on ``(1, C, S, S)`` over ``(C, S, repeats)``."""
    best = 0.0
    for channels, side, repeats in sizes:
        x = torch.randn(1, channels, side, side).to(dtype)
        weight = torch.randn(channels, channels, 3, 3).to(dtype)
        timing = measure(lambda x=x, w=weight: F.conv2d(x, w, padding=1), repeats=repeats, warmup=2)
        best = max(best, 2 * 9 * channels**2 * side**2 / (timing.min_ms * 1e6))
    return best


def _copy_gbps(elements: int, repeats: int) -> float:
    source = torch.randn(elements)
    target = torch.empty_like(source)
    timing = measure(lambda: target.copy_(source), repeats=repeats, warmup=2)
    return 2 * source.numel() * source.element_size() / (timing.min_ms * 1e6)


def measure_peaks(threads: int | None = None, *, quick: bool = False) -> MachinePeaks:
    """Measure the peaks now (a few seconds; ``quick``: a fraction of one) at ``threads`` (default: current)."""
    sizes = _QUICK if quick else _FULL
    kernels = {}
    with use_threads(threads) as used, torch.no_grad():
        for dtype in (torch.float32, torch.bfloat16) if native_bf16() else (torch.float32,):
            name = str(dtype).removeprefix("torch.").replace("float32", "fp32").replace("bfloat16", "bf16")
            kernels[f"{name} matmul"] = _matmul_gflops(sizes["matmul"], dtype)
            kernels[f"{name} conv3x3"] = _conv_gflops(sizes["conv"], dtype)
        copy = _copy_gbps(sizes["copy_elements"], sizes["copy_repeats"])
    bf16 = max(kernels["bf16 matmul"], kernels["bf16 conv3x3"]) if "bf16 matmul" in kernels else None
    return MachinePeaks(
        cpu=cpu_name(),
        threads=used,
        torch_version=torch.__version__,
        fp32_gflops=max(kernels["fp32 matmul"], kernels["fp32 conv3x3"]),
        bf16_gflops=bf16,
        copy_gbps=copy,
        quick=quick,
        measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        kernels=kernels,
    )


def machine_peaks(threads: int | None = None, *, refresh: bool = False, quick: bool = False) -> MachinePeaks:
    """The cached peaks for ``threads`` (default: current), measured and cached first when absent or ``refresh``.

    An unreadable cache file is measured again and replaced.
    """
    threads = torch.get_num_threads() if threads is None else threads
    path = peaks_path(threads, quick)
    if not refresh and path.is_file():
        try:
            return MachinePeaks.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            pass
    peaks = measure_peaks(threads, quick=quick)
    atomic_write_text(path, json.dumps(peaks.to_dict(), indent=2) + "\n")
    return peaks
