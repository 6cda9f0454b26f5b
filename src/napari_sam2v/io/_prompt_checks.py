"""Checks of a prompt file's entries: duplicates merged, background-only prompts.

Used by :mod:`napari_sam2v.io.prompt_files`; the warnings read well on the command
line, where they print as ``warning: <file>: ...``.
"""

from __future__ import annotations

import warnings

import numpy as np

from napari_sam2v.errors import PromptError
from napari_sam2v.io.source import _caller_stacklevel
from napari_sam2v.prompts import Prompt

__all__ = ["merged_prompts", "warn_background_only"]


def _merge_two(first: Prompt, other: Prompt, entries: str) -> Prompt:
    """One prompt with the clicks of both (and the box of either); see :func:`_merged`."""
    where = f"{entries} for object {first.object_id} on frame {first.frame}"
    if first.mask is not None or other.mask is not None:
        same = (
            first.mask is not None
            and other.mask is not None
            and first.points is None
            and other.points is None
            and first.box is None
            and other.box is None
            and np.array_equal(first.mask, other.mask)
        )
        if same:
            return first
        raise PromptError(
            f"{where} and cannot be merged: a mask prompt cannot be combined with another "
            "prompt; keep one entry per object and frame"
        )
    if first.box is not None and other.box is not None and not np.array_equal(first.box, other.box):
        raise PromptError(
            f"{where} and cannot be merged: they give two different boxes; keep one entry "
            "per object and frame, with one box"
        )
    box = first.box if first.box is not None else other.box
    parts = [p for p in (first, other) if p.points is not None and len(p.points)]
    if not parts:
        return Prompt(first.frame, first.object_id, box=box)
    rows = np.concatenate([np.column_stack(p.clicks) for p in parts])
    _, keep = np.unique(rows, axis=0, return_index=True)  # a click given twice counts once
    rows = rows[np.sort(keep)]
    return Prompt(
        first.frame, first.object_id, points=rows[:, :2], labels=rows[:, 2].astype(int), box=box
    )


def merged_prompts(prompts: list[Prompt], names: list[str], source: str) -> list[Prompt]:
    """Merge the entries given for the same object and frame, with a ``UserWarning``.

    An engine keeps one prompt per object and frame (a later one replaces an earlier
    one), so separate entries would silently lose all clicks but the last entry's.
    Their clicks are joined instead (a click given twice counts once), with the box
    of either; two different boxes or a mask with anything else cannot be joined.

    Parameters
    ----------
    prompts : list of Prompt
        The prompts in file order.
    names : list of str
        Each prompt's entry, e.g. ``"prompts[3]"``, named in messages.
    source : str
        The prompt file, named in messages.

    Returns
    -------
    list of Prompt
        One prompt per object and frame, where its first entry was.

    Raises
    ------
    PromptError
        For entries that cannot be merged.
    """
    first: dict[tuple[int, int], int] = {}
    out: list[Prompt] = []
    entries: list[list[str]] = []
    for prompt, name in zip(prompts, names, strict=True):
        key = (prompt.frame, prompt.object_id)
        if key not in first:
            first[key] = len(out)
            out.append(prompt)
            entries.append([name])
            continue
        i = first[key]
        entries[i].append(name)
        out[i] = _merge_two(out[i], prompt, f"{source}: {_join(entries[i])}")
    for prompt, names_i in zip(out, entries, strict=True):
        if len(names_i) > 1:
            warnings.warn(
                f"{source}: {_join(names_i)} for object {prompt.object_id} on frame "
                f"{prompt.frame}: they are merged into one prompt with all their clicks; "
                "write one entry per object and frame",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
    return out


def _join(names: list[str]) -> str:
    """``"a and b are both"`` / ``"a, b and c are all"``."""
    both = "both" if len(names) == 2 else "all"
    return f"{', '.join(names[:-1])} and {names[-1]} are {both}"


def warn_background_only(prompts: list[Prompt], source: str) -> None:
    """Warn (``UserWarning``) about prompts of background clicks only.

    Such a prompt leaves its object empty on its frame, which is rarely meant.

    Parameters
    ----------
    prompts : list of Prompt
        The prompts (merged: one per object and frame).
    source : str
        The prompt file, named in the warning.
    """
    for prompt in prompts:
        if prompt.box is not None or prompt.mask is not None or prompt.points is None:
            continue
        labels = prompt.clicks[1]
        if len(labels) and not labels.any():
            warnings.warn(
                f"{source}: object {prompt.object_id} on frame {prompt.frame} has only "
                "background clicks (label 0): it will be empty on that frame; add a positive "
                "click (label 1) or a box",
                UserWarning,
                stacklevel=_caller_stacklevel(),
            )
