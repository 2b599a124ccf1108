"""Cost of the Fin3R re-normalization adapter: VGGT encoder forward with and without it, one process.

Configurations (random weights, fp32, CPU unless --device says otherwise):
- `tiny`: the `vggt-tiny` encoder (2 blocks, width 64), 2 images 518x392;
- `full`: the VGGT-1B encoder (DINOv2 ViT-L/14: 24 blocks, width 1024, 16 heads), 1 image 518x392,
  i.e. 37x28 patches + 5 tokens = 1041 tokens per block. Only the encoder is materialized; the rest
  of VGGT-1B stays on the meta device.

Three variants of the same encoder, timed interleaved (round-robin, order rotated each round):
`plain` (the original qkv linears, no PEFT layers), `disabled` (adapter injected, switched off) and
`adapter` (injected, random A and B). Prints the median time of each and the ratios to `plain`;
target: adapter / plain <= 1.03 at full width.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch

from fin3r_lib.adapter import adapter_disabled, adapter_layers, apply_adapter
from fin3r_lib.models import build_model
from fin3r_lib.models.base import ReconstructionModel
from fin3r_lib.models.vggt.config import VGGT_1B
from fin3r_lib.models.vggt.patch_embed import DinoV2Encoder

HEIGHT, WIDTH = 392, 518


def _vggt_1b_encoder_only(device: torch.device) -> ReconstructionModel:
    """VGGT-1B built on meta, with a real randomly initialized encoder put in on `device`."""
    model = build_model("vggt-1b", device="meta")
    cfg = VGGT_1B
    encoder = DinoV2Encoder(
        cfg.image_size, cfg.patch_size, cfg.embed_dim, cfg.encoder_depth, cfg.num_heads, cfg.num_register_tokens
    )
    model.aggregator.patch_embed = encoder.to(device)
    return model


@contextmanager
def _plain_qkv(model: ReconstructionModel) -> Iterator[None]:
    """Put the original qkv linears back in place of the adapter layers for the duration."""
    layers = adapter_layers(model)
    for block, layer in zip(model.encoder_blocks(), layers, strict=True):
        block.attn.qkv = layer.base_layer
    try:
        yield
    finally:
        for block, layer in zip(model.encoder_blocks(), layers, strict=True):
            block.attn.qkv = layer


def _timer(model: ReconstructionModel, images: torch.Tensor, device: torch.device) -> Callable[[], float]:
    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model.encode(images)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    return run


def bench(config: str, device: torch.device, rounds: int) -> dict[str, float]:
    """Median encoder time (s) of each variant for `config` ('tiny' or 'full')."""
    torch.manual_seed(0)
    if config == "full":
        model, frames = _vggt_1b_encoder_only(device), 1
    else:
        model, frames = build_model("vggt-tiny", device=device), 2
    model.eval()
    apply_adapter(model)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_" in name:
                param.normal_(0.0, 0.02)
    images = torch.rand(1, frames, 3, HEIGHT, WIDTH, device=device)
    run = _timer(model, images, device)
    variants = {
        "plain": lambda: _plain_qkv(model),
        "disabled": lambda: adapter_disabled(model),
        "adapter": nullcontext,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    with torch.inference_mode():
        for name in names:  # warm-up
            with variants[name]():
                run()
        for r in range(rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                with variants[name]():
                    times[name].append(run())
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--rounds", type=int, default=5, help="timed forwards per variant (default 5)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"device {device}, fp32, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.rounds} rounds"
    )
    for config in args.configs:
        t = bench(config, device, args.rounds)
        print(
            f"{config:5s} plain {t['plain'] * 1e3:9.2f} ms  disabled {t['disabled'] * 1e3:9.2f} ms  "
            f"adapter {t['adapter'] * 1e3:9.2f} ms  | disabled/plain {t['disabled'] / t['plain']:.4f}  "
            f"adapter/plain {t['adapter'] / t['plain']:.4f}"
        )
    print("target: adapter/plain <= 1.03 at full width")


if __name__ == "__main__":
    main()
