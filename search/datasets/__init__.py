"""Data sets read from their official files, and their batches for the run loop.

``cifar10``, ``cifar100`` (:mod:`.cifar`: the python archives, downloaded with their MD5 checked
when absent), ``imagenet`` (:mod:`.imagenet`: ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``, a
class subset or a fraction for the papers' proxies) and ``cityscapes`` (:mod:`.cityscapes`:
``leftImg8bit/`` and ``gtFine/*_labelIds.png`` mapped to the 19 train ids). All of them live in
the data directory (:func:`data_dir`). The papers' augmentation is in :mod:`.augment`;
:func:`batches`, :func:`cycled` and :func:`evaluation` (:mod:`.stream`) give the run loop their
batches, streamed through DataLoader workers for the image folders.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nasc.dsl.diagnostics import NasError
from nasc.search.datasets.download import data_dir
from nasc.search.datasets.stream import accuracy, batches, cycled, evaluation


def _cifar10(root: Path, seed: int = 0, **options: Any):
    from nasc.search.datasets.cifar import cifar

    _no_options("cifar10", options)
    return cifar("cifar10", root, seed)


def _cifar100(root: Path, seed: int = 0, **options: Any):
    from nasc.search.datasets.cifar import cifar

    _no_options("cifar100", options)
    return cifar("cifar100", root, seed)


def _imagenet(root: Path, seed: int = 0, **options: Any):
    from nasc.search.datasets.imagenet import imagenet

    _known("imagenet", options, ("classes", "fraction", "size"))
    return imagenet(root, seed, **options)


def _cityscapes(root: Path, seed: int = 0, **options: Any):
    from nasc.search.datasets.cityscapes import cityscapes

    _known("cityscapes", options, ("size", "crop"))
    return cityscapes(root, seed, **options)


def _no_options(name: str, options: dict[str, Any]) -> None:
    _known(name, options, ())


def _known(name: str, options: dict[str, Any], known: tuple[str, ...]) -> None:
    bad = sorted(set(options) - set(known))
    if bad:
        takes = f"takes {', '.join(known)}" if known else "takes no options"
        raise NasError(f"data: {name} has no option {bad[0]!r} ({name} {takes})")


#: name -> ``loader(root, seed, **options) -> Splits`` of the data sets read from files
FILES = {"cifar10": _cifar10, "cifar100": _cifar100, "imagenet": _imagenet,
         "cityscapes": _cityscapes}


def _value(text: str) -> Any:
    """``12`` -> 12, ``0.1`` -> 0.1, ``256x512`` -> (256, 512), ``a+b`` -> ["a", "b"]."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    parts = text.split("x")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return tuple(int(p) for p in parts)
    return text.split("+") if "+" in text else text


def parse_name(spec: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``imagenet,classes=100,fraction=0.1,size=64`` -> ("imagenet", {...}) (a data set's
    options in its name, for the command line's ``--data``).

    >>> parse_name("imagenet,classes=100,fraction=0.1,size=64", {})
    ('imagenet', {'classes': 100, 'fraction': 0.1, 'size': 64})
    >>> parse_name("cityscapes,size=512x1024", {})
    ('cityscapes', {'size': (512, 1024)})
    """
    name, *given = spec.split(",")
    out = dict(options)
    for item in given:
        key, eq, value = item.partition("=")
        if not eq or not key.strip().isidentifier() or not value.strip():
            raise NasError(f"data: {item!r} in {spec!r} is not NAME=VALUE (e.g. "
                           "imagenet,classes=100,fraction=0.1,size=64)")
        out[key.strip()] = _value(value.strip())
    return name.strip(), out


__all__ = ["FILES", "accuracy", "batches", "cycled", "data_dir", "evaluation", "parse_name"]
