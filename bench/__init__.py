"""Benchmarks (`make bench`, `make bench-quick`): the machine's limits and the hub's figures P1-P4, measured in
one run on the local stack, printed as one table and written to bench/results/latest.json.

Benchmarks print figures against targets; they never assert them.
"""
