"""Faults become a counted, logged rejection of one frame; the node keeps serving good frames afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gt_backend import GroundTruthModel
from node_fixtures import NodeRig, header
from ros_harness import RosHarness
from sensor_msgs.msg import CompressedImage, Image

from fin3r_ros.conversions import depth_image_to_array, rgb_to_compressed, rgb_to_image


class FaultyModel(GroundTruthModel):
    """The ground truth, with one fault injected into the next forward (`fault`), then healthy again."""

    fault: str | None = None

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        fault, self.fault = self.fault, None
        if fault == "raise":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        out = super().forward(images)
        if fault == "nan_pose":
            out["cam_to_world"][..., 0, 3] = float("nan")
        elif fault == "inf_intrinsics":
            out["intrinsics"][..., 0, 0] = float("inf")
        elif fault == "inf_depth":
            out["depth"][..., :10, :] = float("inf")
        return out


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def _serves_good_frames(rig: NodeRig, data, stamp: float) -> None:
    rig.send(data["rgb"][10], stamp, k=data["K"])
    rig.send(data["rgb"][20], stamp + 0.1, k=data["K"])


def _raw(rgb: np.ndarray, stamp: float, **changes) -> Image:
    msg = rgb_to_image(rgb, header(stamp))
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


MESSAGE_FAULTS = {
    "unknown_encoding": lambda rgb: _raw(rgb, 1.0, encoding="yuv422_yuy2"),
    "truncated_data": lambda rgb: _raw(rgb, 1.0, data=bytes(rgb_to_image(rgb, header(1.0)).data)[:1000]),
    "zero_size": lambda rgb: _raw(rgb, 1.0, height=0, width=0, step=0, data=b""),
}


@pytest.mark.parametrize("fault", list(MESSAGE_FAULTS))
def test_bad_image_message(ros, seven_scenes, fault) -> None:
    rig = NodeRig(ros, GroundTruthModel.from_fixture(seven_scenes))
    rig.send(seven_scenes["rgb"][0], 0.5, k=seven_scenes["K"])
    # its camera_info comes with it (the node pairs by stamp, and would wait for a later one otherwise)
    rig.publish_info(seven_scenes["K"], seven_scenes["rgb"][5].shape[:2], 1.0)
    rig.send_msg(MESSAGE_FAULTS[fault](seven_scenes["rgb"][5]), expect_output=False)
    assert rig.node.stats.errors == {"ConversionError": 1}
    _serves_good_frames(rig, seven_scenes, 2.0)
    assert rig.errors() == 1
    assert len(rig.got["depth"]) == 3, "the rejected frame produced a depth"  # in order: it would precede the last


def test_camera_info_of_another_resolution(ros, seven_scenes) -> None:
    rig = NodeRig(ros, GroundTruthModel.from_fixture(seven_scenes))
    rgb, k = seven_scenes["rgb"], seven_scenes["K"]
    rig.publish_info(k / 2.0, (240, 320), 1.0)
    rig.send(rgb[0], 1.0, expect_output=False)
    assert rig.node.stats.errors == {"ConversionError": 1}
    _serves_good_frames(rig, seven_scenes, 2.0)  # a matching camera_info comes with these
    assert len(rig.got["depth"]) == 2, "the rejected frame produced a depth"


def test_corrupt_jpeg(ros, seven_scenes) -> None:
    rig = NodeRig(ros, GroundTruthModel.from_fixture(seven_scenes), image_transport="compressed")
    jpeg = rgb_to_compressed(seven_scenes["rgb"][0], header(1.0), fmt="jpeg")
    corrupt = CompressedImage(header=jpeg.header, format="jpeg", data=bytes(jpeg.data)[:200] + b"\x00" * 50)
    rig.send_msg(corrupt, expect_output=False)
    assert rig.node.stats.errors == {"ConversionError": 1}
    for i, stamp in ((10, 2.0), (20, 2.1)):
        rig.send(seven_scenes["rgb"][i], stamp, k=seven_scenes["K"], compressed=True)
    assert len(rig.got["depth"]) == 2, "the rejected frame produced a depth"


@pytest.mark.parametrize(
    ("fault", "error"),
    [("raise", "RuntimeError"), ("nan_pose", "AlignmentError"), ("inf_intrinsics", "AlignmentError")],
)
def test_bad_backend_output_is_rejected(ros, seven_scenes, fault, error) -> None:
    model = FaultyModel.from_fixture(seven_scenes)
    rig = NodeRig(ros, model)
    rig.send(seven_scenes["rgb"][0], 1.0, k=seven_scenes["K"])
    model.fault = fault
    rig.send(seven_scenes["rgb"][5], 1.1, k=seven_scenes["K"], expect_output=False)
    assert rig.node.stats.errors == {error: 1}
    _serves_good_frames(rig, seven_scenes, 2.0)
    assert ros.spin_until(lambda: len(rig.got["path"][-1].poses) == 3, timeout=5.0)
    assert len(rig.got["depth"]) == 3, "the rejected frame produced a depth"


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy on the injected inf depth
def test_infinite_depth_is_published_as_nan(ros, seven_scenes) -> None:
    model = FaultyModel.from_fixture(seven_scenes)
    rig = NodeRig(ros, model)
    model.fault = "inf_depth"
    rig.send(seven_scenes["rgb"][0], 1.0, k=seven_scenes["K"])
    depth = depth_image_to_array(rig.got["depth"][-1])
    assert np.isnan(depth[:10]).all() and np.isfinite(depth[10:]).any()
    assert rig.errors() == 0
    _serves_good_frames(rig, seven_scenes, 2.0)
