"""Image / CompressedImage conversions, on every image codec that imports here (numpy; cv_bridge on ROS)."""

from __future__ import annotations

import array
import sys

import cv2
import numpy as np
import pytest
from conversion_samples import raw_image, smooth_rgb, use_codec
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from fin3r_ros.conversions import (
    ConversionError,
    _compat,
    array_to_image,
    compressed_to_rgb,
    depth_image_to_array,
    depth_to_mono16_image,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image,
)

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


@pytest.fixture(params=sorted(_compat.IMAGE_CODECS))
def image_codec(request, monkeypatch):
    """Each image codec in turn, for tests that read pixels; cv_bridge skips where it does not import."""
    return use_codec(monkeypatch, "image", request.param)


# encoding -> the stored (H, W, C) pixels of RGB in that encoding
STORED = {
    "rgb8": RGB,
    "bgr8": RGB[..., ::-1],
    "8UC3": RGB[..., ::-1],
    "rgba8": np.concatenate([RGB, np.full((6, 5, 1), 9, np.uint8)], axis=-1),
    "bgra8": np.concatenate([RGB[..., ::-1], np.full((6, 5, 1), 9, np.uint8)], axis=-1),
}


@pytest.mark.parametrize("encoding", sorted(STORED))
@pytest.mark.parametrize("pad", [0, 7])
def test_colour_encodings_decode_to_the_same_rgb(encoding, pad, image_codec):
    assert np.array_equal(image_to_rgb(raw_image(STORED[encoding], encoding, pad=pad)), RGB)


@pytest.mark.parametrize("pad", [0, 3])
def test_mono8_repeats_the_grey_value(pad, image_codec):
    grey = RGB[..., 0]
    out = image_to_rgb(raw_image(grey, "mono8", pad=pad))
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    assert np.array_equal(out, np.repeat(grey[..., None], 3, axis=-1))


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_scales_by_255_over_65535_in_either_byte_order(bigendian, image_codec):
    values = np.array([[0, 1, 128, 129], [257, 32768, 65534, 65535]], dtype=np.uint16)
    out = image_to_rgb(raw_image(values, "mono16", pad=2, bigendian=bigendian))
    expected = np.array([[0, 0, 0, 1], [1, 128, 255, 255]], dtype=np.uint8)  # rint(v * 255 / 65535)
    assert np.array_equal(out, np.repeat(expected[..., None], 3, axis=-1))


def test_rgb8_rows_padded_to_a_step_that_is_not_a_whole_pixel_count(image_codec):
    wide = RNG.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)  # 15-byte rows padded to 16
    msg = raw_image(wide, "rgb8", pad=1)
    assert msg.step == 16
    assert np.array_equal(image_to_rgb(msg), wide)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 6])
def test_depth_16uc1_millimetres_to_metres_with_nan_for_zero(bigendian, pad, image_codec):
    mm = np.array([[0, 1, 1000], [1500, 65535, 0]], dtype=np.uint16)
    depth = depth_image_to_array(raw_image(mm, "16UC1", pad=pad, bigendian=bigendian))
    assert depth.dtype == np.float32 and depth.shape == (2, 3)
    assert np.array_equal(np.isnan(depth), mm == 0)
    np.testing.assert_allclose(depth[mm > 0], mm[mm > 0] / 1000.0, rtol=1e-7)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 4])
def test_depth_32fc1_non_finite_becomes_nan(bigendian, pad, image_codec):
    metres = np.array([[1.25, np.inf, -np.inf], [np.nan, 0.5, 7.0]], dtype=np.float32)
    msg = raw_image(metres, "32FC1", pad=pad, bigendian=bigendian)
    sent = bytes(msg.data)
    depth = depth_image_to_array(msg)
    assert bytes(msg.data) == sent  # the message is left as it came
    assert depth.dtype == np.float32
    assert np.array_equal(np.isnan(depth), ~np.isfinite(metres))
    assert np.array_equal(depth[np.isfinite(metres)], metres[np.isfinite(metres)])


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "8UC3", "rgba8", "bgra8"])
def test_rgb_to_image_stores_the_encoding_and_round_trips(encoding, image_codec):
    header = Header(frame_id="camera_optical")
    header.stamp.sec = 12
    msg = rgb_to_image(RGB, header, encoding)
    channels = 4 if "a" in encoding else 3
    assert (msg.encoding, msg.height, msg.width, msg.step) == (encoding, 6, 5, 5 * channels)
    assert msg.header.frame_id == "camera_optical" and msg.header.stamp.sec == 12
    stored = np.frombuffer(msg.data, np.uint8).reshape(6, 5, channels)
    assert np.array_equal(stored[..., :3], STORED[encoding][..., :3])
    if channels == 4:
        assert (stored[..., 3] == 255).all()
    assert np.array_equal(image_to_rgb(msg), RGB)


def test_array_to_image_is_32fc1_in_host_order_with_exact_values(image_codec):
    values = RNG.normal(size=(4, 3))  # float64 in, float32 out
    msg = array_to_image(values, Header(frame_id="depth"))
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("32FC1", 4, 3, 12)
    assert bool(msg.is_bigendian) == (sys.byteorder == "big")
    assert np.array_equal(np.frombuffer(msg.data, np.float32).reshape(4, 3), values.astype(np.float32))
    assert np.array_equal(depth_image_to_array(msg), values.astype(np.float32))


def test_depth_to_mono16_rounds_to_millimetres_and_marks_invalid_zero():
    metres = np.array([[0.0014, 0.0016, 1.2344, 0.0004], [np.nan, -1.0, 70.0, 65.5356], [np.inf, 65.535, 0.0, 65.5354]])
    msg = depth_to_mono16_image(metres.astype(np.float32), Header())
    assert msg.encoding == "16UC1"
    mm = np.frombuffer(msg.data, np.uint16).reshape(3, 4)
    assert mm.tolist() == [[1, 2, 1234, 0], [0, 0, 0, 0], [0, 65535, 0, 65535]]


def test_png_round_trip_is_exact_and_jpeg_is_close(image_codec):
    smooth = smooth_rgb(RNG, 48, 64)
    png = rgb_to_compressed(smooth, Header(frame_id="cam"), fmt="png")
    assert png.format == "rgb8; png compressed bgr8" and png.header.frame_id == "cam"
    assert np.array_equal(compressed_to_rgb(png), smooth)
    jpeg = rgb_to_compressed(smooth, Header(), fmt="jpeg", quality=95)
    assert jpeg.format == "rgb8; jpeg compressed bgr8"
    error = compressed_to_rgb(jpeg).astype(float) - smooth
    psnr = 10 * np.log10(255.0**2 / np.mean(error**2))
    assert psnr > 30.0 and np.abs(error).mean() < 6.0


def test_grey_and_16_bit_png_decode_to_rgb(image_codec):
    grey = RNG.integers(0, 256, size=(4, 6), dtype=np.uint8)
    deep = (grey.astype(np.uint16) * 257)[..., None].repeat(3, axis=-1)  # 16-bit BGR whose 8-bit value is grey
    for pixels, expected in [(grey, grey[..., None].repeat(3, -1)), (deep, grey[..., None].repeat(3, -1))]:
        msg = CompressedImage(format="png")
        msg.data = array.array("B", cv2.imencode(".png", pixels)[1].tobytes())
        assert np.array_equal(compressed_to_rgb(msg), expected)


# ---- bad input: one ConversionError each, saying what was expected and what came ----


def test_unknown_colour_encoding():
    with pytest.raises(ConversionError, match=r"colour image encoding 'yuv422' is not supported; expected one of"):
        image_to_rgb(raw_image(RGB[..., :2], "yuv422"))


def test_colour_encoding_given_to_the_depth_reader():
    with pytest.raises(ConversionError, match=r"depth image encoding 'rgb8' is not supported.*'16UC1', '32FC1'"):
        depth_image_to_array(raw_image(RGB, "rgb8"))


def test_data_shorter_than_step_times_height():
    msg = raw_image(RGB, "rgb8")
    msg.data = msg.data[:-1]
    with pytest.raises(
        ConversionError, match=r"image data has 89 bytes, expected at least step x height = 15 x 6 = 90"
    ):
        image_to_rgb(msg)


def test_step_smaller_than_width_times_pixel_size():
    msg = raw_image(np.zeros((2, 4), np.uint16), "16UC1")
    msg.step = 7
    with pytest.raises(
        ConversionError, match=r"image step 7 is smaller than width x pixel size = 4 x 2 = 8 bytes \(16UC1\)"
    ):
        depth_image_to_array(msg)


@pytest.mark.parametrize("width, height", [(0, 6), (5, 0)])
def test_zero_width_or_height(width, height):
    msg = raw_image(RGB, "rgb8")
    msg.width, msg.height = width, height
    with pytest.raises(ConversionError, match=rf"image size must be non-zero, got {width}x{height} \(width x height\)"):
        image_to_rgb(msg)


def test_undecodable_compressed_bytes(image_codec):
    msg = CompressedImage(format="jpeg")
    msg.data = array.array("B", b"not a jpeg at all")
    with pytest.raises(ConversionError, match=r"expected jpeg or png bytes .* got 17 bytes starting b'not a jp'"):
        compressed_to_rgb(msg)


def test_empty_compressed_bytes():
    with pytest.raises(ConversionError, match=r"expected jpeg or png bytes in the CompressedImage, got 0 bytes"):
        compressed_to_rgb(CompressedImage(format="png"))


def test_compressed_depth_is_not_a_colour_image():
    msg = rgb_to_compressed(RGB, Header(), fmt="png")
    msg.format = "16UC1; compressedDepth png"
    with pytest.raises(
        ConversionError, match=r"expected a jpeg or png colour CompressedImage, got format '16UC1; compressedDepth png'"
    ):
        compressed_to_rgb(msg)


@pytest.mark.parametrize(
    "values, match",
    [
        (RGB.astype(np.float32), r"dtype kind 'u', got shape \(6, 5, 3\) dtype float32"),
        (RGB.astype(np.uint16), r"expected uint8 RGB, got dtype uint16"),
        (RGB[..., :2], r"expected a non-empty \(H, W, 3\) array .* got shape \(6, 5, 2\)"),
        (RGB[:0], r"got shape \(0, 5, 3\)"),
    ],
)
def test_rgb_to_image_rejects_non_rgb_arrays(values, match):
    with pytest.raises(ConversionError, match=match):
        rgb_to_image(values, Header())


def test_rgb_to_image_rejects_an_unknown_output_encoding():
    with pytest.raises(ConversionError, match=r"output image encoding 'mono8' is not supported; expected one of"):
        rgb_to_image(RGB, Header(), "mono8")


def test_array_to_image_rejects_integer_and_3d_arrays():
    with pytest.raises(
        ConversionError,
        match=r"array_to_image: expected a non-empty \(H, W\) array of dtype kind 'f', got shape \(2, 2\) dtype int64",
    ):
        array_to_image(np.zeros((2, 2), np.int64), Header())
    with pytest.raises(ConversionError, match=r"got shape \(2, 2, 1\) dtype float32"):
        array_to_image(np.zeros((2, 2, 1), np.float32), Header())


def test_rgb_to_compressed_rejects_unknown_format_and_quality():
    with pytest.raises(ConversionError, match=r"compressed format must be one of \['jpeg', 'png'\], got 'bmp'"):
        rgb_to_compressed(RGB, Header(), fmt="bmp")
    with pytest.raises(ConversionError, match=r"jpeg quality must be in \[1, 100\], got 0"):
        rgb_to_compressed(RGB, Header(), quality=0)


def test_conversion_error_is_a_value_error():
    assert issubclass(ConversionError, ValueError)
    assert isinstance(Image(), Image)  # messages come from the real sensor_msgs package
