"""`ReconstructLifecycleNode`: the reconstruction node as a managed (rclpy.lifecycle) node.

configure: declare the parameters, load the model, create the runner and the publishers (a bad
parameter or checkpoint fails the transition, logging the one-line reason); activate: subscriptions,
reset service, diagnostics timer and worker start, and the output publishers (lifecycle publishers,
`fin3r_ros.output_publisher`) send; deactivate: they stop, the model and the reconstruction stay;
cleanup: runner, model and publishers are dropped (GPU memory back to the driver where CUDA is in
use); shutdown: as cleanup, from any state. `reconstruct_lifecycle_node` runs it;
`ros2 launch fin3r_ros reconstruct.launch.py lifecycle:=true` starts it configured and active.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import rclpy
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from fin3r_lib.errors import InputError, ModelLoadError
from fin3r_lib.models.base import ReconstructionModel
from fin3r_ros.reconstruct_node import ReconstructCore, spin_until_shutdown


def release_gpu_memory() -> None:
    """Collect garbage and return cached CUDA memory to the driver (no-op without CUDA)."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class ReconstructLifecycleNode(ReconstructCore, LifecycleNode):
    """See the module docstring. `model` injects an already-built backbone at each configure (tests)."""

    def __init__(self, model: ReconstructionModel | None = None, *, node_name: str = "reconstruct_node", **kwargs: Any):
        LifecycleNode.__init__(self, node_name, **kwargs)
        self._injected = model
        self.configure_error = ""  # the one-line reason of the last failed configure

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model; FAILURE (back to unconfigured) with the reason logged when it cannot."""
        try:
            self._load(self._injected)
        except (ModelLoadError, InputError) as exc:
            self.configure_error = str(exc)
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Enable the output publishers, then start the subscriptions, service, timer and worker."""
        enabled = super().on_activate(state)
        self._start_io()
        return enabled

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop taking images (the current frame is published), then disable the output publishers; the model
        and the reconstruction stay."""
        self._stop_io()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop runner, model and publishers; give GPU memory back."""
        self._unload()
        release_gpu_memory()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and unload whatever the state held."""
        if getattr(self, "_io", None):
            self._stop_io()
        if hasattr(self, "runner"):
            self._unload()
            release_gpu_memory()
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Spin an unconfigured managed node until shutdown (`ros2 lifecycle set` or a launch file drives it)."""
    context = rclpy.Context()
    rclpy.init(args=args, context=context)
    try:
        spin_until_shutdown(ReconstructLifecycleNode(context=context), context)
        return 0
    finally:
        if context.ok():
            context.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
