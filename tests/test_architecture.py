"""Architecture guards: a Qt-free core, a valid plugin manifest, small modules."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_sam2v"
CORE_MODULES = [
    "napari_sam2v",
    "napari_sam2v.io",
    "napari_sam2v.io.prompt_files",
    "napari_sam2v.engines",
    "napari_sam2v.engines.classic",
    "napari_sam2v.engines.sam2",
    "napari_sam2v.store",
    "napari_sam2v.store.pipeline",
    "napari_sam2v.analysis",
    "napari_sam2v.samples",
    "napari_sam2v.session",
    "napari_sam2v.cli.main",
]


def test_core_imports_without_qt_or_napari() -> None:
    """Importing the core with Qt and napari made unimportable must work."""
    code = textwrap.dedent(
        f"""
        import importlib, sys
        BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked in this test: {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        for mod in {CORE_MODULES!r}:
            importlib.import_module(mod)
        import napari_sam2v
        napari_sam2v.open_video, napari_sam2v.measure, napari_sam2v.track
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_import_is_cheap() -> None:
    """``import napari_sam2v`` does not pull torch, pandas or zarr."""
    code = (
        "import sys, napari_sam2v; "
        "print(sorted(m for m in ('torch', 'pandas', 'zarr', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_manifest_validates() -> None:
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_distribution("napari-sam2v")
    manifest.validate_imports()
    keys = {s.key for s in manifest.contributions.sample_data}
    assert keys == {"reef", "cells"}
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert "SAM 2 video tracker" in widgets


def test_manifest_is_the_root_file() -> None:
    """The package's napari.yaml is the repository's root manifest (shipped in the wheel)."""
    packaged = SRC / "napari.yaml"
    root = SRC.parents[1] / "napari.yaml"
    assert packaged.read_text() == root.read_text()


def test_modules_stay_small() -> None:
    """No module, in the package or the benchmarks, grows past 500 lines."""
    benchmarks = SRC.parents[1] / "benchmarks"
    too_long = {
        str(p): n
        for p in [*SRC.rglob("*.py"), *benchmarks.glob("*.py")]
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not too_long, too_long
