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


def renormalize_qkv(out: torch.Tensor, base: torch.Tensor, eps: float = RENORM_EPS) -> torch.Tensor:
    """Rescale each of the q, k, v thirds of `out` [..., 3*dim] to the L2 norm of the same third of `base`."""
    o = out.unflatten(-1, (3, -1))
    o0 = base.unflatten(-1, (3, -1))
    gain = torch.linalg.vector_norm(o0, dim=-1, keepdim=True) / (torch.linalg.vector_norm(o, dim=-1, keepdim=True) + eps)
    return (o * gain).flatten(-2)


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
        out = base
        for name in active:
            lora_a, lora_b = self.lora_A[name], self.lora_B[name]
            out = out + lora_b(lora_a(self._cast_input_dtype(x, lora_a.weight.dtype))) * self.scaling[name]
        return renormalize_qkv(out.to(base.dtype), base)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Not possible: the rescale depends on the input, so the adapter stays a separate branch."""
        raise AdapterError("a re-normalized LoRA adapter cannot be merged into the base weights")

    def __repr__(self) -> str:
        return "fin3r." + super().__repr__()
