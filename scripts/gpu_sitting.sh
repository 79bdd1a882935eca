#!/usr/bin/env bash
# One sitting of the 2021 study's three untrained transformers (stn128, atn, conv_polo_atn) on a lent
# GPU machine (docs/cli.md, "Training on a lent GPU"): a session is lent 15 minutes of device time,
# at most 10 minutes a command, so each sitting trains the three runs side by side for about 8 minutes,
# brings their checkpoints back and parks them in parked/, and the next lend resumes them exactly.
#
#   scripts/gpu_sitting.sh prepare [--mnist-dir D] [--no-trim]   HERE, before the run call
#   run(command="bash scripts/gpu_sitting.sh", carry=[".gpu"], timeout_s=600)   THERE: the sitting
#   scripts/gpu_sitting.sh collect FILES_AT                      HERE, after it (files_at of the reply)
#   scripts/gpu_sitting.sh trim | untrim | size                  HERE, by hand
#
# prepare: MNIST (xz, 9 MB) into .gpu/mnist, the parked runs stn128-gpu, atn-gpu, conv_polo_atn-gpu
#   (newest checkpoint only, one .tgz each) into .gpu/runs, the commit into .gpu/commit; then it TRIMS
#   the working tree, since a run call sends every tracked and untracked-not-ignored file and the
#   checkout holds about 100 MB of zoo weights and figures (limit: 64 MiB with .gpu): every file of
#   64 KiB or more (TRIM_KB) other than code and recipes is dropped from the index (kept on disk, shown
#   as a staged deletion) and ignored in .git/info/exclude.  `collect` and `untrim` put the index back
#   exactly: do not commit between `prepare` and `collect`.
# sit (the default, on the device): nvidia-smi and torch facts, MNIST unpacked to $SITTING_WORK, then
#   the three `whatwhere train` runs at once on the one GPU (bf16 autocast, a checkpoint every 120 s),
#   each resumed from .gpu/runs/NAME.tgz if there; SIGINT at the deadline (each saves a checkpoint and
#   exits 130), then each run's resumable files packed as $OUT/NAME.tgz, split in NAME.tgz.NN parts of
#   15 MiB when bigger (STN-128: 45 MB of weights, 3 parts), and $OUT/sitting.log.
# collect FILES_AT: each run unpacked into parked/NAME (unless parked/ holds a further one), the index
#   untrimmed; for a finished run, the commands that evaluate it and add it to the zoo.
#
# Environment (sit): SITTING_S (deadline from the start, default 480), SITTING_GRACE_S (45: after the
# SIGINT, before a second one), SITTING_RUNS (default "stn128-gpu atn-gpu conv_polo_atn-gpu"),
# SITTING_DEVICE (cuda), SITTING_PRECISION (bf16), SITTING_CHECKPOINT_S (120), SITTING_ARGS (more
# `whatwhere train` arguments, e.g. "--set train_limit=200": part of the runs' recipe, so every sitting
# of a run needs the same), SITTING_WORK (/tmp/gpu_sitting: the runs while they train), SITTING_PART_MB
# (15), OUT ($OUT of the device, default ./out-sitting), PY (python with torch; default .venv/bin/python
# if there, else python3), OMP_NUM_THREADS (default: the cores shared among the runs).
# Environment (all): GPU_DIR (.gpu), PARKED (parked), TRIM_KB (64).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-sit}" in
  -h|--help|help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
if [ -z "${PY:-}" ]; then
  if [ -x "$here/.venv/bin/python" ]; then PY="$here/.venv/bin/python"; else PY=python3; fi
fi
export PY
cmd=${1:-sit}
[ $# -gt 0 ] && shift
exec "$PY" "$here/scripts/gpu_sitting.py" "$cmd" "$@"
