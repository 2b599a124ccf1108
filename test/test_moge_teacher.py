"""The `moge` teacher: tiny MoGe-1/-2 at random weights through the teacher, the pseudo-label
conversion and `fin3r label` (real 7-Scenes frames), weights files, and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fin3r_lib.data.frame import Frame
from fin3r_lib.errors import CheckpointError, InputError
from fin3r_lib.models.moge import VARIANTS, seeded_model
from fin3r_lib.training.label_cache import LabelCache
from fin3r_lib.training.pseudo_label import pseudo_label
from fin3r_lib.training.teachers import build_teacher
from fin3r_lib.training.teachers.moge import MoGeTeacher


def frames(n: int, h: int = 36, w: int = 48) -> list[Frame]:
    rng = np.random.default_rng(5)
    return [Frame(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), i / 30, index=i, source=f"t#{i}") for i in range(n)]


@pytest.mark.parametrize(("name", "metric"), [("moge-1-tiny", False), ("moge-2-tiny", True)])
def test_tiny_teacher_outputs_and_labels(name: str, metric: bool) -> None:
    teacher = build_teacher("moge", variant=name, weights="none", num_tokens=60, device="cpu")
    assert isinstance(teacher, MoGeTeacher) and teacher.backend == "fin3r"
    outs = teacher.label(frames(3))
    assert len(outs) == 3
    for out in outs:
        assert out.metric is metric and out.depth.shape == (36, 48) and out.points.shape == (36, 48, 3)
        assert out.mask.mean() > 0.5
        assert np.isnan(out.depth[~out.mask]).all() and np.isfinite(out.depth[out.mask]).all()
        np.testing.assert_array_equal(out.points[..., 2][out.mask], out.depth[out.mask])
        label = pseudo_label(out)
        # independent: the points are pinhole-consistent, so no shift is left; the label is z over the
        # mean distance of the valid points to the camera centre
        valid = out.mask & (out.depth > 0)
        dist = np.linalg.norm(out.points[valid].astype(np.float64), axis=-1).mean()
        assert abs(label.shift) < 1e-4 * dist
        np.testing.assert_array_equal(label.mask, valid)
        np.testing.assert_allclose(label.depth[valid], out.depth[valid] / dist, rtol=1e-4)
        assert (label.depth[~valid] == 0).all()
    ident = teacher.identity()
    assert (ident["variant"], ident["weights_hash"], ident["metric"]) == (name, "random-seed-0", metric)


def test_a_release_file_gives_the_same_labels_as_the_model_in_it(tmp_path: Path) -> None:
    config = VARIANTS["moge-2-tiny"].config
    torch.save({"model_config": config, "model": seeded_model(config, seed=7).state_dict()}, tmp_path / "model.pt")
    from_file = build_teacher("moge", variant="moge-2-tiny", weights=str(tmp_path), num_tokens=60, backend="fin3r")
    random = build_teacher("moge", variant="moge-2-tiny", weights="none", seed=7, num_tokens=60)
    (a,), (b,) = from_file.label(frames(1)), random.label(frames(1))
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.intrinsics, b.intrinsics)
    assert len(from_file.identity()["weights_hash"]) == 64


def test_known_field_of_view_fixes_the_focal_length() -> None:
    k = np.array([[50.0, 0, 23.5], [0, 50.0, 17.5], [0, 0, 1]])
    frame = frames(1)[0]
    frame.intrinsics = k
    teacher = build_teacher("moge", variant="moge-1-tiny", weights="none", num_tokens=60, use_frame_fov=True)
    (out,) = teacher.label([frame])
    assert math.isclose(out.intrinsics[0, 0], 50.0, rel_tol=1e-5)
    np.testing.assert_allclose(out.intrinsics[:2, 2], [23.5, 17.5])


def test_teacher_errors() -> None:
    with pytest.raises(InputError, match="unknown MoGe variant 'moge-3'"):
        build_teacher("moge", variant="moge-3")
    with pytest.raises(InputError, match="expected backend"):
        build_teacher("moge", variant="moge-2-tiny", weights="none", backend="onnx")
    with pytest.raises(InputError, match="has no known config"):
        build_teacher("moge", variant="moge-2-vits-normal", weights="none")
    with pytest.raises(CheckpointError, match=r"expected a model\.pt file"):
        build_teacher("moge", variant="moge-2-tiny", weights="no/such/model.pt")
    teacher = build_teacher("moge", variant="moge-2-tiny", weights="none", num_tokens=60)
    bad = frames(1)[0]
    bad.rgb = bad.rgb[..., :2].copy()
    with pytest.raises(InputError, match=r"t#0: expected an \(H, W, 3\) uint8 image"):
        teacher.label([bad])


def test_fin3r_label_with_moge_on_7scenes(seven_scenes_dir: Path, tmp_path: Path, capsys) -> None:
    from fin3r_lib.cli.main import main
    from fin3r_lib.training.sources import iter_source

    images = tmp_path / "frames"
    images.mkdir()
    for p in sorted(seven_scenes_dir.glob("frame-*.color.png"))[:3]:
        (images / p.name).symlink_to(p)
    out = tmp_path / "labels"
    options = ["variant=moge-2-tiny", "weights=none", "num_tokens=80", "device=cpu"]
    args = ["label", str(images), "--teacher", "moge", "--out", str(out), "--batch-size", "2", "--quiet"]
    assert main(args + [x for o in options for x in ("--option", o)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["labelled"], report["cached"], report["skipped"]) == (3, 0, [])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["teacher"]["variant"] == "moge-2-tiny" and manifest["teacher"]["metric"] is True
    teacher = build_teacher("moge", variant="moge-2-tiny", weights="none", num_tokens=80, device="cpu")
    cache = LabelCache(out, teacher.identity(), create=False)
    frames_read, _ = iter_source(images)  # the reader `fin3r label` itself uses
    for frame in frames_read:
        label = cache.read(frame)
        assert label.depth.shape == (480, 640) and label.mask.mean() > 0.5
        (raw,) = teacher.label([frame])
        valid = raw.mask & (raw.depth > 0)
        np.testing.assert_array_equal(label.mask, valid)
        # normalization: mean distance of the labelled points to the camera is 1 (fp16 storage)
        dist = np.linalg.norm(raw.points[valid].astype(np.float64), axis=-1)
        ratio = dist / raw.depth[valid]
        assert abs((label.depth[valid] * ratio).mean() - 1.0) < 2e-3
    # asking again with another variant is refused, never mixed into this cache
    assert (
        main(
            [
                "label",
                str(images),
                "--teacher",
                "moge",
                "--out",
                str(out),
                "--quiet",
                "--option",
                "variant=moge-1-tiny",
                "--option",
                "weights=none",
            ]
        )
        == 1
    )
    assert "made differently" in capsys.readouterr().err


def test_released_weights_come_from_the_local_cache_only_when_offline(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    from fin3r_lib.hub import HubFileMissing

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(HubFileMissing, match=r"weights 'Ruicheng/moge-vitl': model\.pt not in the Hugging Face cache"):
        build_teacher("moge", variant="moge-vitl")
