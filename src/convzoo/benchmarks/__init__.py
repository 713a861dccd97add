"""Benchmark suites of ``convzoo bench``: one module per suite, each registered in ``convzoo.registry.SUITES``.

A suite is a function ``cases(quick=False, batch=None) -> list[convzoo.profile.bench.Case]``; the harness in
:mod:`convzoo.profile.bench` times each case's pair interleaved. ``convzoo.registry.SUITES`` imports every public
module of this package on its first lookup (not ``import convzoo``), so adding a suite is adding a file. Shapes
shared by suites live in :mod:`convzoo.benchmarks._shapes`.
"""
