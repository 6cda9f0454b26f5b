"""Small value types shared by every layer of napari-sam2v (Qt-free)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from napari_sam2v.errors import InputError

__all__ = [
    "DEFAULT_TIME_UNIT",
    "LENGTH_UNITS",
    "TIME_UNITS",
    "Calibration",
    "CalibrationKeywords",
    "ObjectInfo",
    "any_given",
    "canonical_unit",
    "convert_unit",
    "default_color",
    "given_calibration",
    "interval_unit",
    "known_unit",
    "udunits_name",
]

# A qualitative palette (Okabe-Ito, colour-blind safe) cycled for new objects. A mask
# is drawn over its object (0.55 opacity), so its colour must differ from what video
# shows: mostly blue-green water, orange/yellow fish, grey phase contrast. Reddish
# purple and bluish green stand farthest (CIEDE2000 >= 23) from the reef sample's fish
# and water and the cells sample's grey, yellow next (18); orange (17 from the orange
# fish) comes fifth, and blue (7 from the water) last.
_PALETTE = (
    "#cc79a7",
    "#009e73",
    "#f0e442",
    "#56b4e9",
    "#e69f00",
    "#d55e00",
    "#999999",
    "#0072b2",
)


#: Unit of a frame interval that the user gave without one (CLI flags, batch manifests).
DEFAULT_TIME_UNIT = "s"

#: Length units with a known size: abbreviation -> (UDUNITS-2 name, metres). Other
#: unit names are kept as given, but cannot be converted or named in OME-Zarr axes.
LENGTH_UNITS: Mapping[str, tuple[str, float]] = {
    "nm": ("nanometer", 1e-9),
    "um": ("micrometer", 1e-6),
    "mm": ("millimeter", 1e-3),
    "cm": ("centimeter", 1e-2),
    "m": ("meter", 1.0),
    "km": ("kilometer", 1e3),
}
#: Time units with a known length: abbreviation -> (UDUNITS-2 name, seconds).
TIME_UNITS: Mapping[str, tuple[str, float]] = {
    "ms": ("millisecond", 1e-3),
    "s": ("second", 1.0),
    "min": ("minute", 60.0),
    "h": ("hour", 3600.0),
    "d": ("day", 86400.0),
}


def _spellings() -> dict[str, str]:
    """Other spellings (lower case) of the units above and of "no unit" -> abbreviation."""
    spellings = {"pixel": "px", "pixels": "px", "frames": "frame"}
    for table in (LENGTH_UNITS, TIME_UNITS):
        for abbreviation, (name, _) in table.items():
            spellings[abbreviation] = abbreviation
            spellings[name] = spellings[name + "s"] = abbreviation  # "micrometers"
            if name.endswith("meter"):  # "micrometre"
                spellings[name[:-2] + "re"] = spellings[name[:-2] + "res"] = abbreviation
    # the micro sign, the Greek mu, and ImageJ's escaped micro sign (the text "\\u00B5m")
    micro = {"\u00b5m", "\u03bcm", "\\u00b5m", "micron", "microns"}
    spellings.update(dict.fromkeys(micro, "um"))
    spellings.update({"sec": "s", "secs": "s", "msec": "ms", "mins": "min"})
    spellings.update({"hr": "h", "hrs": "h", "day": "d"})
    return spellings


_SPELLINGS = _spellings()


def canonical_unit(unit: str) -> str:
    """The abbreviation of a length or time unit in any common spelling.

    Microscopes, ImageJ, OME-XML and users write the same unit many ways; every
    :class:`Calibration` keeps the abbreviation, so that units compare, convert and
    reach the OME-Zarr axes as UDUNITS-2 names. A name that is not known is returned
    as given (without surrounding spaces).

    Examples
    --------
    >>> [canonical_unit(u) for u in ("um", "micron", "Micrometres", "\N{MICRO SIGN}m")]
    ['um', 'um', 'um', 'um']
    >>> canonical_unit("\N{GREEK SMALL LETTER MU}m")  # what many keyboards type
    'um'
    >>> [canonical_unit(u) for u in ("sec", "Minutes", "hrs", "pixels")]
    ['s', 'min', 'h', 'px']
    >>> canonical_unit("furlong")
    'furlong'
    """
    unit = str(unit).strip()
    return _SPELLINGS.get(unit.lower(), unit)


def known_unit(unit: str, *, time: bool = False) -> str:
    """The abbreviation of a length (or, with ``time=True``, time) unit a user typed.

    For units typed into a command line or a batch manifest, where a typo (``umm``) or a
    unit of the wrong kind (``--unit min``) would otherwise be recorded as given: such a
    unit could not be converted, and OME-Zarr readers would not see it.

    Parameters
    ----------
    unit : str
        Any spelling :func:`canonical_unit` knows.
    time : bool, optional
        Check against the time units instead of the length units.

    Returns
    -------
    str
        The abbreviation, such as ``"um"``.

    Raises
    ------
    InputError
        If the unit is not a known unit of that kind; the message lists the known ones.
    """
    abbreviation = canonical_unit(unit)
    table = TIME_UNITS if time else LENGTH_UNITS
    if abbreviation not in table:
        kind = "time" if time else "length"
        raise InputError(
            f"{unit!r} is not a {kind} unit napari-sam2v knows; use one of {', '.join(table)}"
            + ("" if time else " (or micron, µm, millimetre, ...)")
        )
    return abbreviation


def udunits_name(unit: str) -> str | None:
    """The UDUNITS-2 name of a length or time unit (``"um"`` -> ``"micrometer"``), if known."""
    unit = canonical_unit(unit)
    known = LENGTH_UNITS.get(unit) or TIME_UNITS.get(unit)
    return known[0] if known else None


def convert_unit(value: float, unit: str, to: str) -> float | None:
    """``value`` in ``unit`` expressed in ``to`` (both lengths or both times), if known.

    Examples
    --------
    >>> convert_unit(870.0, "um", "mm")
    0.87
    >>> convert_unit(1.5, "h", "min")
    90.0
    >>> convert_unit(2.0, "um", "s") is None
    True
    """
    unit, to = canonical_unit(unit), canonical_unit(to)
    for table in (LENGTH_UNITS, TIME_UNITS):
        if unit in table and to in table:
            return float(value) * table[unit][1] / table[to][1]
    return None


def _refuse_relabel(
    unit: str | None,
    value: float | None,
    stored: float | None,
    stored_unit: str,
    *,
    unit_name: str,
    value_name: str,
) -> None:
    """Refuse a unit given without its value over a calibrated value in another unit.

    Laying ``unit="mm"`` alone over ``0.87 um`` would make it 0.87 mm, a thousandfold
    error; the message gives the value in the new unit where both units are known.
    """
    if unit is None or value is not None or stored is None:
        return
    if canonical_unit(unit) == stored_unit:  # stored units are already canonical
        return  # the same unit, or another spelling of it ("micron" for "um")
    converted = convert_unit(stored, stored_unit, unit)
    hint = f" ({stored:g} {stored_unit} is {converted:g} {unit})" if converted else ""
    raise InputError(
        f"the {unit_name} {unit} without a {value_name} would relabel {stored:g} {stored_unit} "
        f"as {stored:g} {unit}; give the {value_name} in {unit} as well{hint}"
    )


def interval_unit(frame_interval: float | None, time_unit: str | None) -> str | None:
    """The time unit that goes with a user-given frame interval.

    ``time_unit`` when given; otherwise :data:`DEFAULT_TIME_UNIT` if an interval was
    given, and ``None`` (keep the store's calibration) if not. The library's own
    calibration checks refuse an interval without a unit; the command line and batch
    manifests document seconds as the default instead.
    """
    if time_unit:
        return time_unit
    return DEFAULT_TIME_UNIT if frame_interval is not None else None


class CalibrationKeywords(TypedDict):
    """The calibration keywords of ``track``, ``measure`` and :meth:`Calibration.overridden`."""

    pixel_size: float | None
    unit: str | None
    frame_interval: float | None
    time_unit: str | None


def given_calibration(source: Any) -> CalibrationKeywords:
    """The calibration a user gave, as keywords of ``track`` and ``measure``.

    The keywords also fit :meth:`Calibration.overridden`.

    Parameters
    ----------
    source : object
        Anything with ``pixel_size``, ``unit``, ``frame_interval`` and ``time_unit``
        attributes: parsed command-line flags, a batch manifest row.

    Returns
    -------
    dict
        The four values, ``None`` where not given; a frame interval without its unit
        is in :data:`DEFAULT_TIME_UNIT` (see :func:`interval_unit`).
    """
    return {
        "pixel_size": source.pixel_size,
        "unit": source.unit,
        "frame_interval": source.frame_interval,
        "time_unit": interval_unit(source.frame_interval, source.time_unit),
    }


def any_given(overrides: Mapping[str, object]) -> bool:
    """Whether any value of calibration keywords (:func:`given_calibration`) was given."""
    return any(value is not None for value in overrides.values())


def default_color(object_id: int) -> str:
    """Return the default hex colour for an object id.

    Parameters
    ----------
    object_id : int
        Positive object id.

    Returns
    -------
    str
        ``#rrggbb`` colour from a colour-blind-safe palette.
    """
    return _PALETTE[(int(object_id) - 1) % len(_PALETTE)]


@dataclass(frozen=True)
class ObjectInfo:
    """One tracked object: its id (the label value), name and display colour.

    Parameters
    ----------
    id : int
        Positive integer; the value written into the label image.
    name : str, optional
        Free-text name. Defaults to ``"object <id>"``.
    color : str, optional
        ``#rrggbb`` colour. Defaults to :func:`default_color`.
    """

    id: int
    name: str = ""
    color: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise ValueError(f"object id must be a positive integer, got {self.id!r}")
        if not self.name:
            object.__setattr__(self, "name", f"object {self.id}")
        if not self.color:
            object.__setattr__(self, "color", default_color(self.id))
        color = self.color
        if not (
            isinstance(color, str)
            and len(color) == 7
            and color.startswith("#")
            and all(c in "0123456789abcdefABCDEF" for c in color[1:])
        ):
            raise ValueError(f"object {self.id}: colour must be '#rrggbb', got {color!r}")

    def renamed(self, name: str) -> ObjectInfo:
        """Return a copy with a new name."""
        return replace(self, name=name)


@dataclass(frozen=True)
class Calibration:
    """Physical calibration of a video.

    Parameters
    ----------
    pixel_size : float or None
        Edge length of one (square) pixel in ``unit``. ``None`` means uncalibrated:
        lengths are reported in pixels.
    unit : str
        Length unit of ``pixel_size`` (``"um"``, ``"mm"``, ...). ``"px"`` when
        uncalibrated.
    frame_interval : float or None
        Time between consecutive frames in ``time_unit``. ``None`` means times are
        reported in frames.
    time_unit : str
        Unit of ``frame_interval`` (``"s"``, ``"min"``, ...). ``"frame"`` when
        uncalibrated.
    """

    pixel_size: float | None = None
    unit: str = "px"
    frame_interval: float | None = None
    time_unit: str = "frame"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("pixel_size", "frame_interval"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(float(value)) or float(value) <= 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        object.__setattr__(self, "unit", canonical_unit(self.unit))
        object.__setattr__(self, "time_unit", canonical_unit(self.time_unit))
        if self.pixel_size is None and self.unit != "px":
            object.__setattr__(self, "unit", "px")
        if self.frame_interval is None and self.time_unit != "frame":
            object.__setattr__(self, "time_unit", "frame")

    @property
    def spatial_scale(self) -> float:
        """Length of one pixel in :attr:`unit` (1.0 when uncalibrated)."""
        return 1.0 if self.pixel_size is None else float(self.pixel_size)

    @property
    def time_scale(self) -> float:
        """Duration of one frame in :attr:`time_unit` (1.0 when uncalibrated)."""
        return 1.0 if self.frame_interval is None else float(self.frame_interval)

    @property
    def is_spatially_calibrated(self) -> bool:
        """Whether lengths are physical rather than pixels."""
        return self.pixel_size is not None

    def to_dict(self) -> dict[str, float | str | None]:
        """Serialise to a JSON-friendly dict."""
        return {
            "pixel_size": self.pixel_size,
            "unit": self.unit,
            "frame_interval": self.frame_interval,
            "time_unit": self.time_unit,
        }

    def describe(self) -> str:
        """A short readable form, such as ``"0.65 um/pixel, 10 min/frame"``."""
        space = (
            f"{self.pixel_size:g} {self.unit}/pixel"
            if self.pixel_size is not None
            else "lengths in pixels"
        )
        return f"{space}, {self.describe_interval()}"

    def describe_interval(self) -> str:
        """The time half of :meth:`describe`, such as ``"10 min/frame"``."""
        if self.frame_interval is None:
            return "times in frames"
        return f"{self.frame_interval:g} {self.time_unit}/frame"

    def overrides(self) -> dict[str, float | str | None]:
        """This calibration as the keywords of :meth:`overridden`, ``measure`` and ``track``.

        Returns
        -------
        dict
            ``pixel_size``, ``unit``, ``frame_interval`` and ``time_unit``; the
            uncalibrated parts (and their units) are ``None``, so they change nothing.
        """
        spatial, timed = self.is_spatially_calibrated, self.frame_interval is not None
        return {
            "pixel_size": self.pixel_size,
            "unit": self.unit if spatial else None,
            "frame_interval": self.frame_interval,
            "time_unit": self.time_unit if timed else None,
        }

    def overridden(
        self,
        *,
        pixel_size: float | None = None,
        unit: str | None = None,
        frame_interval: float | None = None,
        time_unit: str | None = None,
    ) -> Calibration:
        """This calibration with user-given values laid over it.

        A ``pixel_size`` needs a ``unit`` (and a ``frame_interval`` a ``time_unit``)
        unless this calibration already names one. A unit alone is refused unless it
        is the one already stored (or a synonym of it): it would relabel the stored
        value, not convert it.

        Parameters
        ----------
        pixel_size, frame_interval : float, optional
            Replace the stored values when given.
        unit, time_unit : str, optional
            Units of the given (or stored) values.

        Returns
        -------
        Calibration

        Raises
        ------
        InputError
            For a size without unit, a unit without size, or a non-positive value.
        """
        _refuse_relabel(
            unit, pixel_size, self.pixel_size, self.unit, unit_name="unit", value_name="pixel size"
        )
        _refuse_relabel(
            time_unit,
            frame_interval,
            self.frame_interval,
            self.time_unit,
            unit_name="time unit",
            value_name="frame interval",
        )
        if unit is not None and pixel_size is None and not self.is_spatially_calibrated:
            raise InputError(
                f"the unit {unit} was given without a pixel size (--pixel-size, pixel_size=)"
            )
        if time_unit is not None and frame_interval is None and self.frame_interval is None:
            raise InputError(
                f"the time unit {time_unit} was given without a frame interval "
                "(--frame-interval, frame_interval=)"
            )
        if pixel_size is not None and unit is None and not self.is_spatially_calibrated:
            raise InputError(
                f"a pixel size of {pixel_size!r} needs a unit (--unit, unit=; for example um)"
            )
        if frame_interval is not None and time_unit is None and self.frame_interval is None:
            raise InputError(
                f"a frame interval of {frame_interval!r} needs a time unit "
                "(--time-unit, time_unit=; for example s)"
            )
        new_size = self.pixel_size if pixel_size is None else pixel_size
        new_interval = self.frame_interval if frame_interval is None else frame_interval
        try:
            return Calibration(
                pixel_size=None if new_size is None else float(new_size),
                unit=unit if unit is not None else self.unit,
                frame_interval=None if new_interval is None else float(new_interval),
                time_unit=time_unit if time_unit is not None else self.time_unit,
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"invalid calibration: {exc}") from exc

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        """Build from :meth:`to_dict` output (unknown keys are ignored)."""
        return cls(
            pixel_size=data.get("pixel_size"),
            unit=data.get("unit") or "px",
            frame_interval=data.get("frame_interval"),
            time_unit=data.get("time_unit") or "frame",
        )
