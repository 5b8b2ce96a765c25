"""Triton kernels for supernets: the fused mixture (with and without affine-free BN tails), the
partial-channel merge of PC-DARTS / DCNAS and the weighted input aggregation, each an
``autograd.Function``; :mod:`nasc.backends.triton.dispatch` picks them or the torch path
(``NASC_KERNELS=auto|triton|torch``, read at call time).

The kernel modules import ``triton`` and are imported lazily by the dispatch: triton reads
``TRITON_INTERPRET`` when a kernel is *defined*, so on a CPU the variable must be set before
the first kernel call.
"""
