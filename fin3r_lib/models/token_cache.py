"""Per-image encoder-token cache of a windowed backbone (VGGT in the session).

A windowed session predicts every frame jointly with its context keyframes, so without a cache each
call re-encodes the whole context. The encoder works on each image alone: its tokens depend only on
the image and the encoder (where the Fin3R adapter is). Entries are keyed by the image's content (a
BLAKE2 digest of its pixels, shape and dtype, see `image_key`) and the call's device, dtype and
autocast state; the cache also holds a fingerprint of the encoder (`EncoderFingerprint`), and any
change of the encoder empties it.

The fingerprint covers every parameter and buffer of the encoder by identity (a weak reference, so a
freed tensor whose address is re-used is never taken for the old one), version counter (bumped by
in-place writes: optimizer steps, `load_state_dict`, `copy_` under `no_grad`, also in inference
mode), data pointer, shape, dtype, device and `requires_grad` (which can change a linear's
rounding); and every submodule's name, class and training flag, with a PEFT layer's active adapters,
disabled/merged flags and scalings (injecting, removing, disabling or re-scaling an adapter).
Not seen: writes through `tensor.data`, which bypass the version counter; call `clear()` after one.

Bounded: at most `max_frames` entries (least recently used dropped first). Used only without
autograd (cached tokens carry no graph). Frames missing from the cache are encoded one at a time, so
a frame's tokens never depend on which other frames shared its call: a cached call is bit-identical
to the same call on an empty cache. Against encoding all frames of a call in one batch they may
differ in the last bits, since matmul kernels block by batch size (0 on `vggt-tiny`; about 1e-6 at
VGGT-1B width on CPU, printed by benchmarks/bench_vggt.py).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch
from torch import nn

#: non-tensor state of a PEFT tuner layer that changes its output
_ADAPTER_STATE = ("active_adapters", "disable_adapters", "merged", "scaling")


def image_key(image: np.ndarray) -> bytes:
    """A content key of one image: BLAKE2b-128 of its shape, dtype and pixel bytes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((image.shape, image.dtype.str)).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.digest()


def _tensor_state(t: torch.Tensor) -> tuple:
    return (t._version, t.data_ptr(), t.shape, t.dtype, t.device, t.requires_grad)


def _module_state(module: nn.Module) -> tuple:
    state = []
    for name in _ADAPTER_STATE:
        value = getattr(module, name, None)
        if value is not None:
            state.append((name, sorted(value.items()) if isinstance(value, dict) else value))
    return tuple(state)


def _modules_state(encoder: nn.Module) -> list[tuple]:
    return [(n, type(m), m.training, _module_state(m)) for n, m in encoder.named_modules()]


class EncoderFingerprint:
    """What an encoder's output depends on besides its input, compared without reading any weight."""

    def __init__(self, encoder: nn.Module) -> None:
        tensors = [*encoder.parameters(), *encoder.buffers()]
        self._refs = [weakref.ref(t) for t in tensors]
        self._meta = [_tensor_state(t) for t in tensors]
        self._modules = _modules_state(encoder)

    def matches(self, encoder: nn.Module) -> bool:
        """True when `encoder` is in the same state as when this fingerprint was taken."""
        tensors = [*encoder.parameters(), *encoder.buffers()]
        if len(tensors) != len(self._refs):
            return False
        for ref, meta, t in zip(self._refs, self._meta, tensors, strict=True):
            if ref() is not t or meta != _tensor_state(t):
                return False
        return self._modules == _modules_state(encoder)


class EncoderTokenCache:
    """Encoder tokens of recently seen images (see the module docstring); `max_frames` bounds the entries."""

    def __init__(self, max_frames: int) -> None:
        if max_frames < 1:
            raise ValueError(f"EncoderTokenCache: expected max_frames >= 1, got {max_frames}")
        self.max_frames = max_frames
        self._entries: OrderedDict[Hashable, torch.Tensor] = OrderedDict()
        self._fingerprint: EncoderFingerprint | None = None
        #: frames served from the cache / encoded, since construction (for benchmarks and tests)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached tokens."""
        return sum(t.nbytes for t in self._entries.values())

    def clear(self) -> None:
        """Drop every entry (and the encoder fingerprint)."""
        self._entries.clear()
        self._fingerprint = None

    def encode(
        self,
        encoder: nn.Module,
        keys: Sequence[bytes],
        images: torch.Tensor,
        encode_one: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Tokens [N, P, C] of `images` [N, ...] (`keys[i]` is `image_key` of image i's source pixels).

        `encode_one` maps one image [1, ...] to its tokens [1, P, C] through `encoder`; it runs only for
        images not in the cache (one call each). Under autograd every image is encoded, nothing stored.
        """
        if len(keys) != len(images):
            raise ValueError(f"EncoderTokenCache: expected one key per image, got {len(keys)} for {len(images)}")
        if torch.is_grad_enabled():
            return torch.cat([encode_one(images[i : i + 1]) for i in range(len(images))])
        if self._fingerprint is None or not self._fingerprint.matches(encoder):
            self._entries.clear()
            self._fingerprint = EncoderFingerprint(encoder)
        context = (str(images.device), images.dtype, tuple(images.shape[1:]), _autocast_state(images.device))
        tokens = []
        for i, key in enumerate(keys):
            entry = (key, context)
            cached = self._entries.get(entry)
            if cached is None:
                self.misses += 1
                cached = encode_one(images[i : i + 1])[0].clone()
                self._entries[entry] = cached
            else:
                self.hits += 1
            self._entries.move_to_end(entry)
            tokens.append(cached)
        while len(self._entries) > self.max_frames:
            self._entries.popitem(last=False)
        return torch.stack(tokens)


def _autocast_state(device: torch.device) -> tuple[bool, torch.dtype | None]:
    if not torch.is_autocast_enabled(device.type):
        return (False, None)
    return (True, torch.get_autocast_dtype(device.type))
