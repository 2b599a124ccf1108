"""Where a model's pixel grid sits in the input image, and mapping predictions back to it.

Every backbone resizes (and crops or pads) the input to its own grid. `GridMapping` records that
placement so that per-pixel outputs and intrinsics are returned on the input image's grid, which
keeps a ROS camera_info valid. Pixel centres are at integer coordinates; resizing follows the
half-pixel convention of OpenCV and `torch.nn.functional.interpolate(align_corners=False)`:
input u = (resized u + 0.5) * (input width / resized width) - 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class GridMapping:
    """Input image (H, W) -> resized (Hr, Wr) -> model grid (Hm, Wm) at `offset` inside the resized image.

    `offset` = (oy, ox): model pixel (0, 0) is resized pixel (oy, ox); positive for a crop, negative
    for padding.
    """

    input_size: tuple[int, int]
    resized_size: tuple[int, int]
    model_size: tuple[int, int]
    offset: tuple[int, int] = (0, 0)

    @property
    def scale(self) -> tuple[float, float]:
        """(sy, sx): input pixels per resized pixel."""
        return self.input_size[0] / self.resized_size[0], self.input_size[1] / self.resized_size[1]

    def model_to_input(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model-grid pixel coordinates -> input-image pixel coordinates."""
        sy, sx = self.scale
        return (u + self.offset[1] + 0.5) * sx - 0.5, (v + self.offset[0] + 0.5) * sy - 0.5

    def input_to_model(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input-image pixel coordinates -> model-grid pixel coordinates."""
        sy, sx = self.scale
        return (u + 0.5) / sx - 0.5 - self.offset[1], (v + 0.5) / sy - 0.5 - self.offset[0]

    def intrinsics_to_input(self, k_model: np.ndarray) -> np.ndarray:
        """Intrinsics of the model grid -> intrinsics of the input image (..., 3, 3)."""
        sy, sx = self.scale
        k = np.array(k_model, dtype=np.float64, copy=True)
        k[..., 0, 0] *= sx
        k[..., 0, 1] *= sx
        k[..., 1, 1] *= sy
        k[..., 0, 2] = (k[..., 0, 2] + self.offset[1] + 0.5) * sx - 0.5
        k[..., 1, 2] = (k[..., 1, 2] + self.offset[0] + 0.5) * sy - 0.5
        return k

    def intrinsics_to_model(self, k_input: np.ndarray) -> np.ndarray:
        """Intrinsics of the input image -> intrinsics of the model grid (..., 3, 3)."""
        sy, sx = self.scale
        k = np.array(k_input, dtype=np.float64, copy=True)
        k[..., 0, 0] /= sx
        k[..., 0, 1] /= sx
        k[..., 1, 1] /= sy
        k[..., 0, 2] = (k[..., 0, 2] + 0.5) / sx - 0.5 - self.offset[1]
        k[..., 1, 2] = (k[..., 1, 2] + 0.5) / sy - 0.5 - self.offset[0]
        return k

    def to_input(self, maps: torch.Tensor, fill: float = float("nan"), mode: str = "bilinear") -> torch.Tensor:
        """Resample model-grid maps (N, C, Hm, Wm) onto the input grid (N, C, H, W).

        Input pixels that fall outside the model grid (cropped away) get `fill`.
        """
        h, w = self.input_size
        hm, wm = self.model_size
        if maps.shape[-2:] != (hm, wm):
            raise ValueError(f"GridMapping.to_input: expected maps of size {(hm, wm)}, got {tuple(maps.shape[-2:])}")
        if (h, w) == (hm, wm) and self.resized_size == (hm, wm) and self.offset == (0, 0):
            return maps
        dev = maps.device
        u_in = torch.arange(w, device=dev, dtype=torch.float64)
        v_in = torch.arange(h, device=dev, dtype=torch.float64)
        sy, sx = self.scale
        um = (u_in + 0.5) / sx - 0.5 - self.offset[1]
        vm = (v_in + 0.5) / sy - 0.5 - self.offset[0]
        gx = (2 * um / max(wm - 1, 1) - 1).to(maps.dtype)
        gy = (2 * vm / max(hm - 1, 1) - 1).to(maps.dtype)
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)
        grid = grid.unsqueeze(0).expand(maps.shape[0], h, w, 2)
        out = F.grid_sample(maps, grid, mode=mode, padding_mode="border", align_corners=True)
        outside_u = (um < -0.5) | (um > wm - 0.5)
        outside_v = (vm < -0.5) | (vm > hm - 0.5)
        outside = outside_v[:, None] | outside_u[None, :]
        if bool(outside.any()):
            out = out.masked_fill(outside.to(out.device), fill)
        return out
