"""Backends that run lowered spaces: :mod:`nasc.backends.torch` (the op library, supernets,
structural construction) and :mod:`nasc.backends.triton` (fused GPU kernels and their dispatch)."""
