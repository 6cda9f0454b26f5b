"""Store-level faults: two writers, read-only and full disks, newer formats, 8K frames."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from napari_sam2v.engines.base import FrameResult, ObjectScore
from napari_sam2v.errors import (
    DamagedStoreError,
    StoreError,
    StoreExistsError,
    StoreLockedError,
    StoreVersionError,
)
from napari_sam2v.io import open_video
from napari_sam2v.store import ResultStore, open_result
from napari_sam2v.store.pipeline import track
from tests.reliability.media import disk_prompts, tree_digest

pytestmark = pytest.mark.timeout(120)


def _copy(store: Path, tmp_path: Path, name: str = "copy.zarr") -> Path:
    out = tmp_path / name
    shutil.copytree(store, out)
    return out


def _track(workdir: Path, out: Path, **kwargs):
    """The workdir's video and prompts tracked into ``out`` by the classic engine."""
    return track(workdir / "video.npy", workdir / "prompts.json", out, engine="classic", **kwargs)


def test_second_writer_in_this_process_is_refused(finished_store, tmp_path, workdir):
    store = _copy(finished_store, tmp_path)
    first = ResultStore.open(store)
    try:
        with pytest.raises(StoreLockedError, match=rf"is being written by process {os.getpid()}"):
            ResultStore.open(store)
        with pytest.raises(StoreLockedError, match="is being written"):
            _track(workdir, store, overwrite=True)
        with pytest.raises(StoreLockedError, match="is being written"):
            _track(workdir, store, resume=True)
    finally:
        first.close()
    assert open_result(store).complete  # the refused writers changed nothing
    ResultStore.open(store).close()  # and the lock is free again


def test_writer_in_another_live_process_is_refused_and_a_dead_one_recovered(
    finished_store, tmp_path
):
    store = _copy(finished_store, tmp_path)
    lock = store / "sam2v" / "lock.json"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        with pytest.raises(StoreLockedError, match=rf"process {sleeper.pid} on "):
            ResultStore.open(store)
    finally:
        sleeper.kill()
        sleeper.wait()
    with ResultStore.open(store) as reopened:  # the owner died: the stale lock is recovered
        assert reopened.frames_done.all()
    assert not lock.exists()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from napari_sam2v.store.journal import StoreLock
StoreLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="flock locks are POSIX")
def test_a_lock_is_held_while_its_writer_lives_whatever_pid_it_names(finished_store, tmp_path):
    """A restarted container reuses pids: a live pid in a lock nobody holds is stale."""
    store = _copy(finished_store, tmp_path)
    lock = store / "sam2v" / "lock.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(StoreLockedError, match=rf"process {holder.pid} on "):
            ResultStore.open(store)
    finally:
        holder.kill()
        holder.wait()
    # The killed writer left its file; as after a container restart, its pid now
    # names a live process (this one), but nobody holds the lock.
    me = {"pid": os.getpid(), "host": os.uname().nodename, "time": 0, "flock": True}
    lock.write_text(json.dumps(me))
    with ResultStore.open(store) as reopened:
        assert reopened.frames_done.all()
        with pytest.raises(StoreLockedError):  # and now it is held again, by this process
            ResultStore.open(store)
    assert not lock.exists()


def test_read_only_output_directory(tmp_path, workdir, monkeypatch):
    """Root ignores permission bits, so ``mkdir`` is made to fail as for a read-only dir."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):  # root: simulate what a normal user gets
            original = Path.mkdir

            def mkdir(self: Path, *args: object, **kwargs: object) -> None:
                if self.parent == folder:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
                original(self, *args, **kwargs)

            monkeypatch.setattr(Path, "mkdir", mkdir)
        expected = r"r\.zarr: cannot create the result store .*ermission"
        with pytest.raises(StoreError, match=expected):
            _track(workdir, folder / "r.zarr")
    finally:
        folder.chmod(0o755)
    assert not any(folder.iterdir()), "a half-created store was left behind"


def test_disk_full_with_a_failing_writer_keeps_finished_frames_and_resumes(
    tmp_path, workdir, finished_store, monkeypatch
):
    out = tmp_path / "full.zarr"
    original = ResultStore._write_chunks

    def disk_full_at_frame_7(self: ResultStore, result: FrameResult) -> object:
        if result.frame >= 7:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, result)

    monkeypatch.setattr(ResultStore, "_write_chunks", disk_full_at_frame_7)
    with pytest.raises(StoreError, match="No space left on device"):
        _track(workdir, out)
    partial = open_result(out)
    assert partial.status == "failed" and "No space left" in partial.metadata["state"]["error"]
    assert partial.frames_done[:7].all() and not partial.frames_done[7:].any()
    monkeypatch.setattr(ResultStore, "_write_chunks", original)
    done = _track(workdir, out, resume=True)
    assert done.complete
    np.testing.assert_array_equal(
        np.asarray(done.labels), np.asarray(open_result(finished_store).labels)
    )


@contextlib.contextmanager
def _small_tmpfs(path: Path, size_kib: int) -> Iterator[Path]:
    path.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root on Linux")
def test_real_full_disk_on_a_small_tmpfs(tmp_path, workdir, finished_store):
    """A real ENOSPC: the store fills a 1 MiB tmpfs, fails cleanly and resumes elsewhere."""
    frames = np.load(workdir / "video.npy")
    noisy = np.random.default_rng(1).integers(0, 65535, (60, 96, 128), dtype=np.uint16)
    noisy[:12] = frames
    with _small_tmpfs(tmp_path / "disk", 1024) as disk:
        out = disk / "r.zarr"
        with pytest.raises(StoreError, match="No space left on device"):
            track(noisy, workdir / "prompts.json", out, engine="classic")
        assert not out.exists(), "the failed creation left a broken store on the full disk"
        small = frames[:12]
        first = track(small, workdir / "prompts.json", out, engine="classic", copy_image=False)
        assert first.complete
        filler = disk / "filler.bin"
        with pytest.raises(OSError), open(filler, "wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        before = tree_digest(out)
        with pytest.raises(StoreError):
            track(
                small,
                workdir / "prompts.json",
                disk / "second.zarr",
                engine="classic",
                copy_image=False,
            )
        assert tree_digest(out) == before, "a failure on a full disk changed another store"
        filler.unlink()
        np.testing.assert_array_equal(
            np.asarray(first.labels), np.asarray(open_result(finished_store).labels)
        )


def test_store_from_a_newer_format_version(finished_store, tmp_path, workdir):
    store = _copy(finished_store, tmp_path)
    attrs = store / ".zattrs"
    data = json.loads(attrs.read_text())
    data["napari_sam2v"]["format_version"] = 99
    attrs.write_text(json.dumps(data))
    before = tree_digest(store)
    with pytest.raises(StoreVersionError, match=r"format version 99, newer than this"):
        open_result(store)
    with pytest.raises(StoreVersionError, match="update napari-sam2v"):
        _track(workdir, store, resume=True)
    assert tree_digest(store) == before


def test_a_damaged_store_is_one_clear_error_everywhere(finished_store, tmp_path, workdir):
    """A corrupt chunk or a missing array file: measure, exports and reopening say so."""
    from napari_sam2v.analysis import measure
    from napari_sam2v.store.exports import export_coco, export_png, export_tiff

    corrupt = _copy(finished_store, tmp_path, "corrupt.zarr")
    chunk = next(
        p
        for p in sorted((corrupt / "labels").rglob("*"))
        if p.is_file() and p.parent.name.isdigit() and p.stat().st_size > 0 and p.name.isdigit()
    )
    chunk.write_bytes(b"xx")
    frame = int(chunk.relative_to(corrupt / "labels" / "objects" / "0").parts[0])
    damaged = (
        rf"corrupt\.zarr: frame {frame} of its labels cannot be read .* the store is damaged"
        r".*: track it again with --resume"
    )
    with pytest.raises(DamagedStoreError, match=damaged):
        measure(open_result(corrupt))
    for export in (
        lambda: export_tiff(corrupt, tmp_path / "l.tif"),
        lambda: export_png(corrupt, tmp_path / "png"),
        lambda: export_coco(corrupt, tmp_path / "c.json"),
    ):
        with pytest.raises(DamagedStoreError, match=damaged):
            export()
    missing = _copy(finished_store, tmp_path, "missing.zarr")
    (missing / "labels" / "objects" / "0" / ".zarray").unlink()
    with pytest.raises(DamagedStoreError, match="label image cannot be read .*: track again,"):
        open_result(missing).labels_array(writable=False)
    with pytest.raises(DamagedStoreError, match="missing.zarr: its label image cannot be read"):
        ResultStore.open(missing)
    stateless = _copy(finished_store, tmp_path, "stateless.zarr")
    (stateless / "sam2v" / "state.json").write_text("{")
    with pytest.raises(DamagedStoreError, match="can still be measured and exported"):
        ResultStore.open(stateless)
    assert len(measure(open_result(stateless)).frames) > 0


@pytest.mark.parametrize("status", ["complete", "interrupted"])
def test_resuming_writes_finished_frames_again_whose_chunks_cannot_be_read(
    finished_store, tmp_path, workdir, status
):
    """The journal says done, the chunk says otherwise: the chunk wins."""
    store = _copy(finished_store, tmp_path, "corrupt.zarr")
    if status != "complete":
        state = store / "sam2v" / "state.json"
        state.write_text(json.dumps({**json.loads(state.read_text()), "status": status}))
    chunks = sorted((store / "labels" / "objects" / "0").glob("[0-9]*/0/0"))
    damaged = sorted(int(p.parts[-3]) for p in chunks[1:3])
    for frame in damaged:
        (store / "labels" / "objects" / "0" / str(frame) / "0" / "0").write_bytes(b"xx")
    untouched = {p: p.stat().st_mtime_ns for p in chunks if int(p.parts[-3]) not in damaged}
    listed = ", ".join(map(str, damaged))
    with pytest.warns(UserWarning, match=rf"2 finished frame\(s\) .* frames {listed}\); they are"):
        resumed = _track(workdir, store, resume=True)
    np.testing.assert_array_equal(
        np.asarray(resumed.labels), np.asarray(open_result(finished_store).labels)
    )
    assert resumed.complete
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # the rest not rewritten


def test_existing_output_needs_resume_or_overwrite(finished_store, tmp_path, workdir):
    store = _copy(finished_store, tmp_path)
    before = tree_digest(store)
    with pytest.raises(StoreExistsError, match=r"already holds a result store: resume it") as err:
        _track(workdir, store)
    assert err.value.path == store
    assert isinstance(err.value, FileExistsError)  # for callers catching the built-in
    assert tree_digest(store) == before


def test_an_empty_output_folder_is_used_without_overwrite(tmp_path, workdir):
    folder = tmp_path / "made_beforehand"
    folder.mkdir()
    result = _track(workdir, folder)
    assert result.complete and open_result(folder).frames_done.all()


def test_overwrite_never_deletes_a_folder_that_is_not_a_store(tmp_path, workdir):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("months of work")
    for overwrite in (True, False):  # never "resume it": it is not a store
        with pytest.raises(StoreError, match="is not a napari-sam2v result store; choose another"):
            _track(workdir, folder, overwrite=overwrite)
    assert (folder / "chapter1.tex").read_text() == "months of work"


def test_resume_with_other_prompts_is_refused(finished_store, tmp_path, workdir):
    store = _copy(finished_store, tmp_path)
    before = tree_digest(store)
    other = disk_prompts()
    other.prompts.pop()
    with pytest.raises(StoreError, match="cannot resume, the prompts differ"):
        track(workdir / "video.npy", other, store, engine="classic", resume=True)
    assert tree_digest(store) == before


def test_open_result_of_things_that_are_not_stores(tmp_path):
    import zarr

    with pytest.raises(StoreError, match="no result store here"):
        open_result(tmp_path / "missing.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match=r"not a napari-sam2v result store \(no 'napari_sam2v'"):
        open_result(tmp_path / "plain.zarr")


def test_8k_frames_are_read_lazily_and_stored_in_tiles(tmp_path):
    """8K input works: one frame in memory at a time, labels chunked 1024 x 1024."""
    import zarr

    shape = (3, 4320, 7680)
    arr = zarr.create_array(
        str(tmp_path / "8k.zarr"), shape=shape, chunks=(1, 1080, 1920), dtype="u1", fill_value=0
    )
    arr[1, 2000:2100, 3000:3100] = 200
    video = open_video(tmp_path / "8k.zarr")
    frame_bytes = shape[1] * shape[2]
    tracemalloc.start()
    try:
        frame = video[1]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frame.shape == shape[1:] and frame[2050, 3050] == 200
    assert peak < 3 * frame_bytes, f"reading one 8K frame allocated {peak / 1e6:.0f} MB"
    store = ResultStore.create(
        tmp_path / "r.zarr", n_frames=3, frame_shape=shape[1:], prompts=disk_prompts(), fsync=False
    )
    try:
        mask = np.zeros(shape[1:], bool)
        mask[2000:2100, 3000:3100] = True
        store.write_frame(FrameResult(1, {1: mask}, {1: ObjectScore(3.0, 0.9)}))
    finally:
        store.close()
    result = open_result(tmp_path / "r.zarr")
    assert result.labels_array(writable=False).chunks == (1, 1024, 1024)
    assert int(np.asarray(result.labels[1]).sum()) == 100 * 100
    assert result.frames_done.tolist() == [False, True, False]


def test_lock_of_a_killed_but_unreaped_writer_is_recovered(finished_store, tmp_path):
    """A SIGKILLed writer may linger as a zombie (containers whose init never reaps
    orphans); it cannot write any more, so its lock is stale."""
    import time

    store = _copy(finished_store, tmp_path)
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        zombie.kill()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").exists() and time.monotonic() < deadline:
            state = Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0]
            if state == "Z":
                break
            time.sleep(0.01)
        (store / "sam2v" / "lock.json").write_text(
            json.dumps({"pid": zombie.pid, "host": os.uname().nodename})
        )
        with ResultStore.open(store) as reopened:
            assert reopened.frames_done.all()
    finally:
        zombie.wait()
