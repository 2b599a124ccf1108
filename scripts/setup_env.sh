#!/usr/bin/env bash
# Create .venv with everything the tests need, on a machine without ROS (Debian/Ubuntu, Python 3.11).
# Idempotent: each step checks whether it is already done; a second run takes seconds.
# GPU machines: set TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA wheel index>")
# before running, or install a CUDA build of torch into .venv first; an importable torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3.11}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
STAMP=$VENV/.fin3r-setup-stamp

log() { printf '[setup] %s\n' "$*"; }

# 1. System library open3d needs (libusb-1.0).
if ! ldconfig -p 2>/dev/null | grep 'libusb-1.0.so.0' >/dev/null; then
  log "installing libusb-1.0-0 (needed by open3d)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libusb-1.0-0 >/dev/null
fi

# 2. The virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# pip install, quiet, without the local-index "is ignored" warnings some machines print per package.
pip_install() {
  "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Everything below is skipped when the inputs did not change since the last successful run.
INPUTS_HASH=$( { cat "$0" setup.py scripts/requirements-ros.txt; find tools/tf2_msgs -type f | sort | xargs cat; } | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$INPUTS_HASH" ] && "$VENV/bin/python" -c "import torch, rclpy, tf2_msgs.msg, fin3r_lib" 2>/dev/null; then
  log "environment up to date ($VENV)"
  exit 0
fi

# 3. PyTorch (CPU wheel from local disk on Python 3.11 unless TORCH_SPEC says otherwise).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  log "installing $TORCH_SPEC"
  # shellcheck disable=SC2086
  pip_install $TORCH_SPEC
fi

# 4. ROS 2 Kilted wheels and the build tools for tf2_msgs.
log "installing ROS 2 wheels"
pip_install -r scripts/requirements-ros.txt

# 5. This package, editable, with its extras.
log "installing fin3r_ros (editable, extras train,eval,test)"
pip_install -e ".[train,eval,test]"

# 6. tf2_msgs from its interface files, unless it already imports.
if ! "$VENV/bin/python" -c "import tf2_msgs.msg" 2>/dev/null; then
  log "building tf2_msgs from interface files"
  bash scripts/build_tf2_msgs.sh "$VENV"
fi

"$VENV/bin/python" -c "import torch, rclpy, tf2_msgs.msg, fin3r_lib, fin3r_ros" 
echo "$INPUTS_HASH" > "$STAMP"
log "done ($VENV)"
