"""Expected errors in worker jobs become messages; bugs are not swallowed."""

from __future__ import annotations

import pytest

from napari_sam2v._qt._jobs import Failure, _guard, _guard_gen
from napari_sam2v.errors import StoreLockedError


def _raise(exc: BaseException):
    def run() -> None:
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (StoreLockedError("clip.zarr: another writer holds the store"), "another writer"),
        (MemoryError(), "out of memory"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "out of memory"),
    ],
)
def test_expected_errors_become_failures(exc: BaseException, message: str) -> None:
    result = _guard("propagation", _raise(exc))()
    assert isinstance(result, Failure) and message in result.message


def test_bugs_are_raised() -> None:
    with pytest.raises(RuntimeError, match="index bug"):
        _guard("preview", _raise(RuntimeError("index bug")))()


def test_generator_jobs_return_their_value_or_a_failure() -> None:
    def frames():
        yield 1
        yield 2
        return "done"

    gen = _guard_gen("propagation", frames)()
    assert list(_drain(gen)) == [1, 2, "done"]

    def broken():
        yield 1
        raise StoreLockedError("locked")

    out = list(_drain(_guard_gen("propagation", broken)()))
    assert out[0] == 1 and isinstance(out[1], Failure) and out[1].message == "locked"


def _drain(gen):
    try:
        while True:
            yield next(gen)
    except StopIteration as stop:
        yield stop.value
