"""Hypothesis fuzzing of the parsers that read user or cache files.

The contract: any input gives a valid object or a :class:`Sam2vError`, never
another exception (no ``KeyError``, ``TypeError``, ``RecursionError``...).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from napari_sam2v.errors import Sam2vError
from napari_sam2v.io.prompt_files import Prompts
from napari_sam2v.io.video import INDEX_FORMAT, PyAVSource, load_index
from napari_sam2v.prompts import PromptSet

pytestmark = pytest.mark.timeout(300)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(2**40, 2**70), st.booleans()
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)
_coord = st.one_of(
    st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
)
_prompt_entry = st.fixed_dictionaries(
    {},
    optional={
        "frame": st.one_of(st.integers(-3, 20), _scalars),
        "object": st.one_of(st.integers(-3, 5), _scalars),
        "points": st.one_of(st.lists(st.lists(_coord, max_size=3), max_size=3), _json),
        "labels": st.one_of(st.lists(st.one_of(st.integers(-1, 2), _scalars), max_size=3), _json),
        "box": st.one_of(st.lists(_coord, max_size=5), _json),
        "mask": st.one_of(
            st.fixed_dictionaries(
                {
                    "size": st.lists(st.one_of(st.integers(-2, 6), _number), max_size=3),
                    "counts": st.lists(st.one_of(st.integers(-3, 40), _number), max_size=6),
                }
            ),
            _json,
        ),
    },
)
_object_entry = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.integers(-2, 4), _scalars),
        "name": _scalars,
        "color": st.one_of(st.just("#ff8800"), st.text(max_size=8), _scalars),
    },
)
_prompt_document = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), st.integers(-1, 3), _scalars),
        "objects": st.one_of(st.lists(_object_entry, max_size=3), _json),
        "prompts": st.one_of(st.lists(_prompt_entry, max_size=4), _json),
        "metadata": _json,
    },
)


def _load_text(text: str | bytes, suffix: str) -> object:
    fd, name = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
        return Prompts.load(name)
    finally:
        os.unlink(name)


def _valid_or_sam2v_error(call) -> object | None:
    try:
        return call()
    except Sam2vError:
        return None


@FUZZ
@given(document=_prompt_document)
def test_prompt_json_structure_fuzz(document):
    text = json.dumps(document, allow_nan=True)
    loaded = _valid_or_sam2v_error(lambda: _load_text(text, ".json"))
    if loaded is not None:
        assert isinstance(loaded, PromptSet) and len(loaded) > 0
        again = Prompts.from_json_dict(json.loads(json.dumps(loaded.to_json_dict())))
        assert again == loaded  # whatever parses, round-trips


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_prompt_json_bytes_fuzz(raw):
    _valid_or_sam2v_error(lambda: _load_text(raw, ".json"))


_cell = st.one_of(
    st.integers(-3, 200).map(str),
    st.floats().map(str),
    st.text(max_size=4),
    st.sampled_from(
        ["", "nan", "inf", "1e400", " 3 ", "=1+1", "0x10", "a\rb", '"', 'x"y', '"q"', "\n", "\x00"]
    ),
)
_csv_row = st.lists(_cell, min_size=0, max_size=7)
_csv_header = st.one_of(
    st.just(["frame", "object", "x", "y", "label", "name"]),
    st.just(["frame", "object", "x", "y"]),
    st.permutations(["frame", "object", "x", "y", "label"]),
    st.lists(st.text(max_size=5), max_size=6),
)


@FUZZ
@given(
    header=_csv_header,
    rows=st.lists(_csv_row, max_size=6),
    quote=st.sampled_from(["", '"', "\r\n", "\x00"]),
)
def test_csv_click_importer_fuzz(header, rows, quote):
    lines = [",".join(header)] + [",".join(row) for row in rows]
    text = "\n".join(lines) + quote
    loaded = _valid_or_sam2v_error(lambda: _load_text(text, ".csv"))
    if loaded is not None:
        assert len(loaded) > 0
        for prompt in loaded:
            assert np.isfinite(prompt.points).all() and (prompt.points >= 0).all()
            assert set(prompt.labels.tolist()) <= {0, 1}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from tests.reliability.media import write_noise_mp4

    path = tmp_path_factory.mktemp("fuzz-video") / "clip.mp4"
    write_noise_mp4(path, n_frames=12, shape=(32, 32))
    return path


def _index_strategy(path: Path, stat: os.stat_result):
    ints = st.lists(st.integers(-5, 20_000), max_size=14)
    base = {
        "format": INDEX_FORMAT,
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    shaped = st.fixed_dictionaries(
        {
            **{k: st.just(v) for k, v in base.items()},
            "pts": st.one_of(ints.map(sorted), ints, _json),
            "keyframes": st.one_of(st.just([0]), ints.map(sorted), _json),
            "time_base": st.one_of(
                st.just([1, 10240]), st.lists(st.integers(-2, 3), max_size=3), _json
            ),
        },
        optional={"by_count": st.one_of(st.booleans(), _json), "fps": _json, "codec": _json},
    )
    return st.one_of(shaped, _json)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_video_index_cache_reader_fuzz(clip, data, tmp_path_factory):
    """A cache file with any content is ignored or used; reading still gives frames or
    a ``Sam2vError``."""
    stat = clip.stat()
    index = data.draw(_index_strategy(clip, stat))
    cache = tmp_path_factory.getbasetemp() / "fuzz-index.json"
    cache.write_text(json.dumps(index, allow_nan=True))
    loaded = load_index(cache, path=clip, stat=stat)
    assert loaded is None or isinstance(loaded, dict)
    if loaded is None:
        return
    from napari_sam2v.io import video as video_module

    original = video_module._cache_file
    video_module._cache_file = lambda path, stat: cache
    try:
        source = _valid_or_sam2v_error(lambda: PyAVSource(clip))
        if source is not None:
            for i in (0, source.n_frames - 1):
                frame = _valid_or_sam2v_error(lambda i=i: source[i])
                assert frame is None or frame.shape == source.shape[1:]
            source.close()
    finally:
        video_module._cache_file = original


@FUZZ
@given(raw=st.binary(max_size=300))
def test_video_index_cache_bytes_fuzz(clip, raw, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "fuzz-bytes.json"
    cache.write_bytes(raw)
    assert load_index(cache, path=clip, stat=clip.stat()) is None


@FUZZ
@given(names=st.lists(st.text(max_size=6), min_size=1, max_size=3))
@example(names=["\r", "\t", "'\r"])  # guarded, then stripped of the guarded character
def test_prompt_csv_round_trips_any_object_name(names):
    """Names written to a click CSV come back as written (up to newline translation).

    The formula guard (a ``'`` before ``=``, ``+``, ...) is taken off on reading, so
    only a name that itself began with ``'=`` (or ``'+``, ...) loses that apostrophe.
    """
    from napari_sam2v.prompts import Prompt
    from napari_sam2v.types import ObjectInfo

    objects = [ObjectInfo(i + 1, name) for i, name in enumerate(names)]
    prompts = Prompts(objects, [Prompt(0, o.id, points=[[1, 2]]) for o in objects])
    loaded = Prompts._from_csv_text(prompts.to_csv_text(), "names.csv")
    assert loaded.object_ids == prompts.object_ids
    for before, after in zip(prompts.objects, loaded.objects, strict=True):
        written = before.name
        if written[:1] == "'" and written[1:2] in ("=", "+", "-", "@", "\t", "\r"):
            written = written[1:]  # indistinguishable from a guarded name
        assert after.name == (written.strip() or f"object {after.id}"), (before.name, after.name)
