"""Checkpoint reading and exact loading (model-independent parts of fin3r_lib.models.checkpoint)."""

import sys
import types

import pytest
import torch
from torch import nn

from fin3r_lib.errors import CheckpointError
from fin3r_lib.models.checkpoint import load_state_dict_exact, read_state_dict
from fin3r_lib.models.checkpoint_ref import resolve_checkpoint
from fin3r_lib.safe_load import UnsafeContentWarning


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 2)


def test_reads_a_release_style_dict_with_foreign_args_without_importing_them(tmp_path, monkeypatch):
    """Like the CUT3R release: {model, args, epoch}, `module.` prefixes, args of a class not installed."""
    mod = types.ModuleType("vanished_config_lib")

    class Args:
        def __init__(self) -> None:
            self.lr = 0.1

    Args.__module__ = "vanished_config_lib"
    Args.__qualname__ = "Args"
    mod.Args = Args
    monkeypatch.setitem(sys.modules, "vanished_config_lib", mod)
    model = Tiny()
    path = tmp_path / "release.pth"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}, "args": Args(), "epoch": 3}, path)
    monkeypatch.delitem(sys.modules, "vanished_config_lib")  # the class cannot be imported any more

    with pytest.warns(UnsafeContentWarning, match=r"release\.pth: pickled vanished_config_lib\.Args, which"):
        state = read_state_dict(path)
    fresh = Tiny()
    load_state_dict_exact(fresh, state, path)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_safetensors_and_plain_pt_load_bit_exactly(tmp_path):
    from safetensors.torch import save_file

    model = Tiny()
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    torch.save(model.state_dict(), tmp_path / "m.pt")
    for name in ("m.safetensors", "m.pt"):
        fresh = Tiny()
        load_state_dict_exact(fresh, read_state_dict(tmp_path / name))
        assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(Tiny().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=rf"cut\.pt is truncated at byte {len(data) // 2}\b"):
        read_state_dict(path)


def test_mismatch_lists_missing_unexpected_and_misshaped_keys():
    state = Tiny().state_dict()
    del state["b.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["a.weight"] = torch.zeros(5, 3)
    with pytest.raises(CheckpointError) as err:
        load_state_dict_exact(Tiny(), state, "x.pt")
    msg = str(err.value)
    assert "1 missing keys: b.bias" in msg
    assert "1 unexpected keys: extra.weight" in msg
    assert "a.weight (checkpoint (5, 3), model (4, 3))" in msg


def test_nothing_is_loaded_when_keys_mismatch():
    model = Tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: torch.zeros_like(v) for k, v in Tiny().state_dict().items()}
    state.pop("b.weight")
    with pytest.raises(CheckpointError):
        load_state_dict_exact(model, state)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_not_a_state_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        read_state_dict(path)


def test_offline_repo_id_names_repo_cache_and_local_file_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("someorg/some-model")
    msg = str(err.value)
    assert "someorg/some-model" in msg and str(tmp_path / "hf" / "hub") in msg
    assert msg.endswith("pass a local copy: checkpoint='/path/to/model.safetensors'")


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="expected an existing file"):
        resolve_checkpoint(str(tmp_path / "nope.pt"))
