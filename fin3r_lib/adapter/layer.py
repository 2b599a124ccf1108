"""The re-normalized LoRA forward as a PEFT `LoraVariant` on PEFT's own LoRA `Linear` (the way DoRA is built).

For a fused qkv linear (dim -> 3*dim): o0 = W x + b, o = o0 + scale * B(A x); o0 and o are split into
q, k, v (each dim wide) and each slice of o is rescaled to the L2 norm of the same slice of o0:
q' = q * ||q0|| / (||q|| + 1e-6). The rescale depends on the input, so the layer cannot be merged into W.
The LoRA dropout PEFT creates (0.1 in the release) is never applied, as in the released Fin3R forward.

PEFT's `lora.Linear.forward` computes o0 with the base layer, then hands (x, o0) to the variant of each
active adapter in turn. A variant only sees the previous adapter's output, so two re-normalized adapters
active at once cannot both be normalized to o0: that case is refused (Fin3R uses one adapter).
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.lora.layer import Linear as LoraLinear
from peft.tuners.lora.layer import LoraVariant

from fin3r_lib.adapter.config import AdapterError

#: added to the adapted slice's norm, as in the published formula
RENORM_EPS = 1e-6


def qkv_norms(qkv: torch.Tensor) -> torch.Tensor:
    """L2 norms of the q, k and v thirds of `qkv` [..., 3*dim] -> [..., 3, 1]."""
    return torch.linalg.vector_norm(qkv.unflatten(-1, (3, -1)), dim=-1, keepdim=True)


def renormalize_qkv(
    out: torch.Tensor, base_norms: torch.Tensor, eps: float = RENORM_EPS, inplace: bool = False
) -> torch.Tensor:
    """Rescale each of the q, k, v thirds of `out` [..., 3*dim] to the norms `base_norms` [..., 3, 1] of the
    base output's thirds: q' = q * ||q0|| / (||q|| + eps). `inplace` overwrites `out` (no autograd)."""
    o = out.unflatten(-1, (3, -1))
    gain = base_norms / (torch.linalg.vector_norm(o, dim=-1, keepdim=True) + eps)
    return o.mul_(gain).flatten(-2) if inplace else (o * gain).flatten(-2)


def check_fused_qkv(in_features: int, out_features: int) -> None:
    """Raise AdapterError unless a linear of these sizes is a fused qkv projection (dim -> 3*dim)."""
    if out_features != 3 * in_features:
        raise AdapterError(
            f"re-normalized LoRA: expected a fused qkv linear (dim -> 3*dim), got {in_features} -> {out_features}"
        )


class ReNormQkvVariant(LoraVariant):
    """The Fin3R re-normalized LoRA forward for PEFT's `lora.Linear` on a fused qkv linear."""

    def supports_lora_conversion(self) -> bool:
        return False

    @staticmethod
    def init(module: LoraLinear, adapter_name: str, **kwargs: Any) -> None:
        """Check that the layer is a fused qkv linear (dim -> 3*dim); the variant adds no tensors."""
        check_fused_qkv(module.in_features, module.out_features)

    @staticmethod
    def forward(
        module: LoraLinear, active_adapter: str, x: torch.Tensor, result: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        """`result` is the base output o0; returns the re-normalized o0 + scale * B(A x)."""
        active = [name for name in module.active_adapters if name in module.lora_A]
        if len(active) > 1:
            raise AdapterError(
                f"re-normalized LoRA: one active adapter at a time, got {active} (each would be normalized "
                "to the previous one's output instead of the base output)"
            )
        base_norms = qkv_norms(result).reshape(-1, 3, 1)
        # Without autograd, the base output's fresh buffer becomes the output: no further full-width tensor.
        inplace = not torch.is_grad_enabled() and result.is_contiguous()
        out = result.view(-1, result.shape[-1]) if inplace else result.reshape(-1, result.shape[-1])
        lora_a, lora_b = module.lora_A[active_adapter], module.lora_B[active_adapter]
        low = lora_a(x.reshape(-1, x.shape[-1])).to(out.dtype)  # [tokens, r]; PEFT cast x to A's dtype
        weight_b = lora_b.weight.to(out.dtype).T
        scale = module.scaling[active_adapter]
        out = out.addmm_(low, weight_b, alpha=scale) if inplace else torch.addmm(out, low, weight_b, alpha=scale)
        return renormalize_qkv(out, base_norms, inplace=inplace).view(result.shape)

    @staticmethod
    def merge_safe(module: LoraLinear, active_adapter: str, orig_weight: torch.Tensor) -> torch.Tensor:
        raise AdapterError("a re-normalized LoRA adapter cannot be merged into the base weights")

    @staticmethod
    def merge_unsafe(module: LoraLinear, active_adapter: str, orig_weight: torch.Tensor) -> None:
        raise AdapterError("a re-normalized LoRA adapter cannot be merged into the base weights")

    @staticmethod
    def unmerge(module: LoraLinear, active_adapter: str, orig_weight: torch.Tensor) -> torch.Tensor:
        raise AdapterError("a re-normalized LoRA adapter is never merged, so it cannot be unmerged")


def use_renorm_variant(layer: LoraLinear, adapter_name: str) -> None:
    """Give `adapter_name` of a PEFT LoRA `Linear` the re-normalized forward (PEFT's `lora_variant` slot)."""
    if not isinstance(layer, LoraLinear) or adapter_name not in layer.lora_A:
        raise AdapterError(f"re-normalized LoRA: expected a PEFT lora.Linear with adapter {adapter_name!r}")
    ReNormQkvVariant.init(layer, adapter_name)
    layer.lora_variant[adapter_name] = ReNormQkvVariant()


def is_renorm_layer(module: torch.nn.Module, adapter_name: str) -> bool:
    """True for a PEFT LoRA `Linear` whose `adapter_name` uses the re-normalized forward."""
    return isinstance(module, LoraLinear) and isinstance(module.lora_variant.get(adapter_name), ReNormQkvVariant)
