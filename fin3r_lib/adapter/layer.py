"""The re-normalized LoRA layer: a PEFT LoRA `Linear` whose forward keeps the q, k, v norms of the base.

For a fused qkv linear (dim -> 3*dim): o0 = W x + b, o = o0 + scale * B(A x); o0 and o are split into
q, k, v (each dim wide) and each slice of o is rescaled to the L2 norm of the same slice of o0:
q' = q * ||q0|| / (||q|| + 1e-6). The rescale depends on the input, so the layer cannot be merged into W.
The LoRA dropout module PEFT creates is never applied (as in the released Fin3R forward).
"""

from __future__ import annotations

from typing import Any

import torch
from peft.tuners.lora.layer import Linear as LoraLinear

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


class ReNormLoraLinear(LoraLinear):
    """PEFT LoRA layer around a fused qkv `nn.Linear` with the Fin3R re-normalized forward.

    Registered for `nn.Linear` through `LoraConfig._register_custom_module`; PEFT's adapter names,
    enable/disable and state-dict helpers work on it unchanged. Disabled, it returns the base layer's
    output untouched.
    """

    def __init__(self, base_layer: torch.nn.Module, adapter_name: str, **kwargs: Any) -> None:
        out_features, in_features = base_layer.out_features, base_layer.in_features
        if out_features != 3 * in_features:
            raise AdapterError(
                f"re-normalized LoRA: expected a fused qkv linear (dim -> 3*dim), got {in_features} -> {out_features}"
            )
        super().__init__(base_layer, adapter_name, **kwargs)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if kwargs.get("adapter_names") is not None:
            raise AdapterError("re-normalized LoRA does not support mixed adapter batches (adapter_names)")
        kwargs.pop("adapter_names", None)
        base = self.base_layer(x, *args, **kwargs)
        active = [name for name in self.active_adapters if name in self.lora_A]
        if self.disable_adapters or not active:
            return base
        base_norms = qkv_norms(base).reshape(-1, 3, 1)
        # Without autograd, base's fresh buffer becomes the output: no further full-width tensor is allocated.
        inplace = not torch.is_grad_enabled() and base.is_contiguous()
        out = base.view(-1, base.shape[-1]) if inplace else base.reshape(-1, base.shape[-1])
        x2d = x.reshape(-1, x.shape[-1])
        for name in active:
            lora_a, lora_b = self.lora_A[name], self.lora_B[name]
            low = lora_a(self._cast_input_dtype(x2d, lora_a.weight.dtype)).to(out.dtype)  # [tokens, r]
            weight_b = lora_b.weight.to(out.dtype).T
            scale = self.scaling[name]
            out = out.addmm_(low, weight_b, alpha=scale) if inplace else torch.addmm(out, low, weight_b, alpha=scale)
        return renormalize_qkv(out, base_norms, inplace=inplace).view(base.shape)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Not possible: the rescale depends on the input, so the adapter stays a separate branch."""
        raise AdapterError("a re-normalized LoRA adapter cannot be merged into the base weights")

    def __repr__(self) -> str:
        return "fin3r." + super().__repr__()
