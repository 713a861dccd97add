"""Measurement (S54, conv-efficiency): counting, timing, machine peaks, profiles with roofline and waterline, reports.

>>> from convzoo.profile import profile  # doctest: +SKIP
>>> report = profile(model, (1, 3, 224, 224), threads=2)  # doctest: +SKIP
>>> print(report.table()); report.write("out/")  # doctest: +SKIP
"""

from convzoo.profile.counting import LayerCount, ModelCount, count_layers, count_macs, register_macs, tensor_bytes
from convzoo.profile.machine import MachinePeaks, machine_peaks, measure_peaks
from convzoo.profile.profiler import LayerCost, Profile, profile
from convzoo.profile.report import write_report
from convzoo.profile.timing import Timing, interleaved, measure, use_threads

__all__ = [
    "LayerCost",
    "LayerCount",
    "MachinePeaks",
    "ModelCount",
    "Profile",
    "Timing",
    "count_layers",
    "count_macs",
    "interleaved",
    "machine_peaks",
    "measure",
    "measure_peaks",
    "profile",
    "register_macs",
    "tensor_bytes",
    "use_threads",
    "write_report",
]
