"""From spaces to PyTorch modules: ``nasc.instantiate``.

>>> import nasc
>>> space = nasc.load("nas_bench_201", N=1)
>>> net = nasc.instantiate(space, space.sample(0))
>>> "import nasc" in net.code
False
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import fx

from nasc.architecture import Architecture
from nasc.backends.torch.library import OpLibrary
from nasc.dsl.diagnostics import NasError
from nasc.ir.passes.align import insert_alignment
from nasc.ir.passes.drop_path import elide_drop_path
from nasc.lowering.fx import lower
from nasc.methods import compile_recipes
from nasc.methods import get as get_method
from nasc.space import Space


def instantiate(
    space: Space,
    arch: Mapping[str, Any] | Architecture | None = None,
    weights: Any = None,
    *,
    library: OpLibrary | None = None,
    alignment: str = "dcnas",
    device: torch.device | str | None = None,
) -> fx.GraphModule:
    """The discrete network of ``arch`` (or of a choice-free ``space``) as an fx GraphModule,
    built and initialised on ``device`` (default: PyTorch's default device).

    Align nodes are lowered with their policy (``alignment`` when they name none). With
    ``weights=supernet`` the network is the supernet's own graph resolved under ``arch``, built
    with the supernet's settings and inheriting the chosen paths' weights, so it computes
    exactly what ``supernet.fix(arch)`` computes.
    """
    if weights is not None:
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return _inherit(space, arch, weights, library)
    if arch is None:
        if space.specs:
            raise NasError(f"space {space.name!r} has choices; give an architecture")
        resolved = space
    else:
        resolved = space.resolve(arch)
    check_implemented(resolved, library)
    g = elide_drop_path(insert_alignment(resolved.graph, policy=alignment))
    with torch.device(device) if device is not None else contextlib.nullcontext():
        return lower(g, library=library, name=space.name)


def check_implemented(space: Space, library: OpLibrary | None = None) -> None:
    """Every op of ``space`` has a PyTorch implementation in ``library``; else the user's error,
    located at the op's first use (an op declared in ``.nas`` that nobody implemented)."""
    from nasc.backends.torch.library import default_library
    from nasc.ir.nodes import Op

    library = library or default_library()
    for rec in space.graph.nodes_of(Op):
        if rec.op not in library:
            decl = space.op_decls.get(rec.op)
            where = f" (declared at {decl.loc})" if decl is not None and decl.loc else ""
            raise NasError(f"op {rec.op!r}{where} has no PyTorch implementation; implement it "
                           "and pass it with library=OpLibrary.extended({name: builder}), or "
                           "use an op of the standard library", rec.loc)


def _inherit(space: Space, arch, supernet: Any, library: OpLibrary | None) -> fx.GraphModule:
    """The supernet's graph resolved under ``arch``, with the chosen paths' weights."""
    from nasc.backends.torch.batched import KernelBatch
    from nasc.backends.torch.library import default_library
    from nasc.backends.torch.supernet import Supernet
    from nasc.ir.nodes import Op
    from nasc.ir.resolve import resolve_graph

    if not isinstance(supernet, Supernet):
        raise TypeError("weights= takes a supernet made by nasc.compile")
    if arch is None:
        raise NasError("weights= needs the architecture to take from the supernet")
    decisions = dict(space.canonical(arch))
    provenance: dict[int, int] = {}
    g = resolve_graph(supernet.graph, decisions, provenance=provenance)
    kept = elide_drop_path(g, mapping := {})
    provenance = {mapping[n]: p for n, p in provenance.items() if n in mapping}
    g = kept
    names: dict[int, str] = {}
    net = lower(g, library=library or default_library(), affine=supernet.affine,
                search=supernet.search, name=space.name, module_names=names)
    for rec in g.nodes_of(Op):
        key = str(provenance[rec.id])
        if key in supernet.ops:  # (a chosen zero candidate has no module, and no weights)
            src = supernet.ops[key]  # a kernel-size batch gives the chosen candidate's weights
            state = (src.candidate_state(dict(rec.params)) if isinstance(src, KernelBatch)
                     else src.state_dict())
            getattr(net, names[rec.id]).load_state_dict(state)
    return net


#: Each method's recipe: the passes it runs and their settings (overridable by options); the
#: records themselves, with the rest of what a method is, are :data:`nasc.methods.REGISTRY`.
METHODS: dict[str, dict[str, Any]] = compile_recipes()

_OPTIONS = {"weighting", "zero", "edge_weights", "tau", "hard", "partial_channels",
            "fixed_mask", "sampling", "paths", "inputs", "alignment", "seed", "affine",
            "channels_last", "device", "importance", "eps", "batch_kernels", "derive",
            "fuse_bn_tail"}


def _config(method: str, options: dict[str, Any]) -> dict[str, Any]:
    recipe = get_method(method, supernet=True).compile
    unknown = set(options) - _OPTIONS
    if unknown:
        known = ", ".join(sorted(_OPTIONS))
        raise NasError(f"unknown option {sorted(unknown)[0]!r}; known: {known}")
    return {**recipe, **options}


def method_pipeline(method: str = "darts", **options: Any) -> list:
    """The passes ``nasc.compile`` runs for ``method`` with ``options`` (see ``compile``)."""
    from nasc.ir.passes import registered

    cfg = _config(method, options)
    pipeline = [
        registered("insert_alignment", policy=cfg.get("alignment", "dcnas")),
        registered("relax", weighting=cfg["weighting"], tau=cfg.get("tau", 1.0),
                   hard=cfg.get("hard", False), zero=cfg["zero"],
                   edge_weights=cfg["edge_weights"]),
    ]
    if cfg.get("importance"):  # HR-NAS search units relaxed with importance factors
        pipeline.append(registered("importance", eps=cfg.get("eps", 1e-3)))
    if cfg.get("partial_channels", 1) > 1:  # before CSE: each mixture slices its input
        pipeline.append(registered("partial_channels", k=cfg["partial_channels"],
                                   fixed=cfg.get("fixed_mask", False)))
    pipeline.append(registered("cse"))
    if cfg.get("sampling") or cfg.get("inputs"):
        pipeline.append(registered("sample", ops=cfg.get("sampling"),
                                   paths=cfg.get("paths", 1), inputs=cfg.get("inputs", 0),
                                   tau=cfg.get("tau", 1.0)))
    if cfg.get("batch_kernels"):  # opt-in: slower on the CPU (bench/RESULTS.md)
        pipeline.append(registered("batch_kernels"))
    return pipeline


def compile(  # noqa: A001 - the name users expect: nasc.compile(space, method=...)
    space: Space,
    method: str = "darts",
    *,
    library: OpLibrary | None = None,
    passes: list | None = None,
    **options: Any,
):
    """A supernet of ``space`` following a paper's recipe (``METHODS``, the records of
    :mod:`nasc.methods`), options overriding it.

    Options: ``weighting`` (softmax|gumbel), ``tau``, ``hard``, ``zero``, ``edge_weights``
    (None|inputs|outgoing), ``partial_channels=K``, ``fixed_mask``, ``sampling``
    (uniform|binary_gate|multinomial), ``paths=n``, ``inputs=n`` (sampled inputs per input
    choice), ``alignment`` (default policy for align nodes), ``seed`` (initial architecture
    parameters), ``affine`` (BN inside cells; DARTS-family methods default to False),
    ``channels_last`` (NHWC memory layout for the candidates, default True), ``device``
    (where the weights are allocated and initialised, default the CPU: on a GPU a large
    supernet initialises in a fraction of the CPU's time), ``derive`` (how ``net.derive()``
    decodes: auto|viterbi|bfs, see :func:`nasc.ir.derive.derive`), ``fuse_bn_tail`` (one
    autograd function for a mixture's affine-free BN tails and its weighted sum, recomputing
    the BN outputs in backward: less memory, a little more time; default True, False for
    pc-darts).
    ``importance`` and ``eps`` (HR-NAS: relax search units with importance factors, masked at
    ``|factor| <= eps``; see :mod:`nasc.search.hrnas` for the penalty, derivation and shrinking).
    ``batch_kernels=True`` runs the candidates of a mixture that read one tensor and differ
    only in kernel size as one op (:mod:`nasc.ir.passes.batch`; off by default: slower on the
    CPU, see bench/RESULTS.md).
    ``passes=[...]`` replaces the pipeline with registered passes or ``Pass`` objects.
    """
    import torch

    from nasc.backends.torch.library import default_library
    from nasc.backends.torch.supernet import Supernet
    from nasc.ir.passes import PassManager, registered

    cfg = _config(method, options)
    check_implemented(space, library)
    pipeline = method_pipeline(method, **options) if passes is None else [
        registered(p) if isinstance(p, str) else p for p in passes]
    if passes is not None and not any(
            getattr(p, "name", "") == "insert_alignment" for p in pipeline):
        pipeline.insert(0, registered("insert_alignment"))
    darts_family = get_method(method, supernet=True).darts_family
    g = PassManager(pipeline).run(space.graph)
    if "seed" in cfg:
        torch.manual_seed(cfg["seed"])
    net = Supernet(g, library or default_library(), affine=cfg.get("affine", not darts_family),
                   search=darts_family, name=space.name,
                   channels_last=cfg.get("channels_last", True), device=cfg.get("device"),
                   fuse_bn_tail=cfg.get("fuse_bn_tail", True))
    net.method = method
    net.derivation = cfg.get("derive", "auto")
    net.space = space
    return net
