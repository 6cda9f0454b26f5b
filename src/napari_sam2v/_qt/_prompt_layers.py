"""The Points and Shapes layers the tracker owns: clicks and boxes in, prompts shown back.

Mouse conventions (documented in the widget tooltip and ``docs/usage.md``):

* **click** on the *SAM2 prompts* Points layer (add mode): foreground point;
* **Shift-click**, or any click while *Background clicks* is ticked: background point;
* a **rectangle** on the *SAM2 boxes* Shapes layer: box prompt on that frame;
* **deleting** points or boxes (select them, then Delete or the layer's remove button),
  or **dragging** them in select mode, edits the prompts they stand for (undoable).

The layers are views: after every session change they are rebuilt from the
session's prompts, so undo/redo and rejected clicks show up at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from napari.utils.events import Event

from napari_sam2v.session import TrackingSession

__all__ = ["POINTS_NAME", "SHAPES_NAME", "PromptEdits", "PromptLayers"]

POINTS_NAME = "SAM2 prompts"
SHAPES_NAME = "SAM2 boxes"
_BACKGROUND = "#ff2020"

Key = tuple[int, int]  # (frame, object id)
Clicks = tuple[tuple[tuple[float, float], ...], tuple[int, ...]]  # points (x, y), labels
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PromptEdits:
    """Prompt changes made in the layers themselves (deleted or dragged points and boxes).

    Parameters
    ----------
    clicks : dict
        ``{(frame, object_id): (points, labels)}``: the object's new clicks on that
        frame (possibly none).
    boxes : dict
        ``{(frame, object_id): box or None}``: the new box ``(x0, y0, x1, y1)``, or
        ``None`` where it was deleted.
    """

    clicks: dict[Key, Clicks] = field(default_factory=dict)
    boxes: dict[Key, Box | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.clicks or self.boxes)


def _group_clicks(rows: np.ndarray, oids: Any, labels: Any) -> dict[Key, Clicks]:
    grouped: dict[Key, tuple[list, list]] = {}
    for row, oid, label in zip(rows, oids, labels, strict=True):
        points, kinds = grouped.setdefault((int(round(row[0])), int(oid)), ([], []))
        points.append((float(row[-1]), float(row[-2])))
        kinds.append(int(label))
    return {key: (tuple(p), tuple(k)) for key, (p, k) in grouped.items()}


def _box_of(vertices: np.ndarray) -> tuple[int, Box]:
    verts = np.asarray(vertices, dtype=float)
    ys, xs = verts[:, -2], verts[:, -1]
    return int(round(verts[0, 0])), (xs.min(), ys.min(), xs.max(), ys.max())


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
    on_edit : callable, optional
        ``on_edit(edits)`` with a :class:`PromptEdits` when points or boxes are
        deleted, or dragged in select mode.
    """

    def __init__(
        self,
        viewer: Any,
        image: Any,
        *,
        on_click: Callable[[int, float, float, bool], None],
        on_box: Callable[[int, tuple[float, float, float, float]], None],
        on_edit: Callable[[PromptEdits], None] | None = None,
    ) -> None:
        self.viewer = viewer
        self.on_click = on_click
        self.on_box = on_box
        self.on_edit = on_edit
        self.background_mode = False
        self._shift = False
        self._rebuilding = False
        self._points_state: tuple = ()
        self._boxes_state: tuple = ((), (), ())
        self._drawn_boxes: dict[Key, Box] = {}
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
        self.points.mouse_drag_callbacks.insert(0, self._drag)
        self.shapes.mouse_drag_callbacks.insert(0, self._drag)
        self.points.events.data.connect(self._points_changed)
        self.shapes.events.data.connect(self._shapes_changed)
        self.points.mode = "add"
        self.shapes.mode = "add_rectangle"
        self._modes: dict[int, str] = {}
        self._disconnected = False
        viewer.layers.selection.active = self.points

    def disconnect(self) -> None:
        """Stop reporting clicks, boxes and edits (the session they drive is closed).

        The layers stay in the viewer as plain layers, with what they show. Calling
        it again does nothing.
        """
        if self._disconnected:
            return
        self._disconnected = True
        for layer, changed in (
            (self.points, self._points_changed),
            (self.shapes, self._shapes_changed),
        ):
            layer.events.data.disconnect(changed)
            if self._drag in layer.mouse_drag_callbacks:
                layer.mouse_drag_callbacks.remove(self._drag)

    def set_busy(self, busy: bool) -> None:
        """Lock the layers while a job runs, then give back the mode each had.

        napari puts a layer that stops being editable in pan/zoom mode, and keeps it
        there once it is editable again: clicks would then pan instead of prompting.
        """
        for layer in (self.points, self.shapes):
            if busy:
                # napari makes a layer editable again on some refreshes: keep the mode
                # from before the first lock, not the pan/zoom the lock put it in.
                self._modes.setdefault(id(layer), str(layer.mode))
                layer.editable = False
            else:
                layer.editable = True
                mode = self._modes.pop(id(layer), None)
                if mode is not None and str(layer.mode) != mode:
                    layer.mode = mode

    # -- napari events -------------------------------------------------------------
    def _drag(self, layer: Any, event: Any) -> Any:
        """Remember Shift for the click; after a drag in select mode, report moved prompts."""
        self._shift = "Shift" in event.modifiers
        moved = False
        yield
        while event.type == "mouse_move":
            moved = True
            yield
        if moved and layer.mode in ("select", "direct") and not self._rebuilding:
            self._report(self._moved_points() if layer is self.points else self._moved_boxes())

    def _report(self, edits: PromptEdits) -> None:
        if edits and self.on_edit is not None:
            self.on_edit(edits)

    def _layer_clicks(self, drop: Collection[int] = ()) -> dict[Key, Clicks]:
        dropped = set(drop)
        keep = [i for i in range(len(self.points.data)) if i not in dropped]
        features = self.points.features
        return _group_clicks(
            np.asarray(self.points.data, dtype=float)[keep],
            np.asarray(features["object_id"])[keep],
            np.asarray(features["label"])[keep],
        )

    def _drawn_clicks(self) -> dict[Key, Clicks]:
        rows, oids, labels = self._points_state[:3] if self._points_state else ((), (), ())
        return _group_clicks(np.asarray(rows, dtype=float).reshape(len(rows), -1), oids, labels)

    def _click_changes(self, now: dict[Key, Clicks]) -> PromptEdits:
        before = self._drawn_clicks()
        changed = {key: now.get(key, ((), ())) for key in before if now.get(key) != before[key]}
        return PromptEdits(clicks=changed)

    def _moved_points(self) -> PromptEdits:
        if len(self.points.data) != len(self._points_state[0] if self._points_state else ()):
            return PromptEdits()
        return self._click_changes(self._layer_clicks())

    def _moved_boxes(self) -> PromptEdits:
        oids = self.shapes.features.get("object_id", ())
        if len(oids) != len(self.shapes.data):
            return PromptEdits()
        boxes: dict[Key, Box | None] = {}
        for verts, oid in zip(self.shapes.data, oids, strict=True):
            frame, box = _box_of(verts)
            drawn = self._drawn_boxes.get((frame, int(oid)))
            if drawn is None or not np.allclose(box, drawn):
                boxes[(frame, int(oid))] = box
        return PromptEdits(boxes=boxes)

    def _points_changed(self, event: Event) -> None:
        action = getattr(event, "action", None)
        if self._rebuilding or action not in ("added", "removing"):
            return
        if action == "removing":  # the rows are still there: report what is left
            self._report(self._click_changes(self._layer_clicks(event.data_indices)))
            return
        positive = not (self.background_mode or self._shift)
        self._shift = False
        for index in event.data_indices:
            coords = np.asarray(self.points.data[index], dtype=float)
            frame, y, x = int(round(coords[0])), float(coords[-2]), float(coords[-1])
            self.on_click(frame, x, y, positive)

    def _shapes_changed(self, event: Event) -> None:
        action = getattr(event, "action", None)
        if self._rebuilding or action not in ("added", "removing"):
            return
        if action == "removing":
            oids = self.shapes.features.get("object_id", ())
            removed: dict[Key, Box | None] = {}
            for index in event.data_indices:
                if index < len(oids):
                    removed[(_box_of(self.shapes.data[index])[0], int(oids[index]))] = None
            self._report(PromptEdits(boxes=removed))
            return
        for index in event.data_indices:
            frame, (x0, y0, x1, y1) = _box_of(self.shapes.data[index])
            if x1 - x0 >= 1 and y1 - y0 >= 1:
                self.on_box(frame, (x0, y0, x1, y1))

    # -- display -------------------------------------------------------------------
    def show(self, session: TrackingSession, *, force: bool = False) -> None:
        """Rebuild both layers from the session's prompts.

        Unchanged layers are skipped (redraws cost), unless ``force`` (after a refused
        edit, e.g. a point dragged while a job ran).
        """
        colors = {o.id: o.color for o in session.objects}
        rows, oids, labels, faces = [], [], [], []
        boxes, edges, box_oids = [], [], []
        drawn_boxes: dict[Key, Box] = {}
        ndim = self.points.ndim
        for prompt in session.prompts:
            lead = [prompt.frame] + [0] * (ndim - 3)
            for (x, y), label in zip(*prompt.clicks, strict=True):
                rows.append([*lead, y, x])
                oids.append(prompt.object_id)
                labels.append(int(label))
                faces.append(colors.get(prompt.object_id, "#ffffff") if label else _BACKGROUND)
            if prompt.box is not None:
                x0, y0, x1, y1 = prompt.box
                boxes.append([[*lead, y, x] for y, x in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))])
                edges.append(colors.get(prompt.object_id, "#ffffff"))
                box_oids.append(prompt.object_id)
                drawn_boxes[(prompt.frame, prompt.object_id)] = (x0, y0, x1, y1)
        points_state = (tuple(map(tuple, rows)), tuple(oids), tuple(labels), tuple(faces))
        boxes_state = (tuple(str(b) for b in boxes), tuple(edges), tuple(box_oids))
        self._rebuilding = True
        try:
            stale = force or len(self.points.data) != len(rows)  # e.g. a refused click
            if stale or points_state != self._points_state:  # redraws cost: skip if unchanged
                self._points_state = points_state
                self.points.data = np.asarray(rows, dtype=float).reshape(-1, ndim)
                self.points.features = {
                    "object_id": np.asarray(oids, int),
                    "label": np.asarray(labels, int),
                }
                if faces:
                    self.points.face_color = faces
                    self.points.symbol = ["disc" if v else "cross" for v in labels]
            stale = force or len(self.shapes.data) != len(boxes)
            if stale or boxes_state != self._boxes_state:
                self._boxes_state, self._drawn_boxes = boxes_state, drawn_boxes
                self.shapes.data = []
                if boxes:
                    self.shapes.add_rectangles(np.asarray(boxes, dtype=float), edge_color=edges)
                self.shapes.features = {"object_id": np.asarray(box_oids, int)}
        finally:
            self._rebuilding = False

    def remove(self) -> None:
        """Take the layers out of the viewer."""
        for layer in (self.points, self.shapes):
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
