"""Exception types of fin3r_lib: each says what was expected and what came."""


class Fin3rError(Exception):
    """Base class of every error fin3r_lib raises on purpose."""


class CheckpointError(Fin3rError):
    """A checkpoint could not be found, read, or does not match the model it is loaded into."""


class InputError(Fin3rError, ValueError):
    """An input (image, array, file) does not have the expected type, shape or content."""


class SettingError(InputError):
    """A setting of a config dataclass out of its range: `owner.name: expected ..., got ...`."""

    def __init__(self, owner: str, name: str, expected: str, value: object) -> None:
        super().__init__(f"{owner}.{name}: expected {expected}, got {value!r}")
        self.name, self.expected, self.value = name, expected, value


class UnknownModelError(Fin3rError, KeyError):
    """A model name that no factory entry knows."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0]) if self.args else ""


class ModelLoadError(Fin3rError):
    """A model could not be built or loaded (unknown name, bad checkpoint or adapter, unusable device)."""
