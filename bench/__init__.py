"""Benchmarks of the console against PostgreSQL, run by ``make bench``.

``python -m bench --help`` lists the scenarios and options. Figures are
compared with baselines measured in the same run on the same machine, never
with fixed times in unit tests.
"""
