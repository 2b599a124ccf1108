"""Stamp pairing of images with camera_info / depth: exact, nearest within tolerance, bounded, counted."""

import pytest

from fin3r_lib.data.pairing import CompanionBuffer, StampPairer
from fin3r_lib.errors import InputError

MS = 1_000_000


def test_exact_stamp_wins_over_a_nearer_looking_latest_message():
    p = StampPairer(("camera_info",), tolerance_s=0.02)
    assert p.add_companion("camera_info", 100 * MS, "info100") == []
    assert p.add_companion("camera_info", 105 * MS, "info105") == []
    (out,) = p.add_image(100 * MS, "img")
    assert out.companions == {"camera_info": "info100"} and out.complete


def test_image_waits_until_its_companion_arrives():
    p = StampPairer(("camera_info", "depth"), tolerance_s=0.01)
    assert p.add_image(200 * MS, "img") == []
    assert p.add_companion("camera_info", 200 * MS, "info") == []  # depth still missing
    (out,) = p.add_companion("depth", 200 * MS, "depth")
    assert out.image == "img" and out.companions == {"camera_info": "info", "depth": "depth"}


def test_nearest_within_tolerance_is_paired_and_beyond_it_is_counted_unpaired():
    p = StampPairer(("camera_info",), tolerance_s=0.01)
    p.add_companion("camera_info", 100 * MS, "a")
    p.add_companion("camera_info", 108 * MS, "b")
    p.add_image(106 * MS, "near")
    p.add_image(150 * MS, "far")
    decided = p.add_companion("camera_info", 200 * MS, "c")
    assert [(d.image, d.companions["camera_info"]) for d in decided] == [("near", "b"), ("far", None)]
    assert p.counts.images == 2 and p.counts.unpaired == {"camera_info": 1}


def test_waiting_queue_is_bounded_and_overflow_is_counted():
    p = StampPairer(("camera_info",), tolerance_s=0.0, max_waiting=3)
    decided = []
    for i in range(10):
        decided += p.add_image(i * MS, f"img{i}")
    assert [d.image for d in decided] == [f"img{i}" for i in range(7)]
    assert p.counts.dropped_waiting == 7 and p.counts.unpaired["camera_info"] == 7
    assert [d.image for d in p.flush()] == ["img7", "img8", "img9"]


def test_companion_buffer_keeps_only_the_newest_and_ignores_out_of_order():
    buf = CompanionBuffer(max_items=3)
    for t in (1, 2, 3, 4, 2):
        buf.add(t * MS, t)
    assert buf.nearest(1 * MS, 0) is None  # evicted
    assert buf.nearest(4 * MS, 0) == (4, 0)
    assert buf.nearest(2 * MS, 0) == (2, 0)  # the late duplicate did not replace the order
    assert buf.newest_ns == 4 * MS


@pytest.mark.parametrize("kwargs", [{"tolerance_s": -1.0}, {"tolerance_s": 0.1, "max_waiting": 0}])
def test_bad_settings_are_refused_with_what_was_expected(kwargs):
    with pytest.raises(InputError, match="expected"):
        StampPairer(("camera_info",), **kwargs)


def test_unknown_stream_is_refused():
    with pytest.raises(InputError, match="unknown stream 'depth'"):
        StampPairer(("camera_info",), 0.1).add_companion("depth", 0, None)


def test_a_stream_that_never_delivered_is_not_waited_for_when_optional():
    p = StampPairer(("camera_info", "depth"), tolerance_s=0.01, wait_for_unheard=False)
    (first,) = p.add_image(100 * MS, "img0")  # nothing heard on either stream: decided at once
    assert first.companions == {"camera_info": None, "depth": None}
    p.add_companion("camera_info", 200 * MS, "info")
    assert p.add_image(205 * MS, "img1") == []  # camera_info was heard: wait for a later one (nearest)
    (second,) = p.add_companion("camera_info", 300 * MS, "info2")
    assert second.companions == {"camera_info": "info", "depth": None}
    assert p.counts.unpaired == {"camera_info": 1, "depth": 2}
