"""Pairing's time-based release: an image with no camera_info at its stamp waits at most `pairing_timeout_s`,
then goes on with the nearest camera_info within the tolerance, else unpaired and counted (real rclpy, GT backend)."""

from __future__ import annotations

import numpy as np
import pytest
from gt_backend import GroundTruthModel
from node_fixtures import NodeRig, header
from ros_harness import RosHarness

from fin3r_lib.data.pairing import StampPairer
from fin3r_ros.conversions import rgb_to_image


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def test_release_waiting_decides_the_expired_images_with_what_arrived() -> None:
    pairer = StampPairer(("camera_info",), tolerance_s=0.02)
    assert pairer.add_companion("camera_info", 990_000_000, "info@0.99") == []
    assert pairer.add_image(1_000_000_000, "a") == []  # 0.99 is within 0.02 but 1.02 may still come
    assert pairer.add_image(5_000_000_000, "b") == []
    assert pairer.release_waiting(lambda image: False) == []
    decided = pairer.release_waiting(lambda image: image == "a")
    assert [(p.image, p.companions["camera_info"]) for p in decided] == [("a", "info@0.99")]
    decided = pairer.release_waiting(lambda image: True)
    assert [(p.image, p.companions["camera_info"]) for p in decided] == [("b", None)]
    assert (pairer.counts.timed_out, pairer.counts.images, pairer.counts.unpaired) == (2, 2, {"camera_info": 1})


def test_an_image_without_camera_info_at_its_stamp_goes_on_after_the_timeout(ros, seven_scenes) -> None:
    model_k = seven_scenes["K"]
    camera_k = model_k.copy()
    camera_k[0, 0] *= 0.8  # a camera_info K the GT backend does not serve
    camera_k[1, 2] += 7.0
    rig = NodeRig(ros, GroundTruthModel.from_fixture(seven_scenes), pairing_timeout_s=0.2)
    rgb = seven_scenes["rgb"]
    rig.publish_info(camera_k, rgb[0].shape[:2], 1.0)

    # 5 ms after the camera_info, nothing later comes: decided by the timeout, paired with the one at 1.0
    rig.send_msg(rgb_to_image(rgb[0], header(1.005)))
    np.testing.assert_allclose(np.reshape(rig.got["depth/camera_info"][-1].k, (3, 3)), camera_k, rtol=1e-12)

    # nothing within the tolerance of 2.0: decided unpaired, the model's K goes out
    rig.send_msg(rgb_to_image(rgb[10], header(2.0)))
    np.testing.assert_allclose(np.reshape(rig.got["depth/camera_info"][-1].k, (3, 3)), model_k, rtol=1e-6)

    values = rig.node.inputs.diagnostics()
    assert values["images decided by pairing timeout"] == "2"
    assert values["images without camera_info"] == "1"
    assert values["images paired"] == "2"
