"""The synthetic reef clip: generator, ground truth, shipped files and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from napari_sam2v.errors import InputError
from napari_sam2v.samples import load_reef, sample_data_dir
from napari_sam2v.samples.reef import (
    REEF_N_FRAMES,
    REEF_SHAPE,
    ReefClip,
    encode_mp4,
    main,
    render_reef,
    write_reef,
)

# Tolerance of the shipped H.264 (yuv420p, crf 16) against the rendered frames: the
# error comes from chroma subsampling and the sensor noise the encoder smooths away.
MP4_MIN_PSNR_DB = 30.0
MP4_MAX_MEAN_ABS_ERROR = 5.0


@pytest.fixture(scope="module")
def clip() -> ReefClip:
    return render_reef()


def _ellipse(pose, shape: tuple[int, int]) -> np.ndarray:
    """Independent rasterisation of the body: pixel centres inside the ellipse."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    dx, dy = cols - pose.cx, rows - pose.cy
    cos, sin = math.cos(pose.heading), math.sin(pose.heading)
    along, across = dx * cos + dy * sin, dy * cos - dx * sin
    return along**2 * pose.half_height**2 + across**2 * pose.half_length**2 <= (
        pose.half_length**2 * pose.half_height**2
    )


def _triangle(vertices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Independent rasterisation of a triangle with barycentric coordinates."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(float)
    (x0, y0), (x1, y1), (x2, y2) = vertices
    det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
    l0 = ((y1 - y2) * (cols - x2) + (x2 - x1) * (rows - y2)) / det
    l1 = ((y2 - y0) * (cols - x2) + (x0 - x2) * (rows - y2)) / det
    eps = 1e-12
    return (l0 >= -eps) & (l1 >= -eps) & (1 - l0 - l1 >= -eps)


def _tail_vertices(pose) -> np.ndarray:
    back = pose.heading + math.pi + pose.tail_angle
    root = (
        pose.cx - 0.8 * pose.half_length * math.cos(pose.heading),
        pose.cy - 0.8 * pose.half_length * math.sin(pose.heading),
    )
    rear = (
        root[0] + pose.tail_length * math.cos(back),
        root[1] + pose.tail_length * math.sin(back),
    )
    off = (-pose.tail_half_width * math.sin(back), pose.tail_half_width * math.cos(back))
    return np.array(
        [root, (rear[0] + off[0], rear[1] + off[1]), (rear[0] - off[0], rear[1] - off[1])]
    )


def test_clip_layout(clip: ReefClip) -> None:
    assert clip.frames.shape == (REEF_N_FRAMES, *REEF_SHAPE, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.labels.shape == (REEF_N_FRAMES, *REEF_SHAPE)
    assert set(np.unique(clip.labels)) == {0, 1, 2, 3}
    assert [o.name for o in clip.objects] == ["fish 1", "fish 2", "fish 3"]
    # Water gradient: the top rows are brighter in green than the bottom water rows.
    top, mid = clip.frames[:, :20].mean(axis=(0, 1, 2)), clip.frames[:, 90:110].mean(axis=(0, 1, 2))
    assert top[1] > mid[1] + 20
    assert top[2] > top[0] and mid[2] > mid[0]  # blue-green, not red


def test_caustics_move_and_coral_is_static(clip: ReefClip) -> None:
    background = clip.labels[0] == 0
    water = background.copy()
    water[150:] = False
    change = np.abs(clip.frames[10].astype(float) - clip.frames[0])[water].mean()
    assert change > 5.0  # the light pattern moves
    coral = np.zeros(REEF_SHAPE, bool)
    coral[250:] = True  # rock bottom: never crossed by a fish
    assert not (clip.labels[:, 250:] > 0).any()
    diff = np.abs(clip.frames[10].astype(float) - clip.frames[0])[coral].mean()
    assert diff < change


def test_shipped_labels_equal_the_generator(clip: ReefClip) -> None:
    with np.load(sample_data_dir() / "reef" / "reef_labels.npz") as archive:
        shipped = archive["labels"]
    assert shipped.dtype == clip.labels.dtype
    np.testing.assert_array_equal(shipped, clip.labels)


def test_shipped_prompts_equal_the_generator(clip: ReefClip) -> None:
    data = json.loads((sample_data_dir() / "reef" / "reef_prompts.json").read_text())
    assert data["version"] == 1
    assert data["prompts"] == clip.prompts
    assert data["objects"] == [{"id": o.id, "name": o.name, "color": o.color} for o in clip.objects]


def test_decoded_mp4_is_close_to_the_render(clip: ReefClip) -> None:
    sample = load_reef()
    assert sample.frames.shape == clip.frames.shape
    err = sample.frames.astype(np.float64) - clip.frames
    mse = (err**2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(255.0**2 / mse)
    assert psnr.min() >= MP4_MIN_PSNR_DB
    assert np.abs(err).mean(axis=(1, 2, 3)).max() <= MP4_MAX_MEAN_ABS_ERROR


def test_unoccluded_fish_match_their_geometry(clip: ReefClip) -> None:
    h, w = REEF_SHAPE
    checked = 0
    for t, poses in enumerate(clip.poses):
        masks = [_ellipse(p, REEF_SHAPE) | _triangle(_tail_vertices(p), REEF_SHAPE) for p in poses]
        for i, (pose, mask) in enumerate(zip(poses, masks, strict=True)):
            others = np.logical_or.reduce([m for j, m in enumerate(masks) if j != i])
            rows, cols = np.nonzero(mask)
            inside = rows.size and rows.min() > 0 and cols.min() > 0
            inside = inside and rows.max() < h - 1 and cols.max() < w - 1
            if not inside or (mask & others).any():
                continue
            fish_id = clip.fish[i].info.id
            visible = clip.labels[t] == fish_id
            np.testing.assert_array_equal(visible, mask)
            # The body's pixel count is its ellipse area up to boundary pixels.
            body = _ellipse(pose, REEF_SHAPE)
            perimeter = 2 * math.pi * math.sqrt((pose.half_length**2 + pose.half_height**2) / 2)
            assert abs(int(body.sum()) - pose.body_area()) < 0.5 * perimeter
            checked += 1
    assert checked > 100


def test_one_fish_leaves_and_comes_back(clip: ReefClip) -> None:
    counts = (clip.labels[:, :, :, None] == np.array([1, 2, 3])).sum(axis=(1, 2))
    absent = [i for i in range(3) if (counts[:, i] == 0).any()]
    assert absent == [2]
    gone = np.flatnonzero(counts[:, 2] == 0)
    assert gone[0] > 0 and gone[-1] < REEF_N_FRAMES - 1
    assert np.array_equal(gone, np.arange(gone[0], gone[-1] + 1))  # one continuous absence
    assert (counts[: gone[0], 2] > 0).all() and (counts[gone[-1] + 1 :, 2] > 0).all()
    for t in gone:  # really outside the frame, not hidden behind another fish
        assert clip.poses[t][2].cx - clip.poses[t][2].half_length > REEF_SHAPE[1]
    assert (counts[:, :2] > 0).all()


def test_nearer_fish_occludes_where_fish_overlap(clip: ReefClip) -> None:
    overlapping = 0
    for t, poses in enumerate(clip.poses):
        near = _ellipse(poses[0], REEF_SHAPE) | _triangle(_tail_vertices(poses[0]), REEF_SHAPE)
        far = _ellipse(poses[1], REEF_SHAPE) | _triangle(_tail_vertices(poses[1]), REEF_SHAPE)
        both = near & far
        if both.sum() > 20:
            overlapping += 1
            assert (clip.labels[t][both] == 1).all()
            assert 0 < (clip.labels[t] == 2).sum() < far.sum()
    assert overlapping >= 3


def test_a_fish_turns_around(clip: ReefClip) -> None:
    headings = np.unwrap([poses[1].heading for poses in clip.poses])
    assert np.ptp(headings) > math.radians(120)


def test_prompts_click_deep_inside_the_first_visible_frame(clip: ReefClip) -> None:
    assert {p["object"] for p in clip.prompts} == {1, 2, 3}
    for prompt in clip.prompts:
        mask = clip.labels[prompt["frame"]] == prompt["object"]
        assert prompt["frame"] == int(
            np.flatnonzero((clip.labels == prompt["object"]).any((1, 2)))[0]
        )
        assert 1 <= len(prompt["points"]) <= 2 and prompt["labels"] == [1] * len(prompt["points"])
        depth = ndimage.distance_transform_edt(mask)
        for x, y in prompt["points"]:
            assert mask[y, x] and depth[y, x] >= 5


def test_prompts_parse_with_the_prompt_reader() -> None:
    prompt_files = pytest.importorskip("napari_sam2v.io.prompt_files")
    prompts = prompt_files.Prompts.load(load_reef().prompts_path)
    assert [o.name for o in prompts.objects] == ["fish 1", "fish 2", "fish 3"]
    assert len(prompts.prompts) == 3


def test_write_reef_round_trip(clip: ReefClip, tmp_path: Path) -> None:
    paths = write_reef(tmp_path / "out", clip=clip)
    assert set(paths) == {"video", "labels", "prompts"}
    with np.load(paths["labels"]) as archive:
        np.testing.assert_array_equal(archive["labels"], clip.labels)
    assert paths["video"].stat().st_size < 2_000_000


def test_write_reef_refuses_a_file_as_folder(tmp_path: Path, capsys) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(InputError, match="not a folder"):
        write_reef(target, clip=None)
    assert main(["--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_encode_mp4_rejects_bad_frames(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="even"):
        encode_mp4(np.zeros((2, 31, 32, 3), np.uint8), tmp_path / "odd.mp4")
    with pytest.raises(InputError, match="uint8"):
        encode_mp4(np.zeros((2, 32, 32), np.uint8), tmp_path / "gray.mp4")
    assert not (tmp_path / "odd.mp4").exists()


def test_render_rejects_bad_sizes() -> None:
    with pytest.raises(InputError, match="n_frames"):
        render_reef(n_frames=1)
    with pytest.raises(InputError, match="shape"):
        render_reef(shape=(32, 32))
