"""Every module of the source tree imports from the rtfast this interpreter sees.

Run against an installed wheel (CI sets RTFAST_TEST_INSTALLED=1), a module or
subpackage left out of the wheel fails here, and so does a run that silently
imports the source folder instead of what was installed. Also runs as a plain
script: `python tests/test_installed.py` (no pytest needed).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def source_modules() -> list[str]:
    """rtfast/**/*.py and src/*.pyx (-> rtfast._name), as module names."""
    names = []
    for path in sorted((ROOT / "rtfast").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    names += [f"rtfast._{p.stem}" for p in sorted((ROOT / "src").glob("*.pyx"))]
    return names


def installed_only() -> bool:
    return os.environ.get("RTFAST_TEST_INSTALLED", "") not in ("", "0")


def site_dirs() -> list[Path]:
    return [Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")]


def test_the_source_tree_has_the_modules_we_expect():
    names = source_modules()
    # Guards the walk itself: a subpackage and a compiled module must be in it.
    assert "rtfast.bridge.carriers.twilio" in names and "rtfast._wsframe" in names and "rtfast.bridge.server" in names


def test_every_module_imports():
    missing = []
    for name in source_modules():
        if name.endswith("__main__"):
            # Importing it would run the CLI: finding it is enough.
            if importlib.util.find_spec(name) is None:
                missing.append(name)
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name}: {exc}")
    assert not missing, "modules that do not import:\n  " + "\n  ".join(missing)


def test_rtfast_comes_from_the_installed_distribution():
    if not installed_only():
        return  # a developer's run against the checkout (editable or PYTHONPATH)
    import rtfast

    where = Path(rtfast.__file__).resolve().parent
    assert where != ROOT / "rtfast", f"rtfast imported from the checkout's source folder: {where}"
    assert any(where.parent == d for d in site_dirs()), f"rtfast not from site-packages: {where}"
    for name in source_modules():
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin and Path(spec.origin).resolve().is_relative_to(where), name


if __name__ == "__main__":
    for test in (test_the_source_tree_has_the_modules_we_expect, test_every_module_imports,
                 test_rtfast_comes_from_the_installed_distribution):
        test()
    print(f"{len(source_modules())} modules import from {Path(importlib.import_module('rtfast').__file__).parent}")
