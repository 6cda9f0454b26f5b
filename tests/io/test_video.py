"""open_video(): camera videos through PyAV (index, cache, seeking, errors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_sam2v.errors import InputFileNotFoundError, VideoReadError
from napari_sam2v.io import VideoSource, open_video
from napari_sam2v.io.video import PyAVSource, load_index
from tests.io.conftest import corner_index, write_mp4


def test_mp4_shape_metadata_and_sequential_frames(mp4):
    video = open_video(mp4)
    assert isinstance(video, PyAVSource)
    assert video.shape == (24, 48, 64, 3) and video.dtype == np.uint8
    assert len(video) == 24
    meta = video.metadata
    assert meta.kind == "video" and meta.source == str(mp4)
    assert meta.fps == pytest.approx(10.0)
    assert meta.calibration.frame_interval == pytest.approx(0.1)
    assert meta.calibration.time_unit == "s"
    assert not meta.variable_frame_rate
    assert [corner_index(video[i]) for i in range(24)] == list(range(24))


def test_random_access_matches_sequential(mp4):
    sequential = open_video(mp4)
    frames = [sequential[i] for i in range(24)]
    shuffled = open_video(mp4)
    order = np.random.default_rng(1).permutation(24)
    for i in order:
        np.testing.assert_array_equal(shuffled[int(i)], frames[int(i)])
    np.testing.assert_array_equal(shuffled[-1], frames[23])


def test_dask_view_has_one_chunk_per_frame(mp4):
    video = open_video(mp4)
    arr = video.to_dask()
    assert arr.shape == video.shape
    assert arr.chunks[0] == (1,) * 24
    np.testing.assert_array_equal(arr[5:7].compute(), np.stack([video[5], video[6]]))


def test_channel_selects_one_colour(mp4):
    video = open_video(mp4, channel=1)
    assert video.shape == (24, 48, 64)
    np.testing.assert_array_equal(video[3], open_video(mp4)[3][..., 1])


def test_index_is_cached_and_a_corrupt_cache_is_rebuilt(mp4, index_cache):
    open_video(mp4)
    files = list(index_cache.glob("*.json"))
    assert len(files) == 1
    cached = json.loads(files[0].read_text())
    assert len(cached["pts"]) == 24 and cached["keyframes"][0] == 0
    for garbage in (
        "{not json",
        json.dumps({**cached, "pts": cached["pts"][:3]}),
        json.dumps({**cached, "keyframes": [5, 2]}),
        "[]",
        "\x00\xff",
    ):
        files[0].write_text(garbage)
        video = open_video(mp4)
        assert len(video) == 24 and corner_index(video[10]) == 10
    assert json.loads(files[0].read_text())["pts"] == cached["pts"]


def test_variable_frame_rate_uses_timestamps(tmp_path, index_cache):
    path = tmp_path / "vfr.mkv"
    write_mp4(path, n_frames=12, pts_step=[100, 300])
    video = open_video(path)
    assert len(video) == 12
    assert video.metadata.variable_frame_rate
    np.testing.assert_allclose(np.diff(video.timestamps)[:4], [0.1, 0.3, 0.1, 0.3])
    assert [corner_index(video[i]) for i in (11, 0, 6)] == [11, 0, 6]


def test_truncated_mp4_is_a_clear_error(mp4, tmp_path):
    data = mp4.read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError, match="truncated.mp4"):
        open_video(bad)


def test_corrupt_middle_segment_reports_bad_frames(tmp_path, index_cache):
    path = tmp_path / "corrupt.avi"
    write_mp4(path, n_frames=30)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 1500] = bytes(np.random.default_rng(0).integers(0, 256, 1500, np.uint8))
    path.write_bytes(bytes(data))
    video = open_video(path)
    bad = video.verify()
    assert all(0 <= b < len(video) for b in bad)
    readable = 0
    for i in range(len(video)):
        try:
            frame = video[i]
        except VideoReadError as exc:
            assert "corrupt.avi" in str(exc) and f"frame {i}" in str(exc)
        else:
            assert frame.shape == video.shape[1:]
            readable += 1
    assert readable >= len(video) // 2


def test_zero_and_one_frame_videos(tmp_path, index_cache):
    one = tmp_path / "one.mp4"
    write_mp4(one, n_frames=1)
    with pytest.raises(VideoReadError, match="only 1 frame"):
        open_video(one)
    import av

    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    with pytest.raises(VideoReadError, match="empty.mkv"):
        open_video(empty)


def test_missing_empty_and_unsupported_files(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="nope.mp4"):
        open_video(tmp_path / "nope.mp4")
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty"):
        open_video(tmp_path / "zero.mp4")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VideoReadError, match="unsupported file type"):
        open_video(tmp_path / "notes.txt")
    (tmp_path / "fake.mp4").write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoReadError, match="fake.mp4"):
        open_video(tmp_path / "fake.mp4")


def test_out_of_range_frame(mp4):
    video = open_video(mp4)
    assert isinstance(video, VideoSource)
    with pytest.raises(IndexError, match="out of range"):
        video[24]


def test_avi_without_reliable_timestamps(tmp_path, index_cache):
    path = tmp_path / "clip.avi"
    write_mp4(path, n_frames=20)
    video = open_video(path)
    assert [corner_index(video[i]) for i in range(20)] == list(range(20))
    assert [corner_index(open_video(path)[i]) for i in (17, 3, 12, 0)] == [17, 3, 12, 0]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(
                [
                    "format",
                    "path",
                    "size",
                    "mtime_ns",
                    "pts",
                    "keyframes",
                    "time_base",
                    "by_count",
                    "fps",
                ]
            ),
            st.one_of(
                st.integers(-3, 30),
                st.lists(st.integers(-3, 30), max_size=6),
                st.text(max_size=4),
                st.booleans(),
                st.none(),
            ),
            max_size=9,
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_fuzz_index_cache_reader(tmp_path, data):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    cache = tmp_path / "cache.json"
    cache.write_bytes(data)
    assert load_index(cache, path=video, stat=video.stat()) is None


def test_sources_pickle_for_distributed_workers(mp4, tmp_path):
    import pickle

    import tifffile

    video = open_video(mp4)
    frame = video[7]
    clone = pickle.loads(pickle.dumps(video))
    np.testing.assert_array_equal(clone[7], frame)
    tifffile.imwrite(tmp_path / "s.tif", np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8))
    stack = pickle.loads(pickle.dumps(open_video(tmp_path / "s.tif")))
    assert int(stack[2][0, 0]) == 128
