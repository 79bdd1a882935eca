#!/usr/bin/env bash
# Long trainings on a small machine: one "lane" per core, each working through its part of a queue,
# one thread per job, at low priority (nice), resuming whatever was interrupted.
#
#   scripts/lanes.sh start [LANE...]  # start every lane of the queue (or only those named) in the background
#   scripts/lanes.sh status           # each run: done / running / checkpoint epoch / not started
#   scripts/lanes.sh stop             # Ctrl-C each running training (it saves a checkpoint), stop the lanes
#   scripts/lanes.sh park             # copy each unfinished run's newest checkpoint into PARKED (to commit)
#   scripts/lanes.sh unpark           # restore parked runs into RUNS (start does it first)
#
# A machine that does not outlive the session loses RUNS.  `park` (after `stop`) copies every unfinished
# run's newest checkpoint, its recipe, metrics and logs into PARKED (default: parked/ in this checkout,
# a few MB a run; a checkpoint over PARK_MAX_MB, default 20, is left out), to be committed; `start` restores a
# parked run that RUNS lacks before it resumes it, so the next session on a fresh machine goes on exactly where
# this one stopped.
#
# The queue (QUEUE, default scripts/lanes.queue) has one run a line: `LANE NAME ARGS...`, where ARGS are
# `whatwhere train` arguments (recipe, --profile, --set ..., with shell quoting) and NAME the run directory under RUNS
# (default /work/runs, outside the checkout).  A run with model.safetensors is done and skipped; one with a
# checkpoint is resumed (--resume), exactly.  A line `F NAME CURVE EVERY` starts scripts/follow_run.sh on
# RUNS/NAME: every EVERY-th epoch-end checkpoint is benchmarked into RUNS/CURVE as it lands.  CODE (default: this checkout) is the source tree the lanes
# run, so that a checkout can change while they train: point it at a worktree of a fixed commit.
set -uo pipefail
here=${LANES_HOME:-"$(cd "$(dirname "$0")/.." && pwd)"}
QUEUE=${QUEUE:-$here/scripts/lanes.queue}
RUNS=${RUNS:-/work/runs}
CODE=${CODE:-$here}
PY=${PY:-$here/.venv/bin/python}
NICE=${NICE:-10}
THREADS=${THREADS:-1}  # threads per training: 1 while two lanes share two cores; 2 for one lane alone
PARKED=${PARKED:-$here/parked}
PARK_MAX_MB=${PARK_MAX_MB:-20}  # a bigger checkpoint (STN-128's: about 45 MB) is not parked: git is not for it
mkdir -p "$RUNS"

items() {  # the queue's runs of lane $1 (or all): "LANE NAME ARGS..."
  grep -v '^\s*#' "$QUEUE" | awk -v lane="${1:-}" 'NF >= 3 && $1 != "F" && (lane == "" || $1 == lane)'
}

lane() {  # work through lane $1
  local l=$1
  rm -f "$RUNS/.stop-$l"
  while read -r _ name args; do
    [ -e "$RUNS/.stop-$l" ] && break
    local out="$RUNS/$name"
    [ -f "$out/model.safetensors" ] && continue
    local resume=""
    [ -f "$out/checkpoints/latest.json" ] && resume="--resume"
    mkdir -p "$out"
    echo "$(date -u +%FT%TZ) lane $l: $name ($args $resume, $THREADS threads) from $CODE at $(git -C "$CODE" rev-parse --short HEAD)" \
      >> "$out/lane.log"
    local argv
    eval "argv=($args)"  # the queue's shell quoting: --set "init={what: zoo:stn28}"
    (cd "$CODE" && OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS PYTHONPATH="$CODE/src" exec nice -n "$NICE" \
      "$PY" -c 'import sys; from whatwhere.cli import main; sys.argv[0] = "whatwhere"; sys.exit(main())' \
      train "${argv[@]}" --out "$out" --no-progress $resume) >> "$out/train.log" 2>&1 &
    echo $! > "$RUNS/.pid-$l"
    wait $!
    echo "$(date -u +%FT%TZ) lane $l: $name exited $?" >> "$out/lane.log"
    rm -f "$RUNS/.pid-$l"
  done < <(items "$l")
}

unpark() {  # restore the queue's parked runs that RUNS lacks (or whose checkpoint is older than the parked one)
  local p name mine theirs
  for p in "$PARKED"/*/; do
    [ -f "$p/checkpoints/latest.json" ] || continue
    name=$(basename "$p")
    items | awk -v n="$name" '$2 == n {f = 1} END {exit !f}' || continue  # e.g. scripts/gpu_sitting.sh's runs
    [ -f "$RUNS/$name/model.safetensors" ] && continue
    mine=$(epoch_of "$RUNS/$name/checkpoints/latest.json")
    theirs=$(epoch_of "$p/checkpoints/latest.json")
    if [ "$theirs" -gt "$mine" ]; then
      mkdir -p "$RUNS/$name"
      cp -r "$p/." "$RUNS/$name/"
      echo "restored parked $name (checkpoint $(( theirs / 1000000 )), batch $(( theirs % 1000000 )))"
    fi
  done
}

epoch_of() {  # a checkpoint pointer's position as one sortable number (epoch * 1e6 + batch); 0 if none
  [ -f "$1" ] || { echo 0; return; }
  sed 's/.*"epoch": \([0-9]*\).*"batch": \([0-9]*\).*/\1 \2/' "$1" | awk '{print $1 * 1000000 + $2}'
}

park() {  # copy each unfinished run's newest checkpoint (and its recipe, metrics, logs) into PARKED
  local name out stem
  items | while read -r _ name _; do
    out="$RUNS/$name"
    [ -f "$out/model.safetensors" ] && { rm -rf "${PARKED:?}/$name"; continue; }
    [ -f "$out/checkpoints/latest.json" ] || continue
    stem=$(sed 's/.*"stem": "\([^"]*\)".*/\1/' "$out/checkpoints/latest.json")
    kb=$(du -ck "$out/checkpoints/$stem.safetensors" "$out/checkpoints/$stem.state.pt" 2>/dev/null | tail -n 1 | cut -f1)
    if [ "${kb:-0}" -gt $(( PARK_MAX_MB * 1024 )) ]; then  # too big to commit: it stays in RUNS only
      echo "not parking $name: its checkpoint is $(( kb / 1024 )) MB (> PARK_MAX_MB=$PARK_MAX_MB); a fresh machine restarts it"
      continue
    fi
    rm -rf "${PARKED:?}/$name.new"
    mkdir -p "$PARKED/$name.new/checkpoints"
    cp "$out/checkpoints/$stem.safetensors" "$out/checkpoints/$stem.state.pt" "$out/checkpoints/latest.json" \
      "$PARKED/$name.new/checkpoints/" || { echo "park $name: copy failed" >&2; rm -rf "$PARKED/$name.new"; continue; }
    for f in "$out"/*; do [ -f "$f" ] && cp "$f" "$PARKED/$name.new/"; done
    rm -rf "${PARKED:?}/$name" && mv "$PARKED/$name.new" "$PARKED/$name"
    echo "parked $name at $stem ($(du -sh "$PARKED/$name" | cut -f1))"
  done
}

case "${1:-status}" in
  start)
    unpark
    shift
    for l in $(items | awk '{print $1}' | sort -u); do
      if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$l"; then continue; fi
      if [ -f "$RUNS/.lane-$l" ] && kill -0 "$(cat "$RUNS/.lane-$l")" 2>/dev/null; then
        echo "lane $l already running"; continue
      fi
      # a lane runs a copy of this script: bash reads a script as it goes, so editing the checkout's
      # copy under a running lane would make it execute the wrong lines
      cp "$0" "$RUNS/.lanes-$l.sh"
      LANES_HOME=$here THREADS=$THREADS nohup bash "$RUNS/.lanes-$l.sh" _lane "$l" > "$RUNS/lane-$l.log" 2>&1 &
      echo $! > "$RUNS/.lane-$l"
      echo "lane $l started (pid $!, log $RUNS/lane-$l.log)"
    done
    grep -v '^\s*#' "$QUEUE" | awk '$1 == "F" && NF == 4' | while read -r _ name curve every; do
      lf=$(items | awk -v n="$name" '$2 == n {print $1}')
      if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$lf"; then continue; fi  # its lane was not started
      [ -f "$RUNS/$curve/final/benchmark.json" ] && continue
      if [ -f "$RUNS/.follow-$curve" ] && kill -0 "$(cat "$RUNS/.follow-$curve")" 2>/dev/null; then continue; fi
      CODE=$CODE nohup "$here/scripts/follow_run.sh" "$RUNS/$name" "$RUNS/$curve" "$every" > "$RUNS/follow-$curve.log" 2>&1 &
      echo $! > "$RUNS/.follow-$curve"
      echo "following $name into $RUNS/$curve (pid $!)"
    done ;;
  _lane) lane "$2" ;;
  park) park ;;
  unpark) unpark ;;
  stop)
    for f in "$RUNS"/.lane-*; do
      [ -e "$f" ] || continue
      l=${f##*.lane-}
      touch "$RUNS/.stop-$l"
      [ -f "$RUNS/.pid-$l" ] && pkill -INT -P "$(cat "$RUNS/.pid-$l")" 2>/dev/null
      [ -f "$RUNS/.pid-$l" ] && kill -INT "$(cat "$RUNS/.pid-$l")" 2>/dev/null
      echo "lane $l: stop asked (the training saves a checkpoint)"
    done ;;
  status)
    items | while read -r l name args; do
      out="$RUNS/$name"
      if [ -f "$out/model.safetensors" ]; then s="done"
      elif [ -f "$out/checkpoints/latest.json" ]; then
        s="checkpoint $(sed 's/.*"epoch": \([0-9]*\).*"batch": \([0-9]*\).*/epoch \1 batch \2/' "$out/checkpoints/latest.json")"
      else s="not started"; fi
      last=$(tail -n +2 "$out/metrics.csv" 2>/dev/null | tail -n 1 | cut -d, -f1,3,8,9)
      echo "lane $l  $name: $s  (last epoch,stage,test_acc,samples/s: ${last:-none})"
    done ;;
  *) echo "usage: $0 start|status|stop|park|unpark" >&2; exit 2 ;;
esac
