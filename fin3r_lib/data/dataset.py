"""A frame dataset on disk: images, a JSON-lines manifest, the selection log and a summary.

Layout of a dataset folder:
- `images/<camera>/<stamp_ns>.png|jpg`: one file per kept frame, named by its stamp in integer
  nanoseconds (unique across bags: two frames of a camera with one stamp are an error);
- `depth/<camera>/<stamp_ns>.tiff`: the frame's aligned depth, float32 metres, 0 where invalid (when known);
- `manifest.jsonl`: one line per kept frame: file, depth (file or null), stamp_ns, source (bag and
  message), camera, frame_id, index (in its stream of its bag), K, distortion, size (height, width),
  pose (4x4 camera-to-world or null), reason;
- `selection.jsonl`: every frame considered, kept or not, with its reason (written when the run ends);
- `settings.json`: the extraction settings (a re-run with other settings is refused);
- `summary.json`: counts and read reports (written when the run ends).

Writing is resumable and idempotent: every file is written under a temporary name, then renamed; a
re-run skips the frames the manifest already lists and rewrites nothing that is done.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError

MANIFEST = "manifest.jsonl"
SELECTION = "selection.jsonl"
SETTINGS = "settings.json"
SUMMARY = "summary.json"
IMAGE_FORMATS = {"png": ".png", "jpeg": ".jpg"}
DEPTH_SUFFIX = ".tiff"
_TIFF_LZW = [cv2.IMWRITE_TIFF_COMPRESSION, 5]  # lossless
_PART = ".part"


class DatasetError(InputError):
    """A frame dataset folder is missing, unreadable, or was written with other settings."""


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers never see half a file, and an
    error or interruption (Ctrl-C, SIGTERM) during the write leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}{_PART}")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def read_manifest(path: Path) -> tuple[list[dict], int]:
    """The records of a manifest and the byte length of its complete lines (a cut last line is ignored)."""
    records: list[dict] = []
    valid = 0
    if not path.is_file():
        return records, valid
    data = path.read_bytes()
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
        valid += len(line)
    return records, valid


def _matrix(value) -> list | None:
    return None if value is None else np.asarray(value, dtype=np.float64).tolist()


def frame_stamp_ns(frame: Frame) -> int:
    """The frame's stamp in integer nanoseconds (from its float seconds when the source had none)."""
    return int(frame.stamp_ns) if frame.stamp_ns is not None else round(frame.stamp * 1e9)


def frame_record(frame: Frame, file: str, depth_file: str | None, reason: str) -> dict:
    """The manifest line of a kept frame."""
    return {
        "file": file,
        "depth": depth_file,
        "stamp_ns": frame_stamp_ns(frame),
        "source": frame.source,
        "camera": frame.camera,
        "frame_id": frame.frame_id,
        "index": frame.index,
        "K": _matrix(frame.intrinsics),
        "distortion": _matrix(frame.distortion),
        "size": list(frame.size),
        "pose": _matrix(frame.cam_to_world),
        "reason": reason,
    }


class FrameDatasetWriter:
    """Writes kept frames (and the record of every decision) into a dataset folder; resumes a cut run."""

    def __init__(
        self, root: str | Path, image_format: str = "png", jpeg_quality: int = 95, settings: dict | None = None
    ):
        """`settings` (JSON-able) are stored; a folder holding other settings is refused (use another folder)."""
        if image_format not in IMAGE_FORMATS:
            raise DatasetError(f"image format must be one of {sorted(IMAGE_FORMATS)}, got {image_format!r}")
        if not 1 <= jpeg_quality <= 100:
            raise DatasetError(f"jpeg quality must be in 1..100, got {jpeg_quality}")
        self.root = Path(root)
        self.suffix = IMAGE_FORMATS[image_format]
        self.params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if image_format == "jpeg" else []
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.rglob(f".*{_PART}"):  # temporary files of an interrupted run
            stale.unlink()
        stored = {"image_format": image_format, "jpeg_quality": jpeg_quality, **(settings or {})}
        settings_path = self.root / SETTINGS
        if settings_path.is_file():
            previous = json.loads(settings_path.read_text())
            if previous != json.loads(json.dumps(stored)):
                changed = sorted(k for k in set(previous) | set(stored) if previous.get(k) != stored.get(k))
                raise DatasetError(
                    f"{self.root} was extracted with other settings ({changed}); use another --out folder"
                )
        else:
            write_atomic(settings_path, _json_bytes(stored))
        manifest = self.root / MANIFEST
        records, valid = read_manifest(manifest)
        self.done = {r["file"] for r in records}
        with manifest.open("ab") as f:  # drop a line cut by the interruption
            f.truncate(valid)
        self._manifest = manifest.open("ab")
        self._sources: dict[str, str] = {}  # file -> source of the frame that took it in this run
        self.decisions: list[dict] = []
        self.written = 0
        self.skipped = 0

    def file_for(self, frame: Frame, kind: str = "images", suffix: str | None = None) -> str:
        """Path of a frame's image (or, with kind "depth", depth) file, relative to the dataset root."""
        return f"{kind}/{frame.camera}/{frame_stamp_ns(frame)}{suffix or self.suffix}"

    def _claim(self, frame: Frame, file: str) -> None:
        """Note that `frame` takes `file` in this run; a second frame of the camera with its stamp is an error."""
        if file in self._sources:
            raise DatasetError(
                f"two frames of camera {frame.camera!r} have stamp {frame_stamp_ns(frame)} ns: "
                f"{self._sources[file]} and {frame.source}; extract these bags into separate folders"
            )
        self._sources[file] = frame.source

    def _write_image(self, file: str, image: np.ndarray, params: list[int]) -> None:
        path = self.root / file
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, encoded = cv2.imencode(path.suffix, image, params)
        if not ok:
            raise DatasetError(f"could not encode {file} ({image.dtype} {image.shape})")
        write_atomic(path, encoded.tobytes())

    def add(self, frame: Frame, keep: bool, reason: str, **measures: float | None) -> None:
        """Record the decision on `frame`; write its image (and depth) and manifest line when kept and not yet done."""
        self.decisions.append(
            {"camera": frame.camera, "index": frame.index, "stamp_ns": frame_stamp_ns(frame), "source": frame.source}
            | {"keep": keep, "reason": reason}
            | {k: v for k, v in measures.items() if v is not None and np.isfinite(v)}
        )
        if not keep:
            return
        file = self.file_for(frame)
        self._claim(frame, file)
        if file in self.done:
            self.skipped += 1
            return
        depth_file = None
        if frame.depth is not None:  # invalid (NaN, non-positive) stored as 0, as depth sensors write it
            depth = frame.depth.astype(np.float32)
            depth_file = self.file_for(frame, "depth", DEPTH_SUFFIX)
            self._write_image(depth_file, np.where(np.isfinite(depth) & (depth > 0), depth, 0), _TIFF_LZW)
        self._write_image(file, cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), self.params)
        self._manifest.write((json.dumps(frame_record(frame, file, depth_file, reason)) + "\n").encode())
        self._manifest.flush()
        self.done.add(file)
        self.written += 1

    def close(self, summary: dict | None = None) -> None:
        """Finish the run: write the selection log and `summary.json` (counts added to `summary`)."""
        self._manifest.close()
        lines = "".join(json.dumps(d) + "\n" for d in self.decisions)
        write_atomic(self.root / SELECTION, lines.encode())
        kept = sum(d["keep"] for d in self.decisions)
        reasons: dict[str, int] = {}
        for d in self.decisions:
            key = d["reason"].split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        counts = {"frames_considered": len(self.decisions), "frames_kept": kept, "decisions": reasons}
        write_atomic(self.root / SUMMARY, _json_bytes(counts | (summary or {})))

    def abort(self) -> None:
        """Close the manifest without writing the end-of-run files (what an interruption leaves)."""
        self._manifest.close()


def read_depth_file(path: Path) -> np.ndarray:
    """A dataset's depth file as float32 metres, NaN where invalid (stored as 0)."""
    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None or depth.dtype != np.float32 or depth.ndim != 2:
        got = "an unreadable file" if depth is None else f"{depth.dtype} {depth.shape}"
        raise DatasetError(f"{path}: expected a float32 single-channel depth image listed in the manifest, got {got}")
    depth[depth == 0] = np.nan
    return depth


class FrameDataset:
    """An extracted frame dataset, read back as `Frame`s: `len(ds)`, `ds[i]`, `for frame in ds`.

    A frame's `index` is its position in the dataset (unique, also across the bags it was extracted
    from; outputs and label files are named by it); the message index in its bag stays in `source`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / MANIFEST).is_file():
            raise DatasetError(f"not a frame dataset: {self.root} has no {MANIFEST} (expected `fin3r extract` output)")
        self.records, _ = read_manifest(self.root / MANIFEST)
        summary = self.root / SUMMARY
        self.summary: dict | None = json.loads(summary.read_text()) if summary.is_file() else None

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Frame:
        i = range(len(self.records))[i]  # a negative position counts from the end; IndexError past it
        r = self.records[i]
        bgr = cv2.imread(str(self.root / r["file"]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetError(f"cannot read image {self.root / r['file']} listed in the manifest")
        array = {k: None if r[k] is None else np.asarray(r[k], dtype=np.float64) for k in ("K", "distortion", "pose")}
        depth = r.get("depth")
        return Frame(
            rgb=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
            stamp=int(r["stamp_ns"]) / 1e9,
            stamp_ns=int(r["stamp_ns"]),
            depth=None if depth is None else read_depth_file(self.root / depth),
            source=r.get("source", ""),
            camera=r["camera"],
            frame_id=r["frame_id"],
            intrinsics=array["K"],
            distortion=array["distortion"],
            cam_to_world=array["pose"],
            index=i,
        )

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self[i]
