#!/usr/bin/env bash
# `make demo`: play a recorded sequence through the reconstruction node (in one process) and save what
# it publishes. Default: the 7-Scenes frames in ../shared/data with the tiny model, into out/demo.
# Arguments go to `python -m fin3r_ros.demo` (try --help), e.g. `bash scripts/demo.sh my_video.mp4 --out out/video`.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
exec "${VENV:-.venv}/bin/python" -m fin3r_ros.demo "$@"
