"""Backends that run lowered spaces (PyTorch); filled in by the backend issue."""
