"""`fin3r` imports only the subcommand it runs: `--help` none, `extract` without torch, PEFT or transformers;
`reconstruct` checks its checkpoint before it imports torch."""

import json
import os
import subprocess
import sys

import pytest

from fin3r_lib.cli.main import SUBCOMMANDS, build_parser, requested_command

# Run `fin3r ARGS` in a fresh interpreter and report what it printed, its exit code and the heavy modules it loaded.
CHILD = """
import contextlib, io, json, sys
from fin3r_lib.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
heavy = ("torch", "peft", "transformers", "fin3r_lib.cli.extract", "fin3r_lib.cli.train")
heavy += ("fin3r_lib.cli.reconstruct_run",)
loaded = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"code": code, "stdout": out.getvalue(), "loaded": loaded}))
"""


def run_fin3r(*args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    return {**json.loads(done.stdout.splitlines()[-1]), "stderr": done.stderr}


def test_top_level_help_lists_every_subcommand_and_imports_none():
    out = run_fin3r("--help")
    assert out["code"] == 0
    assert out["loaded"] == []
    for entry in SUBCOMMANDS:
        assert entry.name in out["stdout"] and entry.help[:40] in out["stdout"]


def test_extract_help_imports_only_extract():
    out = run_fin3r("extract", "--help")
    assert out["code"] == 0
    assert "--depth-topic" in out["stdout"]
    assert out["loaded"] == ["fin3r_lib.cli.extract"]


def test_train_loads_its_own_module_and_its_libraries():
    out = run_fin3r("train", "--help")
    assert out["code"] == 0
    assert "fin3r_lib.cli.train" in out["loaded"] and "peft" in out["loaded"]
    assert "fin3r_lib.cli.extract" not in out["loaded"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["reconstruct", "in", "--out", "o"], "reconstruct"), (["-h", "train"], "train"), (["--help"], ""), ([], "")],
)
def test_requested_command_is_the_first_word_that_is_not_an_option(argv, expected):
    assert requested_command(argv) == expected


def test_the_full_parser_has_every_subcommands_options(capsys):
    parser = build_parser()
    for entry in SUBCOMMANDS:
        with pytest.raises(SystemExit):
            parser.parse_args([entry.name, "--help"])
        usage = capsys.readouterr().out
        assert usage.startswith(f"usage: fin3r {entry.name} ") and usage.count(" --") > 3, entry.name


@pytest.mark.parametrize("checkpoint", ["default", "missing"])
def test_reconstruct_with_a_checkpoint_it_cannot_find_fails_before_importing_torch(tmp_path, checkpoint):
    import cv2
    import numpy as np

    images, cache = tmp_path / "images", tmp_path / "empty-cache"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.zeros((8, 8, 3), np.uint8))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    env.pop("HF_HOME", None)
    ref = "default" if checkpoint == "default" else str(tmp_path / "no-such-weights.safetensors")
    out = run_fin3r("reconstruct", str(images), "--out", str(tmp_path / "out"), "--checkpoint", ref, env=env)
    assert out["code"] == 1
    assert out["loaded"] == []  # neither torch nor the run module: the lookup came first
    err = out["stderr"]
    assert err.count("\n") == 1 and err.startswith("fin3r reconstruct: error: cannot load model 'vggt-1b'")
    if checkpoint == "default":
        assert f"model.safetensors not in the Hugging Face cache at {cache}" in err
        assert err.rstrip().endswith("or pass a local copy: --checkpoint /path/to/model.safetensors")
    else:
        assert f"checkpoint {ref!r}: expected an existing file (.safetensors/.pt/.pth)" in err
