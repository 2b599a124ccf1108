"""The DPT heads run channels-last, as the references' do: CroCo's (CUT3R, DUSt3R, MASt3R) with the same values.

The reference turns tokens into maps with a rearrange whose strides make oneDNN pick channels-last
kernels for the whole head; a transpose + reshape of the same values gave strides that ran the slower
NCHW kernels (CUT3R-512 per frame 8.25 s against the reference's 7.53 s, hand-measured). The speed is
a benchmark matter; this checks the layout every convolution sees and that the values do not change.
VGGT's head builds its maps as a permute + reshape of the normed tokens, which is channels-last at
any frame count; its test keeps it so.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from fin3r_lib.models.cut3r.config import CUT3R_TINY
from fin3r_lib.models.cut3r.heads import DPTHead
from fin3r_lib.models.vggt.config import VGGT_TINY
from fin3r_lib.models.vggt.model import VGGT


def _head_and_tokens(batch: int) -> tuple[DPTHead, list[torch.Tensor], tuple[int, int]]:
    torch.manual_seed(0)
    cfg = dataclasses.replace(CUT3R_TINY, dpt_features=32)
    head = DPTHead(cfg, channels=4).eval()
    size = (6 * cfg.patch_size, 8 * cfg.patch_size)
    dims = (cfg.enc_dim, cfg.dec_dim, cfg.dec_dim, cfg.dec_dim)
    return head, [torch.randn(batch, 48, d) for d in dims], size


def _channels_last_strides(x: torch.Tensor) -> bool:
    """Channels innermost, then width, height, batch (what oneDNN reads as channels-last; a cropped view
    of a channels-last map keeps these strides)."""
    n, c, h, w = x.stride()
    return c == 1 and w >= c and h >= w and n >= h


def _record_conv_layouts(module: nn.Module) -> list[tuple[str, bool]]:
    """(name, channels-last input) of every convolution of `module`, appended as they run."""
    layouts: list[tuple[str, bool]] = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Conv2d | nn.ConvTranspose2d):
            sub.register_forward_pre_hook(
                lambda m, args, name=name, seen=layouts: seen.append((name, _channels_last_strides(args[0])))
            )
    return layouts


def test_every_head_convolution_gets_a_channels_last_input() -> None:
    for batch in (1, 2):
        head, tokens, size = _head_and_tokens(batch)
        layouts = _record_conv_layouts(head)
        with torch.inference_mode():
            out = head(tokens, size)
        assert out.shape == (batch, 4, *size)
        assert len(layouts) > 20 and all(ok for _, ok in layouts), [n for n, ok in layouts if not ok]


def test_every_vggt_depth_head_convolution_gets_a_channels_last_input() -> None:
    torch.manual_seed(0)
    model = VGGT(VGGT_TINY).eval()
    layouts = _record_conv_layouts(model.depth_head)
    for frames in (1, 2):
        layouts.clear()
        with torch.inference_mode():
            out = model(torch.rand(1, frames, 3, 56, 84), heads=("depth",))
        assert out["depth"].shape == (1, frames, 56, 84)
        assert len(layouts) > 20 and all(ok for _, ok in layouts), [n for n, ok in layouts if not ok]


def test_channels_last_maps_give_the_values_of_plain_nchw_maps() -> None:
    head, tokens, size = _head_and_tokens(2)
    nh, nw = size[0] // head.patch_size, size[1] // head.patch_size
    with torch.inference_mode():
        out = head(tokens, size)
        # the same head on maps built the plain way (NCHW-contiguous), layer by layer
        maps = [
            act(tok.transpose(1, 2).reshape(tok.shape[0], tok.shape[2], nh, nw).contiguous())
            for act, tok in zip(head.act_postprocess, tokens, strict=True)
        ]
        plain = head.head(head.scratch(maps))
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)
