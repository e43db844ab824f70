"""Import a compiled kernel, or say exactly how to build it (no Python fallback)."""

from __future__ import annotations

import importlib
from types import ModuleType

_HOW = (
    "rtfast's compiled kernels are not built. Install from the project root with "
    "`pip install .` (or `pip install -e \".[test]\"` for development); building needs "
    "a C compiler and the Python headers."
)


def load(name: str) -> ModuleType:
    try:
        return importlib.import_module(f"rtfast.{name}")
    except ImportError as exc:
        if exc.name not in (f"rtfast.{name}", None):
            raise
        raise ImportError(f"rtfast.{name} is missing: {_HOW}", name=f"rtfast.{name}") from exc
