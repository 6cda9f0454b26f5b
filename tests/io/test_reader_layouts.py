"""open_video(): image folders with mixed pixel types or hidden files, and bioformats2raw
OME-Zarr layouts."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from napari_sam2v.errors import VideoReadError
from napari_sam2v.io import open_video

# -- bug 3: mixed bit depths and colour modes ---------------------------------------------


def test_folder_mixing_uint16_tiff_and_uint8_png_is_refused(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    tifffile.imwrite(folder / "img_0.tif", np.full((10, 12), 4000, np.uint16))
    Image.fromarray(np.full((10, 12), 200, np.uint8)).save(folder / "img_1.png")
    with pytest.raises(VideoReadError, match=r"img_1\.png is uint8 but img_0\.tif is uint16"):
        open_video(folder)


def test_folder_mixing_gray_and_rgb_frames_is_refused(tmp_path):
    folder = tmp_path / "modes"
    folder.mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(folder / "a0.png")
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(folder / "a1.png")
    with pytest.raises(VideoReadError, match=r"a1\.png is uint8 but a0\.png is uint8 with 3"):
        open_video(folder, channel=0)


def test_palette_and_rgb_frames_mix(tmp_path):
    """A palette PNG is read as RGB, so it goes with RGB frames."""
    folder = tmp_path / "palette"
    folder.mkdir()
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(folder / "a0.png")
    Image.fromarray(np.zeros((10, 12), np.uint8)).convert("P").save(folder / "a1.png")
    video = open_video(folder)
    assert video.shape == (2, 10, 12, 3) and video[1].shape == (10, 12, 3)


def test_frame_replaced_by_another_type_after_opening_is_refused_on_reading(tmp_path):
    folder = tmp_path / "changed"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((10, 12), i, np.uint8)).save(folder / f"f{i}.png")
    video = open_video(folder)
    Image.fromarray(np.full((10, 12), 1000, np.uint16)).save(folder / "f2.png")  # 16-bit
    with pytest.raises(VideoReadError, match=r"f2\.png.*uint16.*first frame f0\.png is uint8"):
        video[2]


# -- bug 4: hidden files ------------------------------------------------------------------


def test_hidden_and_appledouble_files_are_skipped(tmp_path):
    folder = tmp_path / "mac"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((10, 12), 10 * i, np.uint8)).save(folder / f"img_{i}.png")
        (folder / f"._img_{i}.png").write_bytes(b"\x00\x05\x16\x07" + b"\x00" * 80)
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / ".hidden.png").write_bytes(b"not a png")
    video = open_video(folder)
    assert video.shape == (3, 10, 12)
    assert video.metadata.extra["files"] == ["img_0.png", "img_1.png", "img_2.png"]
    assert int(video[2][0, 0]) == 20


# -- bug 5: bioformats2raw layout ---------------------------------------------------------


def _image_group(group: zarr.Group, data: np.ndarray) -> None:
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    group.create_array("0", shape=data.shape, chunks=(1, *data.shape[1:]), dtype=data.dtype)[:] = (
        data
    )
    write_multiscales_metadata(
        group,
        [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.4, 0.4]}]}],
        fmt=FormatV04(),
        axes=[
            {"name": "t", "type": "time"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"},
        ],
    )


@pytest.mark.parametrize("layout_attribute", [True, False])
def test_bioformats2raw_root_opens_its_first_image(tmp_path, layout_attribute):
    data = np.random.default_rng(2).integers(0, 255, (4, 10, 12)).astype(np.uint8)
    path = tmp_path / "b2r.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    if layout_attribute:
        root.attrs["bioformats2raw.layout"] = 3
    root.create_group("OME").attrs["series"] = ["0", "1"]
    _image_group(root.create_group("0"), data)
    _image_group(root.create_group("1"), data[:2])
    video = open_video(path)
    assert video.shape == (4, 10, 12) and video.metadata.source == str(path)
    assert video.metadata.extra["image_path"] == "0"
    assert video.metadata.pixel_size == pytest.approx(0.4)
    np.testing.assert_array_equal(video[3], data[3])
    assert open_video(path / "1").shape == (2, 10, 12)  # other series by their path


def test_zarr_group_without_image_zero_names_the_images(tmp_path):
    path = tmp_path / "nested.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    _image_group(root.create_group("cells"), np.zeros((3, 8, 8), np.uint8))
    match = r"nested\.zarr.*multiscales.*open .*nested\.zarr/cells"
    with pytest.raises(VideoReadError, match=match):
        open_video(path)
