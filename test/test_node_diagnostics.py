"""The node's running figures: windowed rates, timing percentiles, and a WARN status once per batch of errors."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from fin3r_ros.diagnostics import NodeStats, RateMeter


def test_rate_meter_counts_events_per_second_in_its_window() -> None:
    meter = RateMeter(window_s=5.0)
    assert meter.rate(0.0) == 0.0
    for t in (0.0, 0.5, 1.0, 1.5, 2.0):
        meter.tick(t)
    assert meter.count == 5
    assert meter.rate(2.0) == pytest.approx(2.0)
    assert meter.rate(4.0) == pytest.approx(1.0)  # no new events: the rate decays with the time since the first
    assert meter.rate(6.2) == pytest.approx(1 / 4.7)  # 0.0 .. 1.0 left the window; 1.5 and 2.0 remain
    assert meter.rate(100.0) == 0.0 and meter.count == 5  # the window empties, the total stays


def test_status_reports_counts_and_timings_and_warns_only_for_new_errors() -> None:
    stats = NodeStats()
    for _ in range(4):
        stats.frame_received()
    stats.frame_published(model_s=0.010, total_s=0.020, latency_s=0.030, is_keyframe=True)
    stats.frame_published(model_s=0.030, total_s=0.040, latency_s=0.050, is_keyframe=False)
    stats.error("ConversionError")
    status = stats.status("node: reconstruction", "vggt-tiny", dropped=1)
    values = {kv.key: kv.value for kv in status.values}
    assert (status.level, status.name, status.hardware_id) == (
        DiagnosticStatus.WARN,
        "node: reconstruction",
        "vggt-tiny",
    )
    assert values["frames received"] == "4" and values["frames published"] == "2"
    assert values["frames dropped"] == "1" and values["keyframes"] == "1"
    assert values["errors"] == "1" and values["errors: ConversionError"] == "1"
    assert values["model p50 (ms)"] == "20.0" and values["total p50 (ms)"] == "30.0"
    assert values["latency p50 (ms)"] == "40.0" and float(values["latency p99 (ms)"]) == pytest.approx(49.8)
    assert float(values["input rate (Hz)"]) > 0 and float(values["output rate (Hz)"]) > 0
    assert stats.latencies() == [0.030, 0.050]

    again = stats.status("node: reconstruction", "vggt-tiny", dropped=1)
    assert again.level == DiagnosticStatus.OK and again.message == "running"  # the error was reported once


def test_status_without_frames_reports_nan_timings() -> None:
    values = {kv.key: kv.value for kv in NodeStats().status("n", "m", dropped=0).values}
    assert values["model p50 (ms)"] == "nan" and values["input rate (Hz)"] == "0.00"
