#!/usr/bin/env bash
# `make train-demo`: logs in, adapter out, adapter into the node, on the shared 7-Scenes frames (RGB-D),
# in a few minutes on a CPU (training/configs/tiny-cpu.yaml: vggt-tiny, random base weights of seed 0):
#   1. fin3r label     the sensor teacher's labels (the frames' own depth), cached in RUN/labels
#   2. fin3r train     the adapter, from frames 10.. (frames 0-9 are held out) -> RUN/train
#   3. fin3r evaluate  base vs adapter on the held-out frames 0-9 -> RUN/evaluate (results.md printed)
#   4. the node        every frame through reconstruct_node with the adapter -> RUN/node
# Usage: [DATA=DIR] [RUN=DIR] bash scripts/train_demo.sh [KEY=VALUE ...]   (fin3r train overrides, e.g. steps=200)
# The tiny base is random, so the figures show the pipeline working, not Fin3R's effect on a trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"
PY="${VENV:-.venv}/bin/python"
DATA="${DATA:-../shared/data/7scenes-redkitchen-150-199}"
RUN="${RUN:-out/train-demo/$(date +%Y%m%d-%H%M%S)}"
HELD_OUT=10
SEED=0  # tiny-cpu.yaml's seed (the default of the node and the CLI): the base the adapter was trained on
[ -d "$DATA" ] || { echo "train-demo: error: $DATA is not a folder (give an RGB-D frame folder as DATA=...)" >&2; exit 1; }
[ ! -e "$RUN" ] || { echo "train-demo: error: $RUN exists; give a new folder as RUN=..." >&2; exit 1; }

echo "== 1/4 fin3r label $DATA (sensor teacher)"
"$PY" -m fin3r_lib.cli.main label "$DATA" --out "$RUN/labels" --quiet
echo "== 2/4 fin3r train training/configs/tiny-cpu.yaml (frames $HELD_OUT.. of $DATA)"
"$PY" -m fin3r_lib.cli.main train training/configs/tiny-cpu.yaml \
    "single_view.0.path=$DATA" "single_view.0.labels=$RUN/labels" "single_view.0.first=$HELD_OUT" \
    "replay.0.path=$DATA" "replay.0.first=$HELD_OUT" "seed=$SEED" "out=$RUN/train" "$@" --quiet
ADAPTER="$RUN/train/adapter-last.safetensors"
echo "== 3/4 fin3r evaluate: base vs adapter on the held-out frames 0-$((HELD_OUT - 1))"
"$PY" -m fin3r_lib.cli.main evaluate "$DATA" --out "$RUN/evaluate" --level model --model vggt-tiny \
    --checkpoint none --seed "$SEED" --compare "$ADAPTER" --max-frames "$HELD_OUT" --quiet
cat "$RUN/evaluate/results.md"
echo "== 4/4 reconstruct_node with the adapter (watch: ros2 launch fin3r_ros reconstruct.launch.py model:=vggt-tiny checkpoint:=none adapter:=$ADAPTER)"
"$PY" -m fin3r_ros.demo "$DATA" --model vggt-tiny --checkpoint none --seed "$SEED" --adapter "$ADAPTER" --out "$RUN/node"
echo "train-demo: adapter $ADAPTER; evaluation $RUN/evaluate; node outputs $RUN/node"
