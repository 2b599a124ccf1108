"""Frame sources for offline use: a folder of images, a video file, an extracted frame dataset or a bag.

`open_frames(path)` picks the reader by what `path` is (`input_kind`) and yields `Frame`s in order.
Folder and video frames are stamped `index / fps`; datasets and bags keep their recorded stamps,
intrinsics and poses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2

from fin3r_lib.data.dataset import MANIFEST, FrameDataset
from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
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


def frame_count(path: str | Path) -> int | None:
    """Number of frames `open_frames(path)` yields, when known without reading them (None for bags)."""
    kind = input_kind(path)
    if kind == "images":
        return len(image_files(Path(path)))
    if kind == "dataset":
        return len(FrameDataset(path))
    if kind == "video":
        capture = cv2.VideoCapture(str(path))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        return count if count > 0 else None
    return None


def iter_image_folder(folder: Path, fps: float, pattern: str | None = None) -> Iterator[Frame]:
    """Frames of a folder's images (matching `pattern` when given) in name order, stamped `index / fps`."""
    files = image_files(folder, pattern)
    if not files:
        raise InputError(f"{folder}: expected image files matching {pattern!r}, found none")
    for i, file in enumerate(files):
        bgr = cv2.imread(str(file), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{file}: expected a readable image, OpenCV could not decode it")
        yield Frame(rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), stamp=i / fps, camera=folder.name, index=i)


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
) -> Iterator[Frame]:
    """Frames of `path` (folder of images, video, frame dataset or bag), in order.

    `topics`: image topics of a bag (default: every colour image topic). `fps`: stamp rate of folder
    and video frames (default: the video's rate, 30 for folders). `pattern`: glob selecting a folder's
    images (e.g. "*.color.png" where depth images lie beside the colour ones).
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

    return iter_bag_frames(path, topics)
