"""Frame sources for offline use: a folder of images, a video file, an extracted frame dataset or a bag.

`open_frames(path)` picks the reader by what `path` is (`input_kind`) and yields `Frame`s in order.
Folder and video frames are stamped `index / fps`; datasets and bags keep their recorded stamps,
intrinsics and poses. An image folder yields its colour images; a file it cannot use (unreadable, or
a 16-bit/float single-channel image: a depth map beside the colour ones, as in TUM, SUN RGB-D and
7-Scenes layouts) is yielded as a `SkippedFrame` with the reason, so it is counted and reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from fin3r_lib.data.dataset import MANIFEST, FrameDataset
from fin3r_lib.data.frame import Frame, SkippedFrame
from fin3r_lib.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
#: PIL modes of single-channel images with more than 8 bits: depth maps, not colour
DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
DEPTH_REASON = "a {mode} single-channel image (a depth map?), not a colour image; choose files with --pattern"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
BAG_SUFFIXES = (".bag", ".mcap", ".db3")


def input_kind(path: str | Path) -> str:
    """What `path` is: "dataset", "bag", "images" or "video" (InputError when none)."""
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST).is_file():  # the file that marks a `fin3r extract` dataset
            return "dataset"
        if (path / "metadata.yaml").is_file() or any(p.suffix in BAG_SUFFIXES for p in path.iterdir()):
            return "bag"
        if image_files(path):
            return "images"
        raise InputError(f"{path}: expected a folder of images, a frame dataset or a rosbag2 folder, got none of those")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in BAG_SUFFIXES:
            return "bag"
        if suffix in VIDEO_SUFFIXES:
            return "video"
        raise InputError(
            f"{path}: expected a bag ({', '.join(BAG_SUFFIXES)}) or a video ({', '.join(VIDEO_SUFFIXES)}), "
            f"got a {suffix or 'suffix-less'} file"
        )
    raise InputError(f"{path}: no such file or folder")


def image_files(folder: Path, pattern: str | None = None) -> list[Path]:
    """Image files of a folder (only those matching the glob `pattern` when given), sorted by name."""
    candidates = folder.glob(pattern) if pattern else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def depth_like_mode(file: Path) -> str | None:
    """The PIL mode of `file` when it is a >8-bit single-channel image (a depth map), else None (header only)."""
    try:
        with Image.open(file) as image:
            return image.mode if image.mode in DEPTH_MODES else None
    except (OSError, UnidentifiedImageError):
        return None  # not readable by PIL: decoding will tell


def colour_image_files(folder: Path, pattern: str | None = None) -> list[Path]:
    """The image files of `folder` (matching `pattern`) that are not depth maps, in name order."""
    return [f for f in image_files(folder, pattern) if depth_like_mode(f) is None]


def frame_count(path: str | Path, pattern: str | None = None) -> int | None:
    """Number of frames `open_frames(path)` yields, when known without reading them (None for bags)."""
    kind = input_kind(path)
    if kind == "images":
        return len(colour_image_files(Path(path), pattern))
    if kind == "dataset":
        return len(FrameDataset(path))
    if kind == "video":
        capture = cv2.VideoCapture(str(path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return count if count > 0 else None
    return None


def _read_colour(file: Path) -> np.ndarray | str:
    """RGB uint8 of an image file, or why it is not a colour image."""
    mode = depth_like_mode(file)
    if mode is not None:
        return DEPTH_REASON.format(mode=mode)
    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if image is None:
        return "expected a readable image, OpenCV could not decode it"
    if image.dtype != np.uint8:
        return f"expected an 8-bit colour image, got {image.dtype} pixels"
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(image, code)


def iter_image_folder(folder: Path, fps: float, pattern: str | None = None) -> Iterator[Frame | SkippedFrame]:
    """Frames of a folder's colour images (matching `pattern`) in name order, stamped `index / fps`.

    A file that is not a usable colour image comes as a `SkippedFrame` saying why; frames are indexed
    and stamped by their position among the colour images.
    """
    files = image_files(folder, pattern)
    if not files:
        raise InputError(f"{folder}: expected image files matching {pattern!r}, found none")
    i = 0
    for file in files:
        rgb = _read_colour(file)
        if isinstance(rgb, str):
            yield SkippedFrame(str(file), rgb)
            continue
        yield Frame(rgb=rgb, stamp=i / fps, camera=folder.name, index=i, source=str(file))
        i += 1


def iter_video(path: Path, fps: float | None = None) -> Iterator[Frame]:
    """Frames of a video file, stamped `index / fps` (`fps` defaults to the file's rate, else 30)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{path}: expected a video OpenCV can open, it cannot")
    rate = fps or capture.get(cv2.CAP_PROP_FPS) or 30.0
    try:
        i = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stamp=i / rate, camera=path.stem, index=i)
            i += 1
    finally:
        capture.release()
    if i == 0:
        raise InputError(f"{path}: expected at least one decodable video frame, got none")


def open_frames(
    path: str | Path,
    *,
    topics: Sequence[str] | None = None,
    fps: float | None = None,
    pattern: str | None = None,
    depth_topics: Sequence[str] = (),
    fixed_frame: str | None = None,
) -> Iterator[Frame | SkippedFrame]:
    """Frames of `path` (folder of images, video, frame dataset or bag), in order.

    `topics`: image topics of a bag (default: every colour image topic). `fps`: stamp rate of folder
    and video frames (default: the video's rate, 30 for folders). `pattern`: glob selecting a folder's
    images (e.g. "*.color.png" where depth images lie beside the colour ones). `depth_topics` (one
    aligned depth topic per image topic) and `fixed_frame` (the frame of the TF poses, default the tree's
    root): a bag's depth and poses, see `fin3r_lib.data.bag.BagSelection`.
    """
    path = Path(path)
    kind = input_kind(path)
    if kind == "images":
        return iter_image_folder(path, fps or 30.0, pattern)
    if kind == "video":
        return iter_video(path, fps)
    if kind == "dataset":
        return iter(FrameDataset(path))
    from fin3r_lib.data.bag import iter_bag_frames

    return iter_bag_frames(path, topics, depth_topics=depth_topics, fixed_frame=fixed_frame)
