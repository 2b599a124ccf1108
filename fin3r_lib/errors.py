"""Exception types of fin3r_lib: each says what was expected and what came."""


class Fin3rError(Exception):
    """Base class of every error fin3r_lib raises on purpose."""


class CheckpointError(Fin3rError):
    """A checkpoint could not be found, read, or does not match the model it is loaded into."""


class InputError(Fin3rError, ValueError):
    """An input (image, array, file) does not have the expected type, shape or content."""


class UnknownModelError(Fin3rError, KeyError):
    """A model name that no factory entry knows."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class ModelLoadError(Fin3rError):
    """A model could not be built or loaded (unknown name, bad checkpoint or adapter, unusable device)."""
