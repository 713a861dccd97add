"""``convzoo machine``: this machine's measured peaks (the roofs of every roofline), cached per thread count."""

from __future__ import annotations

import argparse
import json
import sys

from convzoo.commands._util import positive_int, table


def run_machine(args: argparse.Namespace) -> int:
    import torch

    from convzoo.profile.machine import fingerprint, machine_peaks, peaks_path

    threads = args.threads or torch.get_num_threads()
    path = peaks_path(threads, args.quick)
    if args.refresh or not path.is_file():
        print(f"measuring the peaks at {threads} threads (a few seconds) ...", file=sys.stderr)
    peaks = machine_peaks(threads, refresh=args.refresh, quick=args.quick)
    facts = fingerprint(peaks.threads)
    if args.json:
        print(json.dumps({**peaks.to_dict(), "ridge": peaks.ridge, "cache": str(path), "fingerprint": facts}, indent=2))
        return 0
    bf16 = f"{peaks.bf16_gflops:.1f} GFLOP/s" if peaks.bf16_gflops is not None else "not native on this CPU"
    rows = [
        ("cpu", f"{peaks.cpu} ({facts['vendor']} {facts['cpu_id']})".replace(" ()", "")),
        ("isa", f"{' '.join(facts['isa']) or '-'} (from {facts['isa_source']}); ATen {facts['cpu_capability']}"),
        ("cpus", f"{facts['usable_cpus']} usable of {facts['logical_cpus']}"),
        ("threads", peaks.threads),
        ("torch", peaks.torch_version),
        ("oneDNN", facts["onednn"] or "not built in"),
        ("fp32 compute roof", f"{peaks.fp32_gflops:.1f} GFLOP/s"),
        ("bf16 compute roof", bf16),
        *((kernel, f"{rate:.1f} GFLOP/s") for kernel, rate in peaks.kernels.items()),
        ("copy bandwidth", f"{peaks.copy_gbps:.1f} GB/s (read + write)"),
        ("ridge point", f"{peaks.ridge:.1f} FLOP/byte (fp32)"),
        ("measured", f"{peaks.measured_at}{' (quick sizes)' if peaks.quick else ''}"),
        ("cache", str(path)),
    ]
    print(table(("peak", "value"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    machine = sub.add_parser("machine", help="this machine's measured compute and bandwidth peaks (cached)")
    machine.add_argument("--threads", type=positive_int, default=None, help="intra-op threads (default: torch's)")
    machine.add_argument("--refresh", action="store_true", help="measure again and replace the cached peaks")
    machine.add_argument("--quick", action="store_true", help="tiny sizes, a fraction of a second (not real peaks)")
    machine.add_argument("--json", action="store_true", help="print JSON")
    machine.set_defaults(run=run_machine)
