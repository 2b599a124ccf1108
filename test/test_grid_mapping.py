"""GridMapping: model-grid <-> input-grid coordinates, intrinsics and map resampling."""

import numpy as np
import pytest
import torch

from fin3r_lib.models.grid import GridMapping

CROP = GridMapping(input_size=(480, 640), resized_size=(392, 518), model_size=(378, 518), offset=(7, 0))
PAD = GridMapping(input_size=(480, 640), resized_size=(392, 518), model_size=(518, 518), offset=(-63, 0))


@pytest.mark.parametrize("mapping", [CROP, PAD], ids=["crop", "pad"])
def test_coordinates_round_trip(mapping):
    u = np.array([0.0, 10.5, 517.0])
    v = np.array([0.0, 100.0, 377.0])
    back = mapping.input_to_model(*mapping.model_to_input(u, v))
    np.testing.assert_allclose(back, (u, v), atol=1e-12)


@pytest.mark.parametrize("mapping", [CROP, PAD], ids=["crop", "pad"])
def test_intrinsics_follow_the_pixel_mapping(mapping):
    """A 3D point projects to corresponding pixels with the model-grid and the input-grid intrinsics."""
    k_model = np.array([[400.0, 0, 259.0], [0, 410.0, 189.0], [0, 0, 1]])
    k_input = mapping.intrinsics_to_input(k_model)
    pts = np.array([[0.1, -0.2, 1.0], [0.5, 0.3, 2.0], [-0.7, 0.1, 3.0]])
    uv_m = (k_model @ pts.T).T
    uv_m = uv_m[:, :2] / uv_m[:, 2:]
    uv_i = (k_input @ pts.T).T
    uv_i = uv_i[:, :2] / uv_i[:, 2:]
    np.testing.assert_allclose(np.stack(mapping.model_to_input(uv_m[:, 0], uv_m[:, 1]), 1), uv_i, atol=1e-9)
    np.testing.assert_allclose(mapping.intrinsics_to_model(k_input), k_model, atol=1e-12)


def test_to_input_resamples_a_linear_ramp_exactly():
    """A map linear in model-grid u resamples to the same linear function of input u (bilinear is exact)."""
    hm, wm = CROP.model_size
    ramp = torch.arange(wm, dtype=torch.float64).repeat(hm, 1)[None, None]
    out = CROP.to_input(ramp)[0, 0].numpy()
    u_in = np.arange(640.0)
    expected_u, _ = CROP.input_to_model(u_in, np.zeros_like(u_in))
    inside = (expected_u >= 0) & (expected_u <= wm - 1)
    np.testing.assert_allclose(out[240, inside], expected_u[inside], atol=1e-9)


def test_to_input_marks_cropped_rows_with_fill():
    """Rows of the input cropped away before the model grid get the fill value; the rest is finite."""
    hm, wm = CROP.model_size
    out = CROP.to_input(torch.ones(1, 1, hm, wm))[0, 0].numpy()
    _, v_model = CROP.input_to_model(np.zeros(480), np.arange(480.0))
    outside = (v_model < -0.5) | (v_model > hm - 0.5)
    assert outside.any()
    assert np.isnan(out[outside]).all()
    assert np.isfinite(out[~outside]).all()


def test_to_input_rejects_maps_of_another_size():
    with pytest.raises(ValueError, match="expected maps of size"):
        CROP.to_input(torch.zeros(1, 1, 10, 10))
