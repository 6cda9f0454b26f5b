"""The Points and Shapes layers the tracker owns: clicks and boxes in, prompts shown back.

Mouse conventions (documented in the widget tooltip and ``docs/usage.md``):

* **click** on the *SAM2 prompts* Points layer (add mode): foreground point;
* **Shift-click**, or any click while *Background clicks* is ticked: background point;
* a **rectangle** on the *SAM2 boxes* Shapes layer: box prompt on that frame.

The layers are views: after every session change they are rebuilt from the
session's prompts, so undo/redo and rejected clicks show up at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from napari.utils.events import Event

from napari_sam2v.session import TrackingSession

__all__ = ["POINTS_NAME", "SHAPES_NAME", "PromptLayers"]

POINTS_NAME = "SAM2 prompts"
SHAPES_NAME = "SAM2 boxes"
_BACKGROUND = "#ff2020"


class PromptLayers:
    """Create and watch the prompt layers of one image layer.

    Parameters
    ----------
    viewer : napari.Viewer
    image : napari.layers.Image
        The tracked layer; the prompt layers copy its scale and translation.
    on_click : callable
        ``on_click(frame, x, y, positive)`` for every new point.
    on_box : callable
        ``on_box(frame, (x0, y0, x1, y1))`` for every new rectangle.
    """

    def __init__(
        self,
        viewer: Any,
        image: Any,
        *,
        on_click: Callable[[int, float, float, bool], None],
        on_box: Callable[[int, tuple[float, float, float, float]], None],
    ) -> None:
        self.viewer = viewer
        self.on_click = on_click
        self.on_box = on_box
        self.background_mode = False
        self._shift = False
        self._rebuilding = False
        self._points_state: tuple = ()
        self._boxes_state: tuple = ((), ())
        ndim = image.ndim
        scale, translate = image.scale[:ndim], image.translate[:ndim]
        for name in (POINTS_NAME, SHAPES_NAME):
            if name in viewer.layers:
                viewer.layers.remove(name)
        self.points = viewer.add_points(
            np.empty((0, ndim)),
            name=POINTS_NAME,
            scale=scale,
            translate=translate,
            size=9,
            border_width=0.15,
            border_color="white",
            features={"object_id": np.empty(0, int), "label": np.empty(0, int)},
        )
        self.shapes = viewer.add_shapes(
            ndim=ndim,
            name=SHAPES_NAME,
            scale=scale,
            translate=translate,
            face_color="transparent",
            edge_width=2,
        )
        self.points.mouse_drag_callbacks.insert(0, self._remember_modifiers)
        self.points.events.data.connect(self._points_changed)
        self.shapes.events.data.connect(self._shapes_changed)
        self.points.mode = "add"
        self.shapes.mode = "add_rectangle"
        viewer.layers.selection.active = self.points

    # -- napari events -------------------------------------------------------------
    def _remember_modifiers(self, _layer: Any, event: Any) -> None:
        self._shift = "Shift" in event.modifiers

    def _points_changed(self, event: Event) -> None:
        if self._rebuilding or getattr(event, "action", None) != "added":
            return
        positive = not (self.background_mode or self._shift)
        self._shift = False
        for index in event.data_indices:
            coords = np.asarray(self.points.data[index], dtype=float)
            frame, y, x = int(round(coords[0])), float(coords[-2]), float(coords[-1])
            self.on_click(frame, x, y, positive)

    def _shapes_changed(self, event: Event) -> None:
        if self._rebuilding or getattr(event, "action", None) != "added":
            return
        for index in event.data_indices:
            verts = np.asarray(self.shapes.data[index], dtype=float)
            frame = int(round(verts[0, 0]))
            y0, x0 = verts[:, -2].min(), verts[:, -1].min()
            y1, x1 = verts[:, -2].max(), verts[:, -1].max()
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                self.on_box(frame, (x0, y0, x1, y1))

    # -- display -------------------------------------------------------------------
    def show(self, session: TrackingSession) -> None:
        """Rebuild both layers from the session's prompts."""
        colors = {o.id: o.color for o in session.objects}
        rows, oids, labels, faces = [], [], [], []
        boxes, edges = [], []
        ndim = self.points.ndim
        for prompt in session.prompts:
            lead = [prompt.frame] + [0] * (ndim - 3)
            if prompt.points is not None:
                for (x, y), label in zip(prompt.points, prompt.labels, strict=True):
                    rows.append([*lead, y, x])
                    oids.append(prompt.object_id)
                    labels.append(int(label))
                    faces.append(colors.get(prompt.object_id, "#ffffff") if label else _BACKGROUND)
            if prompt.box is not None:
                x0, y0, x1, y1 = prompt.box
                boxes.append([[*lead, y, x] for y, x in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))])
                edges.append(colors.get(prompt.object_id, "#ffffff"))
        points_state = (tuple(map(tuple, rows)), tuple(oids), tuple(labels), tuple(faces))
        boxes_state = (tuple(str(b) for b in boxes), tuple(edges))
        self._rebuilding = True
        try:
            stale = len(self.points.data) != len(rows)  # e.g. a refused click is still drawn
            if stale or points_state != self._points_state:  # redraws cost: skip if unchanged
                self._points_state = points_state
                self.points.data = np.asarray(rows, dtype=float).reshape(-1, ndim)
                self.points.features = {"object_id": np.asarray(oids, int),
                                        "label": np.asarray(labels, int)}
                if faces:
                    self.points.face_color = faces
                    self.points.symbol = ["disc" if v else "cross" for v in labels]
            if len(self.shapes.data) != len(boxes) or boxes_state != self._boxes_state:
                self._boxes_state = boxes_state
                self.shapes.data = []
                if boxes:
                    self.shapes.add_rectangles(np.asarray(boxes, dtype=float), edge_color=edges)
        finally:
            self._rebuilding = False

    def remove(self) -> None:
        """Take the layers out of the viewer."""
        for layer in (self.points, self.shapes):
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
