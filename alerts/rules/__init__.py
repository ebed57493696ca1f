"""Clinical alert rules as data (`catalog`) and the pure numpy/scipy kernels that evaluate them.

Everything under `alerts.rules` is a pure core (docs/architecture.md): no I/O, no clock; `now` is an
argument.
"""
