"""The controls of the tracker dock, laid out; behaviour lives in ``tracker_widget``."""

from __future__ import annotations

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_sam2v._qt._objects_panel import ObjectsPanel
from napari_sam2v.engines.sam2 import DEVICES, PRECISIONS

__all__ = ["HELP", "TrackerForm"]

HELP = (
    "Click on the 'SAM2 prompts' layer: foreground point for the selected object.\n"
    "Shift-click (or tick 'Background clicks'): background point.\n"
    "Draw a rectangle on the 'SAM2 boxes' layer: box prompt.\n"
    "Select points or boxes (select mode) to delete them or drag them: the prompts follow.\n"
    "Ctrl+Z / Ctrl+Shift+Z: undo / redo the last prompt action.\n"
    "The 'SAM2 result' labels layer is the result store on disk: paint and erase edit it."
)

#: Text of the progress bar while propagating (a model download shows MiB instead).
FRAMES_FORMAT = "%v / %m frames"

#: Label and tooltip of each SAM 2 precision level (``PRECISIONS``); see docs/models.md.
_PRECISION_TEXT = {
    "auto": (
        "auto (mixed where the CPU has bf16)",
        "'mixed' on a CPU with native bf16 (AVX-512 BF16 or AMX), 'float32' elsewhere.",
    ),
    "float32": ("float32 (exact)", "Same masks as transformers' fp32 model."),
    "mixed": (
        "mixed (faster on CPU)",
        "bf16 products where they keep masks within IoU 0.99 of float32; needs a CPU "
        "with AVX-512 BF16 or AMX (1.5-1.7x faster than float32 on the project's 2-core "
        "test machine). Falls back to float32 elsewhere.",
    ),
    "fast": (
        "fast (fastest, check results)",
        "More of the model in bf16: faster again (about 2x plain transformers on the "
        "project's test machine), with a larger drift than 'mixed'. Check the masks "
        "on your data.",
    ),
}
#: Classic-engine appearance features: (label, value).
_FEATURES = (
    ("auto", "auto"),
    ("phase contrast (halos)", "phase"),
    ("bright objects", "bright"),
    ("dark objects", "dark"),
    ("texture", "texture"),
    ("colour (RGB)", "color"),
)


def _row(*widgets: QWidget) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return box


class TrackerForm(QWidget):
    """All controls of the tracker dock as attributes, grouped in boxes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip(HELP)
        # -- video and store
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Image layer to track: (t, y, x), RGB or (t, c, y, x)")
        self.channel_spin = QSpinBox()
        self.channel_spin.setToolTip("Channel used by the model for multi-channel stacks")
        self.channel_label = QLabel("Channel")
        self.store_edit = QLineEdit()
        self.store_edit.setPlaceholderText("result store folder, e.g. clip_sam2v.zarr")
        self.store_edit.setToolTip(
            "OME-Zarr result store: the labels are written here frame by frame,\n"
            "with the prompts and settings, so the session can be reopened later."
        )
        self.browse_button = QPushButton("…")
        self.browse_button.setMaximumWidth(30)
        self.start_button = QPushButton("Start new session")
        self.open_button = QPushButton("Reopen store")
        video = QGroupBox("Video and result store")
        form = QFormLayout(video)
        form.addRow("Image layer", self.layer_combo)
        form.addRow(self.channel_label, self.channel_spin)
        form.addRow("Store", _row(self.store_edit, self.browse_button))
        form.addRow(_row(self.start_button, self.open_button))
        # -- model
        self.engine_combo = QComboBox()
        self.engine_combo.addItem("SAM 2 (transformers)", "sam2")
        self.engine_combo.addItem("Classic (no weights, high contrast)", "classic")
        self.model_combo = QComboBox()
        self.device_combo = QComboBox()
        for device in DEVICES:
            self.device_combo.addItem(device, device)
        self.precision_combo = QComboBox()
        for value in PRECISIONS:
            label, tip = _PRECISION_TEXT[value]
            self.precision_combo.addItem(label, value)
            self.precision_combo.setItemData(self.precision_combo.count() - 1, tip, 3)
        self.feature_combo = QComboBox()
        for label, value in _FEATURES:
            self.feature_combo.addItem(label, value)
        self.feature_combo.setToolTip(
            "What sets the objects apart (classic engine). 'auto' decides per click; pick "
            "'phase contrast' for cells with bright halos (see docs/engines.md)."
        )
        self.model_help = QLabel()
        self.model_help.setWordWrap(True)
        self.load_button = QPushButton("Load model")
        model = QGroupBox("Model")
        form = QFormLayout(model)
        form.addRow("Engine", self.engine_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Precision", self.precision_combo)
        form.addRow("Appearance", self.feature_combo)
        form.addRow(self.model_help)
        form.addRow(self.load_button)
        # -- objects and prompts
        self.objects = ObjectsPanel()
        self.background_check = QCheckBox("Background clicks")
        self.background_check.setToolTip("Clicks add background points (same as Shift-click)")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last prompt action (Ctrl+Z)")
        self.redo_button = QPushButton("Redo")
        self.redo_button.setToolTip("Redo (Ctrl+Shift+Z)")
        self.clear_button = QPushButton("Clear frame")
        self.clear_button.setToolTip("Remove the selected object's prompts on this frame")
        self.mask_button = QPushButton("Use edited labels as prompt")
        self.mask_button.setToolTip(
            "Feed the selected object's pixels on this frame (as painted in the\n"
            "'SAM2 result' layer) back to the model as a mask prompt"
        )
        self.load_prompts_button = QPushButton("Load prompts…")
        self.load_prompts_button.setToolTip(
            "Add the objects and clicks/boxes/masks of a prompt file (JSON v1 or CSV)"
        )
        prompts = QGroupBox("Objects and prompts")
        layout = QVBoxLayout(prompts)
        layout.addWidget(self.objects)
        hint = QLabel(
            "Click = foreground · Shift-click = background · rectangle = box · "
            "select points or boxes to delete or drag them"
        )
        hint.setWordWrap(True)
        layout.addWidget(hint)
        layout.addWidget(_row(self.background_check, self.clear_button))
        layout.addWidget(_row(self.undo_button, self.redo_button))
        layout.addWidget(_row(self.mask_button, self.load_prompts_button))
        # -- propagation
        self.direction_combo = QComboBox()
        for value in ("both", "forward", "backward"):
            self.direction_combo.addItem(value, value)
        self.direction_combo.setToolTip(
            "both: forward to the end, then backward to the start (every frame)"
        )
        self.from_current_check = QCheckBox("from this frame")
        self.from_current_check.setChecked(False)
        self.from_current_check.setToolTip(
            "Start at the frame on screen (e.g. after a correction click);\n"
            "otherwise start at the first prompted frame"
        )
        self.range_check = QCheckBox("only frames")
        self.range_lo = QSpinBox()
        self.range_hi = QSpinBox()
        self.propagate_button = QPushButton("Propagate")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the cancelled run, skipping its finished frames")
        self.cancel_button = QPushButton("Cancel")
        self.progress = QProgressBar()
        self.progress.setFormat(FRAMES_FORMAT)
        self.status = QLabel("Pick an image layer and start a session.")
        self.status.setWordWrap(True)
        propagate = QGroupBox("Propagate")
        form = QFormLayout(propagate)
        form.addRow("Direction", _row(self.direction_combo, self.from_current_check))
        form.addRow(_row(self.range_check, self.range_lo, QLabel("to"), self.range_hi))
        # The run buttons, ``progress`` and ``status`` are placed by the dock below its
        # scroll area, so they stay in view wherever (and however short) the form is.
        self.run_buttons = _row(self.propagate_button, self.resume_button, self.cancel_button)
        # -- warnings and saving
        self.warnings = QListWidget()
        self.warnings.setMaximumHeight(90)
        self.warnings.setToolTip(
            "Frames with low confidence or a sudden area change:\n"
            "click one to go there and add a correction click"
        )
        self.save_button = QPushButton("Save session to store")
        checks = QGroupBox("Frames to check")
        layout = QVBoxLayout(checks)
        layout.addWidget(self.warnings)
        layout.addWidget(self.save_button)

        outer = QVBoxLayout(self)
        for box in (video, model, prompts, propagate, checks):
            outer.addWidget(box)
        outer.addStretch(1)
        self.cancel_button.setEnabled(False)
        self.resume_button.setEnabled(False)

    def set_enabled(
        self, *, busy: bool, ready: bool, can_undo: bool, can_redo: bool, can_resume: bool
    ) -> None:
        """Enable the controls that make sense now (a job running, a session open, ...).

        The engine-specific combos are left to :func:`~napari_sam2v._qt._models.
        enable_engine_controls`.
        """
        for widget in (
            self.layer_combo,
            self.channel_spin,
            self.store_edit,
            self.browse_button,
            self.start_button,
            self.open_button,
            self.engine_combo,
            self.load_button,
        ):
            widget.setEnabled(not busy)
        for widget in (
            self.objects,
            self.background_check,
            self.clear_button,
            self.mask_button,
            self.load_prompts_button,
            self.propagate_button,
            self.save_button,
            self.direction_combo,
            self.range_check,
            self.range_lo,
            self.range_hi,
            self.from_current_check,
        ):
            widget.setEnabled(ready and not busy)
        self.undo_button.setEnabled(ready and not busy and can_undo)
        self.redo_button.setEnabled(ready and not busy and can_redo)
        self.resume_button.setEnabled(ready and not busy and can_resume)
        self.cancel_button.setEnabled(busy)
