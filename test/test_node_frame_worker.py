"""The latest-frame worker: the newest item wins, the ones in between are dropped and counted, errors don't stop it."""

from __future__ import annotations

import threading

import pytest
from gt_backend import GatedModel
from node_fixtures import NodeRig, header
from ros_harness import RosHarness

from fin3r_ros.conversions import rgb_to_image
from fin3r_ros.frame_worker import FrameWorker


def test_items_put_while_busy_are_dropped_but_the_newest() -> None:
    release, started, seen, errors = threading.Event(), threading.Event(), [], []

    def handle(item: int) -> None:
        started.set()
        seen.append(item)
        release.wait(5.0)
        if item == 3:
            raise RuntimeError("boom")

    worker = FrameWorker(handle, lambda item, exc: errors.append((item, str(exc))))
    worker.start()
    try:
        worker.put(0)
        assert started.wait(5.0)
        assert [worker.put(i) for i in (1, 2, 3)] == [False, True, True]
        release.set()
        assert worker.wait_idle(5.0)
        assert seen == [0, 3] and worker.dropped == 2 and worker.handled == 2
        assert errors == [(3, "boom")]
        worker.put(4)
        assert worker.wait_idle(5.0) and seen == [0, 3, 4]
    finally:
        release.set()
        worker.stop()


@pytest.fixture
def ros():
    with RosHarness() as harness:
        yield harness


def test_node_drops_frames_while_busy_and_reports_them(ros, seven_scenes) -> None:
    model = GatedModel.from_fixture(seven_scenes)
    model.gate, model.entered = threading.Event(), threading.Event()
    rig = NodeRig(ros, model, diagnostics_rate_hz=20.0)
    for stamp, i in ((1.0, 0), (1.1, 5), (1.2, 10), (1.3, 15)):
        rig.pub_image.publish(rgb_to_image(seven_scenes["rgb"][i], header(stamp)))
        assert ros.spin_until(lambda n=stamp: rig.node.stats.received.count >= round((n - 0.9) * 10), timeout=5.0)
        if i == 0:
            assert model.entered.wait(10.0)  # the worker is inside the model with frame 0
    model.gate.set()
    assert ros.spin_until(lambda: len(rig.got["depth"]) == 2, timeout=10.0)
    assert rig.node.worker.wait_idle(5.0)
    assert [m.header.stamp.nanosec for m in rig.got["depth"]] == [0, 300_000_000]  # the first and the newest
    assert rig.node.worker.dropped == 2

    def reported() -> bool:
        return any(
            kv.key == "frames dropped" and kv.value == "2"
            for a in rig.got["/diagnostics"]
            for s in a.status
            for kv in s.values
        )

    assert ros.spin_until(reported, timeout=5.0)
