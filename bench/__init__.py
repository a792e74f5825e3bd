"""Benchmarks: ``python -m bench.run`` (``make bench``) and ``bench/batching.py``.

Not an installed package: run from the repository root with the ``bench``
extra installed (``make bench-deps``).
"""
