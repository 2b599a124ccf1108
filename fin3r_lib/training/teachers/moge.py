"""The `moge` teacher, the paper's: MoGe-1 (affine-invariant point map) or MoGe-2 (metric), with its mask.

Options (`fin3r label --teacher moge --option KEY=VALUE`):
- `variant`: a name of `fin3r_lib.models.moge.VARIANTS` (default `moge-2-vitl-normal`);
- `weights`: a `model.pt`, a folder holding one, a Hugging Face repo id (the local cache is tried
  first), default the variant's repo; `none` for seeded random weights (tests; variants with a config);
- `resolution_level` 0-9 (MoGe's, default 9) or `num_tokens`; `use_fp16` (default: on CUDA);
  `device` (`auto`); `seed` (random weights); `use_frame_fov`: a frame's own intrinsics fix the field
  of view, so only the z-shift is recovered (default off: MoGe recovers both, as the paper uses it);
- `backend`: `auto` uses MoGe's own package when it is importable, else ours (`fin3r_lib.models.moge`,
  checkpoint-exact with it); `moge` or `fin3r` force one. Random weights always use ours.

Outputs: MoGe's camera-frame points and z-depth after its own focal / z-shift recovery, NaN where the
mask is off or the value is not finite, pixel intrinsics (centres at integer coordinates); `metric`
when the model has a scale head (MoGe-2). The pseudo-label conversion (`pseudo_label`) then removes
any shift left (none for these re-projected points) and applies DUSt3R's normalization.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import InputError
from fin3r_lib.evaluation.report import file_sha256
from fin3r_lib.models.loader import resolve_device
from fin3r_lib.models.moge import MoGeResult, infer, load_release, resolve_weights, seeded_model, tokens_for_level
from fin3r_lib.models.moge.geometry import pixel_intrinsics
from fin3r_lib.models.moge.release import read_release, variant
from fin3r_lib.training.teachers.base import Teacher, TeacherOutput

#: bumped when the labels this teacher produces change
VERSION = 1
BACKENDS = ("auto", "moge", "fin3r")


def reference_available() -> bool:
    """True when MoGe's own package (`moge.model`) can be imported."""
    return importlib.util.find_spec("moge") is not None and importlib.util.find_spec("moge.model") is not None


def _reference_model(path: str) -> nn.Module:
    """MoGe's own model class with a release file's weights (read by our safe loader), strictly."""
    from moge.model import import_model_class_by_version

    config, state = read_release(path)
    version = "v2" if isinstance(config.get("encoder"), dict) else "v1"
    model = import_model_class_by_version(version)(**config)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _result(out: dict[str, torch.Tensor]) -> MoGeResult:
    """MoGe's own `infer` dict -> MoGeResult."""
    return MoGeResult(out["points"], out["depth"], out["mask"], out["intrinsics"], None, out.get("normal"))


class MoGeTeacher(Teacher):
    """MoGe labels frames (see the module docstring)."""

    name = "moge"

    def __init__(
        self,
        variant_name: str = "moge-2-vitl-normal",
        weights: str | None = None,
        resolution_level: int = 9,
        num_tokens: int | None = None,
        use_fp16: bool | None = None,
        device: str = "auto",
        seed: int = 0,
        use_frame_fov: bool = False,
        backend: str = "auto",
    ) -> None:
        spec = variant(variant_name)
        if backend not in BACKENDS:
            raise InputError(f"moge teacher: expected backend in {BACKENDS}, got {backend!r}")
        self.variant = spec.name
        self.device = resolve_device(device)
        self.use_fp16 = self.device.type == "cuda" if use_fp16 is None else bool(use_fp16)
        self.use_frame_fov = bool(use_frame_fov)
        ref = spec.repo if weights is None else str(weights)
        if ref is None:
            raise InputError(f"moge teacher: variant {spec.name} has no released weights; give weights=PATH or none")
        if ref in ("none", ""):
            if spec.config is None:
                raise InputError(f"moge teacher: variant {spec.name} has no known config for random weights")
            self.model = seeded_model(spec.config, seed)
            self.weights_hash, self.backend = f"random-seed-{seed}", "fin3r"
            self.metric = hasattr(self.model, "scale_head")
        else:
            path = resolve_weights(ref, spec.repo)
            self.weights_hash = file_sha256(path) or ""
            self.backend = "moge" if backend == "moge" or (backend == "auto" and reference_available()) else "fin3r"
            if self.backend == "moge":
                self.model = _reference_model(str(path))
            else:
                self.model = load_release(path)[0]
            self.metric = hasattr(self.model, "scale_head")
        self.model = self.model.to(self.device)
        if num_tokens is None:
            num_tokens = tokens_for_level(self.model, resolution_level)
        if num_tokens < 1:
            raise InputError(f"moge teacher: expected num_tokens >= 1, got {num_tokens}")
        self.num_tokens = int(num_tokens)

    def _run(self, images: torch.Tensor, fov_x: float | None) -> MoGeResult:
        if self.backend == "moge":
            out = self.model.infer(images, num_tokens=self.num_tokens, use_fp16=self.use_fp16, fov_x=fov_x)
            return _result(out)
        return infer(self.model, images, self.num_tokens, self.use_fp16, fov_x)

    def _fov_x(self, frame: Frame) -> float | None:
        if not self.use_frame_fov or frame.intrinsics is None:
            return None
        fx = float(np.asarray(frame.intrinsics)[0, 0])
        if not (math.isfinite(fx) and fx > 0):
            raise InputError(f"moge teacher: {frame.source or frame.index}: expected a positive focal length, got {fx}")
        return math.degrees(2 * math.atan(frame.size[1] / (2 * fx)))

    def label(self, frames: Sequence[Frame]) -> list[TeacherOutput]:
        """One output per frame; frames of one size and field of view share a forward pass."""
        outputs: list[TeacherOutput | None] = [None] * len(frames)
        groups: dict[tuple[tuple[int, int], float | None], list[int]] = {}
        for i, frame in enumerate(frames):
            rgb = np.asarray(frame.rgb)
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
                raise InputError(
                    f"moge teacher: {frame.source or frame.index}: expected an (H, W, 3) uint8 image, "
                    f"got {rgb.shape} {rgb.dtype}"
                )
            groups.setdefault((frame.size, self._fov_x(frame)), []).append(i)
        for (size, fov_x), idx in groups.items():
            batch = np.stack([frames[i].rgb for i in idx]).astype(np.float32) / 255.0
            images = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
            result = self._run(images, fov_x)
            for j, i in enumerate(idx):
                outputs[i] = self._output(result, j, size)
        return [o for o in outputs if o is not None]

    def _output(self, result: MoGeResult, j: int, size: tuple[int, int]) -> TeacherOutput:
        points = result.points[j].float().cpu().numpy()
        depth = result.depth[j].float().cpu().numpy()
        mask = result.mask[j].cpu().numpy().astype(bool) & np.isfinite(depth) & np.isfinite(points).all(axis=-1)
        return TeacherOutput(
            depth=np.where(mask, depth, np.float32(np.nan)).astype(np.float32),
            mask=mask,
            metric=self.metric,
            points=np.where(mask[..., None], points, np.float32(np.nan)).astype(np.float32),
            intrinsics=pixel_intrinsics(result.intrinsics[j].float().cpu().numpy(), *size),
        )

    def identity(self) -> dict[str, Any]:
        """Variant, weights hash, backend and inference settings, and this teacher's version."""
        return {
            "teacher": self.name,
            "variant": self.variant,
            "weights_hash": self.weights_hash,
            "backend": self.backend,
            "num_tokens": self.num_tokens,
            "use_fp16": self.use_fp16,
            "use_frame_fov": self.use_frame_fov,
            "metric": self.metric,
            "version": VERSION,
        }


def build(variant: str = "moge-2-vitl-normal", weights: str | None = None, **options: Any) -> MoGeTeacher:
    """The registry's constructor (`build_teacher("moge", variant=..., weights=...)`)."""
    return MoGeTeacher(variant, None if weights is None else str(weights), **options)
