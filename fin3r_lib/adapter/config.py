"""Settings of the Fin3R re-normalization LoRA adapter, and its error type."""

from __future__ import annotations

from dataclasses import dataclass

from fin3r_lib.errors import Fin3rError

#: rank and alpha of the released Fin3R adapters (scale alpha / rank = 1)
DEFAULT_RANK = 8
DEFAULT_ALPHA = 8.0
#: LoRA dropout of the released adapters: configured in their PEFT config, never applied by the forward
RELEASED_DROPOUT = 0.1
#: PEFT adapter name the layers use (the authors' files carry it in their keys as well)
ADAPTER_NAME = "default"


class AdapterError(Fin3rError):
    """An adapter cannot be applied, loaded or saved: wrong model, rank, file layout or state."""


@dataclass(frozen=True)
class AdapterConfig:
    """Rank and alpha of a re-normalization LoRA adapter (LoRA scale = alpha / rank)."""

    rank: int = DEFAULT_RANK
    alpha: float = DEFAULT_ALPHA

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise AdapterError(f"adapter rank: expected a positive integer, got {self.rank!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not self.alpha > 0:
            raise AdapterError(f"adapter alpha: expected a positive number, got {self.alpha!r}")

    @property
    def scale(self) -> float:
        """Factor on the low-rank branch B(A x)."""
        return self.alpha / self.rank
