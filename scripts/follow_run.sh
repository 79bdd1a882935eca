#!/usr/bin/env bash
# Follow a training's learning curve on the benchmark: every EVERY-th epoch-end checkpoint of RUN is
# copied to OUT/epoch-NNNN.safetensors (the trainer keeps only its last two) and benchmarked at the three
# contrasts (DIGITS per cell, default 500) into OUT/epoch-NNNN/; OUT/curve.md gets one row per
# checkpoint (mean accuracy over the 9 eccentricities per contrast).  It stops when RUN has its final
# weights (and benchmarks them too) or when OUT/stop exists.  One thread, low priority.
#   scripts/follow_run.sh /work/runs/stn128-budget-bf16 /work/runs/stn128-budget-curve 2
set -uo pipefail
RUN=${1:?usage: follow_run.sh RUN OUT [EVERY]}
OUT=${2:?usage: follow_run.sh RUN OUT [EVERY]}
EVERY=${3:-2}
DIGITS=${DIGITS:-500}
here="$(cd "$(dirname "$0")/.." && pwd)"
PY=${PY:-$here/.venv/bin/python}
CODE=${CODE:-$here}
mkdir -p "$OUT"
ww() { (cd "$CODE" && OMP_NUM_THREADS=1 PYTHONPATH="$CODE/src" nice -n 10 "$PY" -c \
  'import sys; from whatwhere.cli import main; sys.argv[0] = "whatwhere"; sys.exit(main())' "$@"); }
bench() {  # bench WEIGHTS NAME
  [ -f "$OUT/$2/benchmark.json" ] && return
  ww benchmark "$1" --digits "$DIGITS" --out "$OUT/$2" --no-progress --no-figures --no-code-r2 \
    > "$OUT/$2.log" 2>&1 || { echo "benchmark of $1 failed, see $OUT/$2.log"; return; }
  "$PY" - "$OUT/$2/benchmark.json" "$2" >> "$OUT/curve.md" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
cells = {}
for rec in r["records"] if "records" in r else r["results"]:
    cells.setdefault(rec["contrast"], []).append(rec["accuracy"])
print(f"| {sys.argv[2]} | " + " | ".join(f"{sum(v) / len(v):.3f}" for _, v in sorted(cells.items(), reverse=True)) + " |")
EOF
}
[ -f "$OUT/curve.md" ] || printf '| checkpoint | mean accuracy, contrast 0.7 | 0.5 | 0.3 |\n|---|---|---|---|\n' > "$OUT/curve.md"
while [ ! -e "$OUT/stop" ]; do
  for w in "$RUN"/checkpoints/epoch-*-batch-00000.safetensors; do
    [ -e "$w" ] || continue
    e=$(basename "$w" | sed 's/epoch-0*\([0-9][0-9]*\)-batch.*/\1/')
    [ $((e % EVERY)) -eq 0 ] || continue
    name=$(printf 'epoch-%04d' "$e")
    [ -f "$OUT/$name.safetensors" ] || cp "$w" "$OUT/$name.safetensors"
    bench "$OUT/$name.safetensors" "$name"
  done
  if [ -f "$RUN/model.safetensors" ]; then bench "$RUN/model.safetensors" final; break; fi
  sleep 120
done
