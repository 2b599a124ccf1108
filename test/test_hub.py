"""Hub files cache first, offline in about a second with no socket opened, messages a user can act on."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from fin3r_lib.adapter import apply_adapter, save_adapter
from fin3r_lib.adapter.inject import adapter_layers
from fin3r_lib.errors import CheckpointError, ModelLoadError
from fin3r_lib.hub import HubFileMissing, hub_cli_name, resolve_hub_file
from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models import build_model, load_model, model_entry
from fin3r_lib.models.checkpoint_ref import resolve_checkpoint

COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Run in a child with the real environment variables; every socket connection attempt is recorded and refused.
CHILD = """
import json, socket, sys, time
attempts = []
def refuse(self, address):
    attempts.append(repr(address))
    raise OSError("network disabled by the test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
start = time.perf_counter()
from fin3r_lib.hub import resolve_hub_file
try:
    out = {"path": str(resolve_hub_file(sys.argv[1], sys.argv[2], tool=sys.argv[3]))}
except Exception as exc:
    out = {"error": type(exc).__name__, "message": str(exc)}
out["seconds"] = time.perf_counter() - start
out["attempts"] = attempts
print(json.dumps(out))
"""


def fake_cache(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/<file>}."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    return snapshot


def run_child(cache: Path, repo_id: str, filename: str, tool: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    env.pop("HF_HOME", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, repo_id, filename, tool], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    """HF_HUB_OFFLINE and HF_HUB_CACHE as huggingface_hub reads them (its constants), pointed at tmp_path."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_installed_huggingface_hub_has_the_hf_command():
    assert hub_cli_name() == "hf"  # huggingface_hub 2.x ships `hf`, not `huggingface-cli`


def test_offline_miss_fails_fast_without_a_socket_and_says_where_and_how(tmp_path):
    out = run_child(tmp_path / "empty-cache", "facebook/VGGT-1B", "model.safetensors", "cli")
    assert out["error"] == "HubFileMissing"
    assert out["attempts"] == []
    assert out["seconds"] < 3.0
    assert out["message"] == (
        f"checkpoint 'facebook/VGGT-1B': model.safetensors not in the Hugging Face cache at {tmp_path / 'empty-cache'}"
        " and HF_HUB_OFFLINE is set (nothing is downloaded). Download it where the Hub is reachable with "
        "`hf download facebook/VGGT-1B model.safetensors` (or copy that cache folder here), or pass a local copy: "
        "--checkpoint /path/to/model.safetensors"
    )


def test_offline_cache_hit_is_found_by_huggingface_hub_from_the_environment(tmp_path):
    snapshot = fake_cache(tmp_path / "cache", "facebook/VGGT-1B", {"model.safetensors": b"weights"})
    out = run_child(tmp_path / "cache", "facebook/VGGT-1B", "model.safetensors", "ros")
    assert out.get("path") == str(snapshot / "model.safetensors"), out
    assert out["attempts"] == []


@pytest.mark.parametrize(
    ("tool", "hint"),
    [
        ("cli", "--checkpoint /path/to/model.safetensors"),
        ("ros", "checkpoint:=/path/to/model.safetensors"),
        ("python", "checkpoint='/path/to/model.safetensors'"),
    ],
)
def test_the_hint_is_in_the_syntax_of_the_tool(offline_cache, tool, hint):
    with pytest.raises(HubFileMissing) as err:
        resolve_hub_file("facebook/VGGT-1B", "model.safetensors", tool=tool)
    assert str(err.value).endswith("or pass a local copy: " + hint)


def test_unknown_tool_is_refused(offline_cache):
    with pytest.raises(ValueError, match=r"tool: expected one of \['cli', 'python', 'ros'\], got 'rviz'"):
        resolve_hub_file("facebook/VGGT-1B", "model.safetensors", tool="rviz")


def test_default_checkpoint_offline_through_load_model_is_one_error_in_the_node_syntax(offline_cache):
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelOptions("vggt-1b", "default", device="cpu"), tool="ros")
    assert time.perf_counter() - start < 3.0
    msg = str(err.value)
    assert f"model.safetensors not in the Hugging Face cache at {offline_cache}" in msg
    assert "`hf download facebook/VGGT-1B model.safetensors`" in msg
    assert msg.endswith("or pass a local copy: checkpoint:=/path/to/model.safetensors")


def test_a_checkpoint_that_is_not_there_fails_before_the_model_is_built(offline_cache, monkeypatch):
    import dataclasses

    from fin3r_lib.models import registry

    entry, built = model_entry("vggt-1b"), []
    monkeypatch.setitem(registry._REGISTRY, "vggt-1b", dataclasses.replace(entry, builder=lambda: built.append(1)))
    for ref in ("default", str(offline_cache / "no-such.safetensors")):
        with pytest.raises(ModelLoadError, match=r"no such file or folder|not in the Hugging Face cache"):
            load_model(ModelOptions("vggt-1b", ref, device="cpu"), tool="ros")
    assert built == []  # the VGGT-1B builder (imports and meta tensors: over a second) never ran


def test_cached_repo_id_checkpoint_loads_offline(offline_cache):
    state = {k: torch.randn_like(v) for k, v in build_model("vggt-tiny").state_dict().items()}
    path = offline_cache / "weights.safetensors"
    save_file(state, str(path))
    fake_cache(offline_cache, "someone/vggt-tiny", {"model.safetensors": path.read_bytes()})
    model = build_model("vggt-tiny", "someone/vggt-tiny")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_cut3r_default_says_where_its_weights_are_published_and_which_file(offline_cache):
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("default", model_entry("cut3r-512-dpt"), tool="cli")
    assert str(err.value) == (
        "model cut3r-512-dpt has no released 'default' on the Hugging Face Hub: its weights are published at "
        "https://github.com/CUT3R/CUT3R (checkpoint links in its README). Download cut3r_512_dpt_4_64.pth from "
        "there and pass it: --checkpoint /path/to/cut3r_512_dpt_4_64.pth"
    )


@pytest.mark.parametrize(
    ("model", "repo_id"),
    [
        ("dust3r-512-dpt", "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"),
        ("dust3r-512-linear", "naver/DUSt3R_ViTLarge_BaseDecoder_512_linear"),
        ("dust3r-224-linear", "naver/DUSt3R_ViTLarge_BaseDecoder_224_linear"),
        ("mast3r-512", "naver/MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric"),
    ],
)
def test_naver_models_default_is_their_hub_repo(offline_cache, model, repo_id):
    # NAVER's READMEs load these repos with from_pretrained; each holds model.safetensors and config.json
    with pytest.raises(HubFileMissing) as err:
        resolve_checkpoint("default", model_entry(model), tool="cli")
    assert f"`hf download {repo_id} model.safetensors`" in str(err.value)
    assert str(err.value).endswith("or pass a local copy: --checkpoint /path/to/model.safetensors")
    snapshot = fake_cache(offline_cache, repo_id, {"model.safetensors": b"cached", "config.json": b"{}"})
    assert resolve_checkpoint("default", model_entry(model), tool="cli") == snapshot / "model.safetensors"


def test_tiny_model_default_says_it_has_no_released_weights(offline_cache):
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint("default", model_entry("vggt-tiny"), tool="ros")
    assert str(err.value) == (
        "model vggt-tiny has no released weights: it runs with random weights (checkpoint none), "
        "or pass your own file: checkpoint:=/path/to/weights.safetensors"
    )


def _trained_adapter_folder(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(3)
    model = build_model("vggt-tiny")
    apply_adapter(model, rank=4)
    with torch.no_grad():
        for layer in adapter_layers(model):
            for p in layer.parameters():
                if p.requires_grad:
                    p.normal_()
    folder = save_adapter(model, tmp_path / "adapter")
    lora = {k: v.clone() for k, v in model.state_dict().items() if "lora_" in k}
    return folder, lora


def test_adapter_repo_id_is_read_from_the_cache_offline(offline_cache, tmp_path):
    folder, lora = _trained_adapter_folder(tmp_path)
    assert lora
    fake_cache(offline_cache, "someone/fin3r-adapter", {p.name: p.read_bytes() for p in folder.iterdir()})
    model = build_model("vggt-tiny", adapter="someone/fin3r-adapter")
    loaded = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert loaded.keys() == lora.keys()
    assert all(torch.equal(loaded[k], lora[k]) for k in lora)


def test_adapter_repo_id_missing_offline_names_both_files_and_the_cli_flag(offline_cache):
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelOptions("vggt-tiny", "none", device="cpu", adapter="someone/fin3r-adapter"), tool="cli")
    msg = str(err.value)
    assert (
        "adapter 'someone/fin3r-adapter': adapter_config.json adapter_model.safetensors not in the Hugging Face "
        f"cache at {offline_cache}" in msg
    )
    assert "`hf download someone/fin3r-adapter adapter_config.json adapter_model.safetensors`" in msg
    assert msg.endswith("or pass a local copy: --adapter /path/to/fin3r-adapter")
