"""Torch pickles never run code (real exploit payloads), real release layouts still load, damaged files are one error.

`data/release_omegaconf_args.pth` was written once with the real omegaconf 2.4.0 (not installed here):
`torch.save({"model": {"module.a.weight": ..., ...}, "args": OmegaConf.create({...}), "epoch": 4}, path)`,
the layout of the CUT3R release (its `args` is a DictConfig).
"""

from __future__ import annotations

import argparse
import builtins
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from fin3r_lib.errors import CheckpointError, ModelLoadError
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.checkpoint import read_state_dict
from fin3r_lib.models.loader import load_model
from fin3r_lib.safe_load import InertObject, UnsafeContentWarning, load_torch_file

DATA = Path(__file__).parent / "data"


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('ran')"


class _Exec:
    def __init__(self, marker: Path, func: object = builtins.exec) -> None:
        self.marker, self.func = marker, func

    def __reduce__(self) -> tuple:
        return (self.func, (_touch_code(self.marker),))


class _System:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class _Popen:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (subprocess.Popen, (["touch", str(self.marker)],))


class _ImportBuiltins:
    def __reduce__(self) -> tuple:
        return (builtins.__import__, ("builtins",))


class _GetattrExec:
    """Pickles as `getattr(__import__("builtins"), "exec")`; the pickler needs it callable."""

    def __call__(self, *args: object) -> None:
        raise AssertionError("only its pickled form is used")

    def __reduce__(self) -> tuple:
        return (getattr, (_ImportBuiltins(), "exec"))


class _GetattrChain:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (_GetattrExec(), (_touch_code(self.marker),))


PAYLOADS = {
    "builtins.exec": lambda m: _Exec(m),
    "builtins.eval": lambda m: _Exec(m, builtins.eval),
    "os.system": _System,
    "subprocess.Popen": _Popen,
    "getattr(builtins, 'exec')": _GetattrChain,
}
#: torch.save's pickle protocol 2 writes Python 2 names (pickle's fix_imports)
PICKLED_AS = {"subprocess.Popen": "commands.Popen"}
#: payloads torch cannot even rebuild (blocked module, a call on a replaced object): refused with an error
REFUSED = {"os.system": "posix.system", "getattr(builtins, 'exec')": "builtins.getattr"}


def _wait_for(marker: Path, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if marker.exists():
            return True
        time.sleep(0.05)
    return False


def _release(payload: object) -> dict:
    """A CUT3R-style release dict with the payload where the training args go."""
    torch.manual_seed(0)
    return {"model": {"module.w": torch.randn(3, 2)}, "args": payload, "epoch": 1}


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_exploit_payload_never_runs(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "release.pth"
    torch.save(_release(PAYLOADS[name](marker)), path)
    # the payload is live: an unrestricted load runs it
    torch.load(path, weights_only=False)
    assert _wait_for(marker), "the payload should run under an unrestricted torch.load"
    marker.unlink()

    if name in REFUSED:
        with pytest.raises(CheckpointError) as err:
            load_torch_file(path)
        assert f"{path} is refused: its pickle would run code" in str(err.value)
        assert REFUSED[name] in str(err.value)
    else:
        pickled = PICKLED_AS.get(name, name)
        with pytest.warns(UnsafeContentWarning, match=rf"release\.pth: pickled {pickled}, which"):
            obj = load_torch_file(path)
        assert isinstance(obj["args"], InertObject) and obj["args"].global_name == pickled
        kept = (["touch", str(marker)],) if name == "subprocess.Popen" else (_touch_code(marker),)
        assert obj["args"].args == kept  # the pickled arguments, as data
        assert torch.equal(obj["model"]["module.w"], _release(None)["model"]["module.w"])
    time.sleep(0.2)  # a spawned process would have had time to write it
    assert not marker.exists()


def test_top_level_payload_is_not_a_state_dict(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    torch.save(_Exec(marker), tmp_path / "evil.pt")
    with pytest.warns(UnsafeContentWarning), pytest.raises(CheckpointError, match="expected a state dict"):
        read_state_dict(tmp_path / "evil.pt")
    assert not marker.exists()


def test_payload_inside_an_adapter_file_never_runs(tmp_path: Path) -> None:
    """The reported hole: a `.pth` given as the node's adapter ran its code (load_model is what the node calls)."""
    marker = tmp_path / "ran"
    path = tmp_path / "vggt_lora.pth"
    torch.save({"lora": _GetattrChain(marker)}, path)
    with pytest.raises(ModelLoadError, match=r"adapter file .*vggt_lora\.pth is refused.*builtins\.getattr"):
        load_model(ModelOptions("vggt-tiny", "none", device="cpu", adapter=str(path)))
    torch.save({"x.attn.qkv.lora_A.weight": torch.zeros(1), "cfg": _Exec(marker)}, path)
    with pytest.warns(UnsafeContentWarning, match="builtins.exec"), pytest.raises(ModelLoadError):
        load_model(ModelOptions("vggt-tiny", "none", device="cpu", adapter=str(path)))
    assert not marker.exists()


def test_cut3r_release_with_omegaconf_args_loads_without_omegaconf() -> None:
    assert "omegaconf" not in sys.modules
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj = load_torch_file(DATA / "release_omegaconf_args.pth")
    assert "omegaconf" not in sys.modules
    assert obj["epoch"] == 4
    assert isinstance(obj["args"], InertObject) and obj["args"].global_name == "omegaconf.dictconfig.DictConfig"
    state = read_state_dict(DATA / "release_omegaconf_args.pth")
    assert sorted(state) == ["module.a.bias", "module.a.weight", "module.b.bias", "module.b.weight"]
    assert state["module.a.weight"].shape == (4, 3)


def test_dust3r_style_namespace_args_load_as_namespace(tmp_path: Path) -> None:
    args = argparse.Namespace(model="AsymmetricCroCo3DStereo(pos_embed='RoPE100')", lr=1e-4, dims=[1, 2])
    torch.save({"model": {"w": torch.ones(2)}, "args": args}, tmp_path / "d.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj = load_torch_file(tmp_path / "d.pth")
    assert obj["args"] == args


def test_legacy_format(tmp_path: Path) -> None:
    torch.save({"w": torch.arange(3.0)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert torch.equal(read_state_dict(tmp_path / "old.pt")["w"], torch.arange(3.0))
    torch.save(
        {"w": torch.ones(1), "args": argparse.Namespace(a=1)},
        tmp_path / "old2.pt",
        _use_new_zipfile_serialization=False,
    )
    with pytest.raises(
        CheckpointError, match=r"old2\.pt was saved with torch's legacy .* re-save it with torch >= 1\.6"
    ):
        load_torch_file(tmp_path / "old2.pt")


def test_garbage_and_truncated_files(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    (tmp_path / "junk.pth").write_bytes(b"<html>not found</html>")
    with pytest.raises(CheckpointError, match=r"junk\.pth is not a torch file: .* found b'<html>no' \(22 bytes\)"):
        read_state_dict(tmp_path / "junk.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"<html>not found</html>")
    with pytest.raises(CheckpointError, match=r"junk\.safetensors is not a safetensors file: expected a JSON header"):
        read_state_dict(tmp_path / "junk.safetensors")
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match=r"tiny\.safetensors is not a safetensors file: 2 bytes"):
        read_state_dict(tmp_path / "tiny.safetensors")
    save_file({"w": torch.zeros(100)}, str(tmp_path / "full.safetensors"))
    data = (tmp_path / "full.safetensors").read_bytes()
    for cut in (len(data) - 10, 20):
        (tmp_path / "cut.safetensors").write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=rf"cut\.safetensors is truncated at byte {cut}:"):
            read_state_dict(tmp_path / "cut.safetensors")
