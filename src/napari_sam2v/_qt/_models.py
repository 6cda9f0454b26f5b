"""Model and device choices of the tracker dock, filled from the SAM 2 model registry."""

from __future__ import annotations

import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from qtpy.QtCore import QObject, Signal

from napari_sam2v._qt._tracker_form import FRAMES_FORMAT
from napari_sam2v.errors import Sam2vError

__all__ = [
    "DownloadProgress",
    "available_devices",
    "download_size",
    "enable_engine_controls",
    "engine_choice",
    "show_engine_choice",
    "explain_model",
    "fill_models",
    "mark_devices",
]


def _describe(spec: Any) -> str:
    parts = [str(getattr(spec, "guidance", "") or "").rstrip(".")]
    size = getattr(spec, "download_mb", None) or getattr(spec, "size_mb", None)
    if size:
        parts.append(f"download about {float(size):.0f} MB")
    licence = getattr(spec, "license", None) or getattr(spec, "licence", None)
    if licence:
        parts.append(f"licence {licence}")
    return "; ".join(p for p in parts if p)


def enable_engine_controls(form: Any, *, busy: bool) -> None:
    """Enable the model, device and precision combos for SAM 2, appearance for classic."""
    sam2 = form.engine_combo.currentData() == "sam2"
    for widget in (form.model_combo, form.device_combo, form.precision_combo):
        widget.setEnabled(not busy and sam2)
    form.feature_combo.setEnabled(not busy and not sam2)


def fill_models(form: Any) -> None:
    """Fill the model combo of ``form`` for the chosen engine, with guidance tooltips.

    The classic engine has no model; SAM 2 lists every registry entry, marking the
    ones already cached (usable offline).
    """
    combo = form.model_combo
    combo.clear()
    enable_engine_controls(form, busy=False)
    if form.engine_combo.currentData() == "classic":
        form.model_help.setText(
            "Classic engine: no weights, fast on CPU; for high-contrast objects "
            "(fluorescence, bright cells on a dark background)."
        )
        return
    mark_devices(form, available_devices())
    from napari_sam2v.engines.sam2 import registry

    default = 0
    for spec in registry.list_models():
        try:
            cached = bool(registry.is_cached(spec.name))
        except Exception:
            cached = False
        label = f"{spec.name}{'  (cached)' if cached else ''}"
        combo.addItem(label, spec.name)
        combo.setItemData(combo.count() - 1, _describe(spec), 3)  # 3 = ToolTipRole
        if spec.name == "sam2.1-tiny":
            default = combo.count() - 1
    combo.setCurrentIndex(default)
    explain_model(form)


def available_devices() -> dict[str, bool]:
    """Which entries of the device combo this machine can use.

    Asks torch when it is already imported; otherwise (so that opening the dock
    does not import torch) looks for an NVIDIA driver and for Apple silicon. A
    device offered by mistake is still refused by the engine with a clear message.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        mps = getattr(torch.backends, "mps", None)
        cuda = bool(torch.cuda.is_available())
        apple = bool(mps is not None and mps.is_available())
    else:
        cuda = Path("/proc/driver/nvidia/version").exists() or bool(shutil.which("nvidia-smi"))
        apple = sys.platform == "darwin" and platform.machine() == "arm64"
    return {"auto": True, "cpu": True, "cuda": cuda, "mps": apple}


def mark_devices(form: Any, available: dict[str, bool]) -> None:
    """Disable the devices this machine lacks (with a tooltip) and step off them."""
    combo = form.device_combo
    item_model = combo.model()
    for index in range(combo.count()):
        device = combo.itemData(index)
        usable = available.get(device, True)
        item = item_model.item(index)
        if item is not None:
            item.setEnabled(usable)
        tip = "" if usable else f"no {device.upper()} device on this machine"
        combo.setItemData(index, tip, 3)  # 3 = ToolTipRole
    if not available.get(combo.currentData(), True):
        combo.setCurrentIndex(combo.findData("auto"))


def explain_model(form: Any) -> None:
    """Show the guidance of the selected model under the combo."""
    combo = form.model_combo
    if combo.isEnabled() and combo.count():
        form.model_help.setText(str(combo.itemData(combo.currentIndex(), 3) or ""))


def download_size(model: str) -> str:
    """Download size of a registry model, for messages."""
    from napari_sam2v.engines.sam2 import registry

    try:
        return f"about {registry.get_model(model).download_mb} MB"
    except Sam2vError:
        return "size unknown"


def engine_choice(form: Any) -> tuple[str, dict[str, Any]]:
    """The engine name and its options, as chosen in the dock's Model box."""
    engine = form.engine_combo.currentData()
    if engine == "classic":
        return engine, {"feature": form.feature_combo.currentData()}
    return engine, {
        "model": form.model_combo.currentData(),
        "device": form.device_combo.currentData(),
        "precision": form.precision_combo.currentData(),
    }


def show_engine_choice(form: Any, engine: str, options: dict[str, Any]) -> None:
    """Set the Model box to an engine and its options (a reopened store's session).

    The first prompt configures the session from the Model box: without this, a store
    tracked with one engine would silently continue with the box's default.

    Parameters
    ----------
    form : TrackerForm
        The dock's form.
    engine : str
        ``"sam2"`` or ``"classic"``.
    options : dict
        The engine's options (``model``, ``device``, ``precision``, ``feature``).
    """
    index = form.engine_combo.findData(engine)
    if index < 0:
        return
    form.engine_combo.setCurrentIndex(index)  # refills the model combo for that engine
    combos = {
        "model": form.model_combo,
        "device": form.device_combo,
        "precision": form.precision_combo,
        "feature": form.feature_combo,
    }
    for key, combo in combos.items():
        value = options.get(key)
        if value is None:
            continue
        found = combo.findData(value)
        if found < 0 and key == "model":  # a local checkpoint or folder
            combo.addItem(str(value), value)
            found = combo.count() - 1
        if found >= 0:
            combo.setCurrentIndex(found)


class DownloadProgress(QObject):
    """Shows the bytes of a model download on the dock's progress bar.

    :meth:`report` is given to :func:`~napari_sam2v.engines.sam2.download_model` as
    ``on_progress`` and runs in the worker thread; its signal crosses to the GUI
    thread (a queued connection), where :meth:`show` updates the bar.

    Parameters
    ----------
    bar : QProgressBar
        The bar to use (its frame-count format is restored by :meth:`reset_bar`).
    parent : QObject, optional
    """

    progressed = Signal(int, int)

    def __init__(self, bar: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.bar = bar
        self.progressed.connect(self.show)

    def report(self, done: int, total: int) -> None:
        """Emit :attr:`progressed` (``bytes_done``, ``bytes_total``); any thread."""
        self.progressed.emit(done, total)

    def show(self, done: int, total: int) -> None:
        """Show the download in MiB (a busy bar until the size is known)."""
        if total <= 0:
            self.bar.setRange(0, 0)
            return
        self.bar.setFormat("%v / %m MiB")
        self.bar.setRange(0, max(1, total // 2**20))
        self.bar.setValue(done // 2**20)

    def reset_bar(self) -> None:
        """Back to the empty frame-count bar of propagation."""
        self.bar.setFormat(FRAMES_FORMAT)
        self.bar.setRange(0, 1)
        self.bar.reset()

    def load_job(self, session: Any, model: str) -> Any:
        """A job that downloads ``model`` with progress, then loads the session's engine."""
        from napari_sam2v.engines.sam2 import download_model

        def job() -> Any:
            download_model(model, progress=True, on_progress=self.report)
            return session.load_engine()

        return job
