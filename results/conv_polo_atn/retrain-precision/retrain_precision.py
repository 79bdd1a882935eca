"""convPOLO's retrain stage in bf16 and in fp32 from the same state: one factor (the precision).

1. Re-derive the state at the end of epoch 170 (the last epoch before the retrain stage) from a
   checkpoint of a bf16 run of the recipe (``RUN``: a copy of the run directory, resumed exactly):
       python retrain_precision.py derive RUN
2. Copy RUN twice, set ``precision`` in each copy's recipe.yaml to bf16 / fp32, and train the first
   5 retrain epochs in each (the same batches):
       python retrain_precision.py retrain COPY bf16
       python retrain_precision.py retrain COPY fp32
The test and train accuracy per epoch are in each copy's metrics.csv (here: bf16-metrics.csv,
fp32-metrics.csv, epochs 165-175).  One thread each: OMP_NUM_THREADS=1.  About 25 min for step 1
from epoch 138 and 5-7 min per arm on one core of a 2-core x86_64 CPU.
Run it from a checkout of commit 4629532 (PYTHONPATH=src), as measured: later recipes set the retrain
stage's own precision to fp32, which wins over ``precision=bf16``.
"""

import sys

from whatwhere.engine.recipe import load_recipe
from whatwhere.engine.trainer import TrainingInterrupted, train

EPOCH_BATCHES = 600  # 60,000 displays, batch 100


def main(argv: list[str]) -> None:
    if argv[:1] == ["derive"] and len(argv) == 2:
        run, precision, stop = argv[1], "bf16", None
    elif argv[:1] == ["retrain"] and len(argv) == 3:
        run, precision, stop = argv[1], argv[2], 5 * EPOCH_BATCHES
    else:
        sys.exit(__doc__)
    recipe = load_recipe("conv_polo_atn", overrides=[f"precision={precision}"])
    if stop is None:  # from the run's checkpoint to the end of epoch 170
        import json
        from pathlib import Path

        at = json.loads((Path(run) / "checkpoints" / "latest.json").read_text())
        stop = (170 - at["epoch"]) * EPOCH_BATCHES - at["batch"]
    try:
        train(recipe, run, resume=True, progress=False, stop_after_batches=stop)
    except TrainingInterrupted as e:
        print(e)


if __name__ == "__main__":
    main(sys.argv[1:])
