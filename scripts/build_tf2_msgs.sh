#!/usr/bin/env bash
# Build tf2_msgs from tools/tf2_msgs into a venv that holds the ROS 2 PyPI wheels (~20 s).
# Usage: scripts/build_tf2_msgs.sh VENV
set -euo pipefail
VENV=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$VENV/bin/python"
PY_INC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NP_INC=$("$PY" -c "import numpy; print(numpy.get_include())")
# The wheels' exported cmake files name the wheel builder's Python include dir; point them at ours.
grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+' "$VENV" --include='*.cmake' 2>/dev/null |
  while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#${PY_INC}#g" "$f"
  done
grep -rlE '/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include' "$VENV" --include='*.cmake' 2>/dev/null |
  while read -r f; do
    sed -i -E "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${NP_INC}#g" "$f"
  done
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
export AMENT_PREFIX_PATH="$VENV"
export PATH="$VENV/bin:$PATH"
cmake -S "$ROOT/tools/tf2_msgs" -B "$BUILD" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
  -DPython3_EXECUTABLE="$PY" -DPYTHON_EXECUTABLE="$PY" -DBUILD_TESTING=OFF >"$BUILD/cmake.log" 2>&1 ||
  { tail -40 "$BUILD/cmake.log"; exit 1; }
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD/build.log" 2>&1 || { tail -40 "$BUILD/build.log"; exit 1; }
cmake --install "$BUILD" >/dev/null
"$PY" -c "from tf2_msgs.msg import TFMessage; TFMessage()" && echo "[setup] tf2_msgs built into $VENV"
