"""`python -m fin3r_ros.demo` with a bad model, input or intrinsics: one error line, exit 1, nothing written."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from fin3r_ros.demo import main


def test_missing_input_through_python_m_is_one_line_and_exit_1(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "fin3r_ros.demo", str(tmp_path / "no-such-folder"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"fin3r demo: error: {tmp_path / 'no-such-folder'}: no such file or folder"]
    assert not out.exists()


def test_unknown_model_is_one_line_and_exit_1(tmp_path, capsys, seven_scenes_dir):
    out = tmp_path / "out"
    assert main([str(seven_scenes_dir), "--model", "vggt-7b", "--out", str(out)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("fin3r demo: error: unknown model 'vggt-7b'; expected one of: ")
    assert "vggt-tiny" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(("text", "expected"), [("1 0 0\n0 1 0\n", "got shape (2, 3)"), ("a b c", "3x3 matrix")])
def test_bad_intrinsics_file_is_one_line_and_exit_1(tmp_path, capsys, text, expected):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "000000.png"), np.zeros((32, 48, 3), np.uint8))
    k_file = tmp_path / "K.txt"
    k_file.write_text(text)
    assert main([str(frames), "--intrinsics", str(k_file), "--out", str(tmp_path / "out")]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"fin3r demo: error: intrinsics {k_file}: expected ") and expected in line
