"""Benchmark suites of ``convzoo bench``: one module per suite, each registered in ``convzoo.registry.SUITES``.

A suite is a function ``cases(quick=False, batch=None) -> list[convzoo.profile.bench.Case]``; the harness in
:mod:`convzoo.profile.bench` times each case's pair interleaved. Every public module of this package is imported
here, so adding a suite is adding a file. Shapes shared by suites live in :mod:`convzoo.benchmarks._shapes`.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
