"""Benchmarks of swmr-roi-ioc against the bounds of this machine and the references.

Run ``python -m benchmarks`` from the repository root; see ``benchmarks/README.md``.
"""
