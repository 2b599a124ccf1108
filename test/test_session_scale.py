"""Metric scale from odometry keyframe positions and from an aligned depth sensor."""

import numpy as np
import pytest

from fin3r_lib.errors import InputError
from fin3r_lib.session.scale import ScaleConfig, ScaleEstimator, scaled_frame


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def test_odometry_scale_is_recovered_within_one_percent_despite_noise_and_an_outlier():
    rng = np.random.default_rng(0)
    true_scale = 2.7  # metres per model unit
    odom = np.cumsum(rng.normal(scale=0.1, size=(30, 3)), axis=0)  # a 3 m-ish walk
    rot, offset = _random_rotation(rng), rng.normal(size=3)
    model = (odom - offset) @ rot / true_scale  # model frame: another origin, orientation and unit
    noisy = odom + rng.normal(scale=0.005, size=odom.shape)
    noisy[7] += 1.0  # one bad odometry sample
    est = ScaleEstimator(ScaleConfig(source="odometry"))
    for m, o in zip(model, noisy, strict=True):
        e = est.add_positions(m, o)
    assert e.scale == pytest.approx(true_scale, rel=0.01)
    assert 0 <= e.spread < 0.1 and e.samples == 30 and "odometry scale" in e.status


def test_odometry_with_too_little_baseline_says_so_and_gives_no_scale():
    est = ScaleEstimator(ScaleConfig(source="odometry", min_baseline_m=0.5))
    for k in range(10):
        e = est.add_positions([k * 0.1, 0, 0], [k * 0.01, 0, 0])  # 9 cm of motion
    assert e.scale is None and "too little baseline" in e.status and "model units" in e.status


def test_odometry_window_follows_a_scale_change_after_reset():
    est = ScaleEstimator(ScaleConfig(source="odometry", window=10))
    for k in range(10):
        est.add_positions([k, 0, 0], [0.5 * k, 0, 0])
    assert est.estimate.scale == pytest.approx(0.5)
    est.reset()
    assert est.estimate.scale is None
    for k in range(10):
        est.add_positions([0, k, 0], [0, 3.0 * k, 0])
    assert est.estimate.scale == pytest.approx(3.0)


def test_depth_scale_is_the_robust_ratio_over_valid_pixels():
    rng = np.random.default_rng(1)
    pred = rng.uniform(0.5, 2.0, size=(48, 64))
    sensor = pred * 1.8 * (1 + rng.normal(scale=0.01, size=pred.shape))
    sensor[:10] = 0.0  # holes
    sensor[10:14] = np.nan
    sensor[14:16] = 50.0  # beyond range
    pred[40:, :5] = np.inf
    est = ScaleEstimator(ScaleConfig(source="depth"))
    for _ in range(3):
        e = est.add_depth(pred, sensor)
    assert e.scale == pytest.approx(1.8, rel=0.01) and e.samples == 3


def test_depth_with_too_few_valid_pixels_stays_in_model_units():
    est = ScaleEstimator(ScaleConfig(source="depth", min_valid_pixels=100))
    e = est.add_depth(np.ones((8, 8)), np.ones((8, 8)))
    assert e.scale is None and "64 valid pixels, need 100" in e.status


def test_depth_shape_mismatch_and_wrong_source_are_refused():
    est = ScaleEstimator(ScaleConfig(source="depth"))
    with pytest.raises(InputError, match=r"shape \(4, 4\), got \(2, 2\)"):
        est.add_depth(np.ones((4, 4)), np.ones((2, 2)))
    with pytest.raises(InputError, match="scale_source is 'depth'"):
        est.add_positions([0, 0, 0], [0, 0, 0])


@pytest.mark.parametrize("kwargs", [{"source": "gps"}, {"window": 0}, {"trim": 0.5}, {"min_baseline_m": 0}])
def test_bad_scale_settings_are_refused(kwargs):
    with pytest.raises(InputError, match="expected"):
        ScaleConfig(**kwargs)


def _session_run(data: dict[str, np.ndarray], seed: int):
    """The GT backend at an unknown per-call scale through a windowed session; (model, results)."""
    from gt_backend import GroundTruthModel

    from fin3r_lib.data.frame import Frame
    from fin3r_lib.session import ReconstructionSession, SessionConfig

    model = GroundTruthModel.from_fixture(data, scale_range=(0.3, 3.0), seed=seed)
    session = ReconstructionSession(model, SessionConfig(context_size=3, keyframe_min_flow_px=4.0))
    frames = [Frame(rgb=img, stamp=i / 30.0, intrinsics=data["K"], index=i) for i, img in enumerate(data["rgb"])]
    return model, [session.process(f) for f in frames]


def test_odometry_scale_makes_a_gt_session_metric_within_one_percent(small_scenes):
    _, results = _session_run(small_scenes, seed=4)
    rng = np.random.default_rng(5)
    odom_from_world = np.eye(4)
    odom_from_world[:3, :3], odom_from_world[:3, 3] = _random_rotation(rng), [3.0, -1.0, 0.2]
    est = ScaleEstimator(ScaleConfig(source="odometry", min_baseline_m=0.1, window=50))
    truth = small_scenes["poses"]
    for k, r in enumerate(results):
        if r.is_keyframe:
            odom_pos = (odom_from_world @ truth[k])[:3, 3] + rng.normal(scale=0.003, size=3)
            est.add_positions(r.frame.cam_to_world[:3, 3], odom_pos)
    assert est.estimate.scale is not None, est.estimate.status
    assert abs(est.estimate.scale - 1.0) > 0.1  # the session was not metric to begin with
    metric = [scaled_frame(r.frame, est.estimate.scale) for r in results]
    # metric distances between the published camera positions equal the true ones
    got = np.linalg.norm(metric[-1].cam_to_world[:3, 3] - metric[0].cam_to_world[:3, 3])
    want = np.linalg.norm(truth[-1][:3, 3] - truth[0][:3, 3])
    assert got == pytest.approx(want, rel=0.01)
    valid = small_scenes["depth_mm"][-1] > 0
    np.testing.assert_allclose(
        np.median(metric[-1].depth[valid] / (small_scenes["depth_mm"][-1][valid] / 1000.0)), 1.0, rtol=0.01
    )


def test_depth_scale_makes_a_gt_session_metric_within_one_percent(small_scenes):
    _, results = _session_run(small_scenes, seed=6)
    rng = np.random.default_rng(7)
    est = ScaleEstimator(ScaleConfig(source="depth"))
    for r, depth_mm in zip(results, small_scenes["depth_mm"], strict=True):
        sensor = depth_mm / 1000.0 * (1 + rng.normal(scale=0.01, size=depth_mm.shape))
        est.add_depth(r.frame.depth, sensor)
    assert abs(est.estimate.scale - 1.0) > 0.1
    metric = scaled_frame(results[-1].frame, est.estimate.scale)
    truth = small_scenes["poses"]
    got = np.linalg.norm(metric.cam_to_world[:3, 3] - est.estimate.scale * results[0].frame.cam_to_world[:3, 3])
    assert got == pytest.approx(np.linalg.norm(truth[-1][:3, 3] - truth[0][:3, 3]), rel=0.01)
    assert not metric.relative_scale


def test_scale_state_round_trips_and_refuses_what_does_not_fit():
    est = ScaleEstimator(ScaleConfig(source="odometry", window=10))
    for k in range(6):
        est.add_positions([k, 0.1 * k, 0], [0.5 * k, 0.05 * k, 0])
    arrays, doc = est.state_dict()
    again = ScaleEstimator(ScaleConfig(source="odometry", window=10))
    again.load_state_dict(arrays, doc)
    assert again.estimate == est.estimate
    assert again.add_positions([7, 0.7, 0], [3.5, 0.35, 0]) == est.add_positions([7, 0.7, 0], [3.5, 0.35, 0])
    with pytest.raises(InputError, match=r"expected \(N, 3\) model and odometry positions"):
        again.load_state_dict({**arrays, "odom": arrays["odom"][:-1]}, doc)
    with pytest.raises(InputError, match="expected at most window=3 samples"):
        ScaleEstimator(ScaleConfig(source="odometry", window=3)).load_state_dict(arrays, doc)
