"""Make the screenshots of docs/usage.md and measure the widget's click latency.

Run from the repository root under a (virtual) display::

    xvfb-run -a .venv/bin/python docs/images/make_screenshots.py

It opens napari with the tracker docked, loads the ``reef`` sample, tracks it with the
weights-free classic engine (SAM 2 weights cannot be downloaded on the build machine)
and writes ``widget_reef.png``, ``preview_click.png`` and ``results_dock.png`` next to
this file. It then times clicks in the widget, from the Points layer event to the
Labels layer refresh, for the classic engine and SAM 2 ``random-tiny``, and writes
``widget_latency.json`` (with the machine description).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _quiet(viewer: Any) -> None:
    """Close notification toasts so they do not cover the canvas."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()


def _shot(app: Any, viewer: Any, widget: Any, path: Path) -> None:
    _quiet(viewer)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.01)
    widget.grab().save(str(path))


def _wait(app: Any, widget: Any, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while widget.jobs.active and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.005)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def _start(viewer: Any, tracker: Any, store: Path, engine: str, model: str | None = None) -> None:
    form = tracker.form
    form.layer_combo.setCurrentText("reef")
    form.engine_combo.setCurrentIndex(form.engine_combo.findData(engine))
    if model is not None:
        form.model_combo.setCurrentIndex(form.model_combo.findData(model))
        form.device_combo.setCurrentIndex(form.device_combo.findData("cpu"))
    if not tracker.start_session(store, overwrite=True):
        raise SystemExit(f"could not start a session in {store}")


def _latency(app: Any, viewer: Any, tracker: Any, clicks: list[tuple[int, float, float]]) -> dict:
    tracker.load_model()
    _wait(app, tracker)
    tracker.click_latencies.clear()
    for frame, y, x in clicks:
        viewer.dims.set_current_step(0, frame)
        _wait(app, tracker)  # the prefetch of the new frame runs while the user aims
        tracker.prompt_layers.points.add([frame, y, x])
        _wait(app, tracker)
    values = sorted(tracker.click_latencies)
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {
        "clicks": len(values),
        "median_s": statistics.median(values),
        "p95_s": p95,
        "max_s": values[-1],
        "all_s": [round(v, 4) for v in tracker.click_latencies],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--clicks", type=int, default=20, help="clicks per engine for timing")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_sam2v.samples import load_reef

    sample = load_reef()
    work = Path(tempfile.mkdtemp(prefix="sam2v-shots-"))
    viewer = napari.Viewer(title="napari-sam2v")
    viewer.window._qt_window.resize(1600, 950)
    app = QApplication.instance()
    _, tracker = viewer.window.add_plugin_dock_widget("napari-sam2v", "SAM 2 video tracker")
    viewer.open_sample("napari-sam2v", "reef")
    viewer.layers["reef ground truth"].visible = False
    _start(viewer, tracker, work / "reef.zarr", "classic")
    _wait(app, tracker)
    # fish 2 (yellow on blue water): the classic engine needs contrast; fish 1 (orange
    # on orange coral) needs SAM 2 or a box with the classic engine
    frame, y, x = _best_click(sample.labels, object_id=2)
    viewer.dims.set_current_step(0, frame)
    _shot(app, viewer, viewer.window._qt_window, args.out / "widget_reef.png")

    # one click inside fish 2 where it is fully in view (a colour that stands out)
    tracker.session.recolor_object(1, "#e0007f")
    tracker._show_session()
    tracker.labels_layer.opacity = 0.7
    tracker.prompt_layers.points.add([frame, y, x])
    _wait(app, tracker)
    _shot(app, viewer, viewer.window._qt_window, args.out / "preview_click.png")

    # the whole sample: its prompt file, propagate both ways, then the Results dock
    tracker.undo()
    _wait(app, tracker)
    tracker.load_prompts(sample.prompts_path)
    _wait(app, tracker)
    tracker.propagate()
    _wait(app, tracker)
    tracker.session.save()
    _, results = viewer.window.add_plugin_dock_widget("napari-sam2v", "Tracking results")
    results.measure()
    _wait(app, results)
    viewer.dims.set_current_step(0, 30)
    results.show_tracks()
    results.resize(560, 1100)
    _shot(app, viewer, results, args.out / "results_dock.png")

    timings = {"classic": _latency(app, viewer, tracker, _clicks(sample, args.clicks))}
    _start(viewer, tracker, work / "reef_rt.zarr", "sam2", "random-tiny")
    timings["sam2 random-tiny"] = _latency(app, viewer, tracker, _clicks(sample, args.clicks))
    report = {
        "what": "widget click latency: Points layer 'added' event -> Labels layer refreshed "
        "(worker thread, session.add_click, store write, Qt event loop)",
        "sample": "reef (48 x 288 x 384 RGB)",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "note": "x86-64 CPU, no GPU",
            # other jobs on the machine show here: a single run's timings vary with them
            "load_average_1min_after": round(os.getloadavg()[0], 2),
        },
        "engines": timings,
    }
    (args.out / "widget_latency.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: {m: v[m] for m in ("median_s", "p95_s")} for k, v in timings.items()}))
    tracker.session.close()
    viewer.close()
    return 0


def _best_click(labels: np.ndarray, object_id: int) -> tuple[int, float, float]:
    """Frame where the object is largest and its most interior pixel (as a user would)."""
    from scipy.ndimage import distance_transform_edt

    areas = [(labels[t] == object_id).sum() for t in range(len(labels))]
    frame = int(np.argmax(areas))
    depth = distance_transform_edt(labels[frame] == object_id)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return frame, float(y), float(x)


def _clicks(sample: Any, n: int) -> list[tuple[int, float, float]]:
    """Clicks inside fish 1 on ``n`` frames spread over the clip (from the ground truth)."""
    clicks = []
    for frame in np.linspace(0, len(sample.labels) - 1, n).astype(int):
        ys, xs = np.nonzero(sample.labels[frame] == 1)
        if len(ys):
            i = len(ys) // 2
            clicks.append((int(frame), float(ys[i]), float(xs[i])))
    return clicks


if __name__ == "__main__":
    raise SystemExit(main())
