"""The generic trainer: a :class:`~whatwhere.recipe.Recipe` -> a run directory.

Run directory layout::

    RUN/recipe.yaml              the resolved recipe
    RUN/metrics.csv              one row per epoch (stage, lr, train/test loss and accuracy, speed)
    RUN/checkpoints/latest.json  pointer to the newest complete checkpoint
    RUN/checkpoints/*.safetensors + *.state.pt   weights + trainer state (atomic writes)
    RUN/model.safetensors, RUN/model.json        final weights and how to rebuild the model
    RUN/run.json                 how the run was made: recipe, profile, overrides, seed, and per
                                 sitting the command, commit, hardware, epochs, status and wall time

The display stream is a pure function of (seed, epoch, position), model initialisation and
dropout come from seeded generators, and a checkpoint records the exact position (epoch and
batch), so ``--resume`` continues exactly where a run stopped: on CPU the resumed metrics equal
an uninterrupted run's.  A non-finite loss stops the run (:class:`TrainingError`) and leaves the
last good checkpoint; Ctrl-C finishes the current batch, saves a checkpoint and exits cleanly.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

import torch
import yaml

from whatwhere.data import DisplaySet, mnist
from whatwhere.engine.checkpoints import model_meta as _meta
from whatwhere.engine.checkpoints import (
    read_state,
    read_weights,
    resolved_meta,
    save_weights,
    weights_path,
)
from whatwhere.engine.objectives import Objective, classification, make_objective
from whatwhere.engine.precision import autocast, check_precision, prepare_model
from whatwhere.engine.recipe import Recipe, Stage
from whatwhere.models.registry import MODELS, create_model
from whatwhere.utils.device import pick_device
from whatwhere.utils.io import atomic_write, write_text
from whatwhere.utils.seeding import derive_seed

if TYPE_CHECKING:
    from whatwhere.models.ensemble import Ensemble

__all__ = [
    "TrainingError",
    "TrainingInterrupted",
    "train",
    "evaluate",
    "read_metrics",
    "export_members",
    "METRIC_FIELDS",
]

METRIC_FIELDS = [
    "epoch",
    "stage",
    "stage_name",
    "lr",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "samples_per_s",
    "wall_s",
]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint is kept."""


class TrainingInterrupted(RuntimeError):
    """The run was interrupted (Ctrl-C); a checkpoint was saved and ``--resume`` continues it."""


def model_meta(recipe: Recipe) -> dict:
    return _meta(recipe.model, recipe.model_args, recipe.name)


def _init_from(model: torch.nn.Module, recipe: Recipe, log: Callable[[str], None]) -> None:
    """Load the weights named by ``recipe.init`` before training.

    A spec: the whole model (same registry model and arguments).  A mapping ``{submodule: spec}``:
    each spec's weights into that submodule (e.g. ``{what: zoo:what, where: zoo:where-c0.7}``);
    a leading key component that the submodule lacks (a Where model's ``net.``) is dropped.
    """
    dev = str(next(model.parameters()).device)
    if isinstance(recipe.init, str):
        p = weights_path(recipe.init)
        meta = resolved_meta(recipe.init)
        if meta.get("model") != recipe.model or meta.get("model_args", {}) != recipe.model_args:
            raise ValueError(
                f"init: {p} holds a {meta.get('model')!r} model with model_args "
                f"{meta.get('model_args')}, but the recipe builds {recipe.model!r} with {recipe.model_args}"
            )
        model.load_state_dict(read_state(recipe.init, dev))
        log(f"initialised from {recipe.init} ({p})")
        return
    assert recipe.init is not None  # the caller loads no weights without an init
    for name, spec in recipe.init.items():
        try:
            target = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"init: the model has no submodule {name!r}") from None
        state = read_state(spec, dev)
        want = set(target.state_dict())
        if set(state) != want:
            heads = {k.split(".", 1)[0] for k in state}
            if len(heads) == 1 and {k.split(".", 1)[1] for k in state} == want:
                state = {k.split(".", 1)[1]: v for k, v in state.items()}
            else:
                raise ValueError(
                    f"init: the weights of {spec} do not fit submodule {name!r} "
                    f"(keys {sorted(state)[:3]}... vs {sorted(want)[:3]}...)"
                )
        target.load_state_dict(state)
        log(f"initialised {name} from {spec}")


@dataclass
class Position:
    epoch: int = 0  # global epoch index
    batch: int = 0  # next batch within the epoch
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    train_time: float = 0.0


def run_precisions(recipe: Recipe) -> list[str]:
    """The precisions the run's stages train in, each once, in stage order (``Stage.precision``
    overrides the recipe's ``precision`` for one stage)."""
    return list(dict.fromkeys(st.precision_in(recipe) for st in recipe.stages))


def stage_end_stems(recipe: Recipe) -> set[str]:
    """The checkpoint stems at the end of each stage (the first batch of the next): kept for good,
    so that a later stage can be re-run or studied from where the previous one left the model."""
    return {f"epoch-{e:04d}-batch-00000" for e in itertools.accumulate(st.epochs for st in recipe.stages)}


def _save_checkpoint(run: Path, model, opt, sched, pos: Position, recipe: Recipe, keep: int = 2) -> None:
    """Write the checkpoint of ``pos`` (weights, trainer state, then ``latest.json``) and keep the
    newest ``keep`` and every stage's last (:func:`stage_end_stems`).  A failed write (disk
    full...) removes what it made of the new checkpoint and raises :class:`TrainingError` saying
    that the previous checkpoint is kept."""
    ck = run / "checkpoints"
    stem = f"epoch-{pos.epoch:04d}-batch-{pos.batch:05d}"
    ptr = ck / "latest.json"
    try:
        previous = json.loads(ptr.read_text()).get("stem")
    except (OSError, ValueError, AttributeError):
        previous = None
    try:
        save_weights(model, ck / f"{stem}.safetensors", model_meta(recipe))
        state = {
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "position": pos.__dict__,
            "rng_cpu": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        atomic_write(ck / f"{stem}.state.pt", lambda tmp: torch.save(state, tmp))
        write_text(ptr, json.dumps({"stem": stem, **pos.__dict__}))
    except OSError as exc:
        if stem != previous:  # half a checkpoint is none: never let it displace an intact one
            for suffix in (".safetensors", ".state.pt"):
                (ck / f"{stem}{suffix}").unlink(missing_ok=True)
        kept = (
            f"the previous checkpoint {previous} is kept ({ptr} still points to it); free some space and "
            f"continue with --resume"
            if previous
            else "there is no earlier checkpoint"
        )
        raise TrainingError(f"checkpoint {stem} could not be written: {exc}; {kept}") from exc
    ends = stage_end_stems(recipe)
    stems = sorted({p.name.split(".")[0] for p in ck.glob("epoch-*.safetensors")} - ends)
    for old in stems[:-keep]:
        for suffix in (".safetensors", ".state.pt"):
            (ck / f"{old}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------------------- training


def _param_groups(model: torch.nn.Module, lr: float, lr_scale: dict | None) -> list[dict]:
    """The model's parameters as optimiser groups: one at ``lr``, and one per ``lr_scale`` prefix
    at ``lr * factor`` (the longest matching prefix of a parameter's name wins).

    Raises:
        ValueError: a prefix that names no trainable parameter (a typo would silently train at the full rate).
    """
    named = list(model.named_parameters())
    if not lr_scale:
        return [{"params": [p for _, p in named], "lr": lr}]
    prefixes = sorted(lr_scale, key=len, reverse=True)
    groups: dict = {None: []}
    for name, p in named:
        key = next((q for q in prefixes if name == q or name.startswith(q.rstrip(".") + ".")), None)
        groups.setdefault(key, []).append(p)
    for q in prefixes:
        if not any(p.requires_grad for p in groups.get(q, [])):
            trainable = sorted({n.rsplit(".", 1)[0] for n, p in named if p.requires_grad})
            raise ValueError(
                f"optimizer.lr_scale: {q!r} names no trainable parameter (trainable modules: "
                f"{', '.join(trainable[:12])}{' ...' if len(trainable) > 12 else ''})"
            )
    return [{"params": ps, "lr": lr * (1.0 if q is None else float(lr_scale[q]))} for q, ps in groups.items() if ps]


def _make_optimizer(recipe: Recipe, model: torch.nn.Module, lr: float):
    """Adam or SGD over the model's parameter groups, as torch's fused implementation where this torch has one for
    the parameters' device (CPU from torch 2.4 or 2.5, CUDA): the same update, one kernel per step instead of a loop
    of elementwise ops (Adam's step on the Where MLP's 4.2 M parameters: 14 ms -> 3 ms on one core); otherwise the
    default implementation.  The state dict is the same either way, so a run resumes across the two."""
    o = recipe.optimizer
    groups = _param_groups(model, lr, o.lr_scale)

    def build(**fused):
        fresh = [dict(g) for g in groups]  # torch writes its defaults into the group dicts
        if o.name == "adam":
            return torch.optim.Adam(fresh, lr=lr, weight_decay=o.weight_decay, **fused)
        return torch.optim.SGD(fresh, lr=lr, momentum=o.momentum, weight_decay=o.weight_decay, **fused)

    try:
        return build(fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for these parameters in this torch
        return build()


def _make_schedule(recipe: Recipe, opt, stage: Stage | None = None):
    s = stage.schedule if stage is not None and stage.schedule is not None else recipe.schedule
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
    if s.name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=s.gamma)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _regime_at(recipe: Recipe, model: torch.nn.Module, epoch: int):
    """A fresh optimiser and schedule of the kind in effect during global epoch ``epoch``: the
    recipe's, or those of the last stage at or before it that re-created them (``reset_optimizer``),
    for a checkpoint's state to be loaded into."""
    regime, start = None, 0
    for st in recipe.stages:
        if start > epoch:
            break
        if st.reset_optimizer and start > 0:
            regime = st
        start += st.epochs
    if regime is None:
        opt = _make_optimizer(recipe, model, recipe.optimizer.lr)
        return opt, _make_schedule(recipe, opt)
    opt = _make_optimizer(recipe, model, regime.lr or recipe.optimizer.lr)
    return opt, _make_schedule(recipe, opt, regime)


def _stage_of(recipe: Recipe, epoch: int) -> tuple[int, Stage, int]:
    """(stage index, stage, first global epoch of the stage) for a global epoch index."""
    start = 0
    for k, st in enumerate(recipe.stages):
        if epoch < start + st.epochs:
            return k, st, start
        start += st.epochs
    raise IndexError(epoch)


@torch.no_grad()
def evaluate(
    model,
    displays: DisplaySet,
    batch_size: int = 1000,
    n: int | None = None,
    objective: Objective | None = None,
    precision: str = "fp32",
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``model`` on the first ``n`` displays of a set (default objective:
    cross-entropy and classification accuracy), its forward pass in ``precision``."""
    objective = objective or classification()
    was = model.training
    model.eval()
    loss_sum, correct, total = 0.0, 0, 0
    for d in displays.epoch(0, batch_size, limit=n):
        with autocast(precision, d.images.device):
            loss, ok = objective(model, d)
        loss_sum += float(loss) * len(d)
        correct += int(ok)
        total += len(d)
    model.train(was)
    return loss_sum / total, correct / total


class _SigintFlag:
    """First Ctrl-C sets a flag checked after each batch; a second one interrupts at once."""

    def __init__(self) -> None:
        self.hit = False
        self._old: Callable[[int, FrameType | None], Any] | int | None = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread
            self._old = None
        return self

    def _handle(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        print("\ninterrupt: finishing the current batch, then saving a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def train(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    resume: bool = False,
    device: str | None = None,
    mnist_dir: str | None = None,
    progress: bool = True,
    stop_after_batches: int | None = None,
    log: Callable[[str], None] = print,
    command: str | None = None,
) -> Path:
    """Train ``recipe`` into ``run_dir`` and return the directory.

    Args:
        resume: continue from the newest checkpoint of ``run_dir`` (required if it has one).
        device: overrides the recipe's device (``auto``/``cpu``/``cuda``).
        stop_after_batches: simulate an interruption after that many batches (tests).
        command: the command recorded in ``RUN/run.json`` (default: this process's command line;
            a sweep passes the equivalent ``whatwhere train`` command).

    The model's initialisation and dropout draw from torch's default generators seeded from the
    recipe's seed; they run inside :func:`torch.random.fork_rng`, so the caller's random state is
    the same after the call as before it.
    """
    dev = pick_device(device or recipe.device)
    cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    started: dict = {}
    t0 = time.time()
    status = "failed"
    try:
        with torch.random.fork_rng(devices=cuda):
            out = _train(
                recipe,
                run_dir,
                resume=resume,
                device=device,
                mnist_dir=mnist_dir,
                progress=progress,
                stop_after_batches=stop_after_batches,
                log=log,
                started=started,
            )
        status = "done"
        return out
    except TrainingInterrupted:
        status = "interrupted"
        raise
    finally:
        if started:  # a refused start (existing run, recipe mismatch) leaves the run's record alone
            record_sitting(
                Path(run_dir), recipe, status=status, t0=t0, start=started["position"], device=dev, command=command
            )


def _position_of(ptr: Path) -> list:
    try:
        info = json.loads(ptr.read_text())
    except (OSError, ValueError):  # a broken pointer (``--resume`` renames it): position unknown
        return [0, 0]
    return [int(info.get("epoch", 0)), int(info.get("batch", 0))]


def _latest_intact_checkpoint(run: Path, log: Callable[[str], None] = print) -> tuple[dict, dict, dict]:
    """The newest checkpoint of ``run`` that reads back: ``(pointer info, weights, trainer state)``.

    ``latest.json``'s checkpoint is tried first, then the others, newest first.  A file that does
    not read back (a truncated weights file, a garbled ``.state.pt``, a broken ``latest.json``) is
    renamed ``*.corrupt``, logged, and the previous checkpoint is tried; ``latest.json`` is
    rewritten to point to the one used.

    Raises:
        TrainingError: no intact checkpoint is left (the corrupt files are renamed, named in the
            message).
    """
    ck = run / "checkpoints"
    ptr = ck / "latest.json"
    corrupt: list[str] = []

    def set_aside(path: Path, why: str) -> None:
        if path.exists():
            os.replace(path, path.with_name(path.name + ".corrupt"))
            corrupt.append(path.name)
            log(f"--resume: {path} is corrupt ({why}); renamed {path.name}.corrupt")

    try:
        info = json.loads(ptr.read_text())
        stems = [str(info["stem"])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        set_aside(ptr, f"{type(exc).__name__}: {exc}")
        info, stems = None, []
    stems += sorted({p.name.split(".")[0] for p in ck.glob("epoch-*.safetensors")} - set(stems), reverse=True)
    for stem in stems:
        weights_file, state_file = ck / f"{stem}.safetensors", ck / f"{stem}.state.pt"
        try:
            weights = read_weights(weights_file)
            state = torch.load(state_file, weights_only=True, map_location="cpu")
            position = Position(**state["position"])
        except Exception as exc:  # noqa: BLE001 - any failure to read back means corrupt
            set_aside(weights_file, f"{type(exc).__name__}: {exc}")
            set_aside(state_file, f"{type(exc).__name__}: {exc}")
            continue
        if info is None or info.get("stem") != stem:
            info = {"stem": stem, **position.__dict__}
            write_text(ptr, json.dumps(info))
            log(f"--resume: falling back to the intact checkpoint {stem}")
        return info, weights, state
    raise TrainingError(
        f"--resume: no intact checkpoint in {ck}"
        + (f" (corrupt files renamed *.corrupt: {', '.join(corrupt)})" if corrupt else "")
        + "; start the run again under another --out"
    )


def record_sitting(
    run: Path, recipe: Recipe, *, status: str, t0: float, start: list, device, command: str | None = None
) -> dict:
    """Append one sitting (this process's part of the run) to ``RUN/run.json`` and return the record.

    The record: ``recipe``, ``profile`` (``null``: the full recipe), ``overrides``, ``seed``,
    ``model``, ``status`` and ``wall_time_s`` (summed over sittings), and ``sittings``: for each,
    ``command``, ``git_commit``, ``hardware``, ``start``/``end`` (UTC), ``from``/``to`` (the run's
    position as ``[completed epochs, batches into the next]``), ``status`` and ``wall_s``.
    """
    import sys

    from whatwhere.utils.provenance import command_line, git_commit, hardware, utc_iso

    path = run / "run.json"
    rec = json.loads(path.read_text()) if path.is_file() else {}
    ptr = run / "checkpoints" / "latest.json"
    end = _position_of(ptr) if ptr.is_file() else start
    now = time.time()
    sittings = list(rec.get("sittings", []))
    command = command or command_line(prog=Path(sys.argv[0]).name or "python")
    sittings.append(
        {
            "command": command,
            "git_commit": git_commit(),
            "hardware": hardware(device),
            "start": utc_iso(t0),
            "end": utc_iso(now),
            "from": start,
            "to": end,
            "status": status,
            "wall_s": round(now - t0, 1),
        }
    )
    rec.update(
        {
            "recipe": recipe.name,
            "profile": recipe.profile,
            "overrides": list(recipe.overrides),
            "seed": recipe.seed,
            "precision": recipe.precision,
            **(
                {"stage_precisions": [st.precision_in(recipe) for st in recipe.stages]}
                if any(st.precision for st in recipe.stages)
                else {}
            ),
            "model": recipe.model,
            "epochs": recipe.total_epochs,
            "status": status,
            "wall_time_s": round(sum(x["wall_s"] for x in sittings), 1),
            "sittings": sittings,
        }
    )
    write_text(path, json.dumps(rec, indent=2))
    return rec


@dataclass
class _Sitting:
    """What the training loop of one sitting holds and changes as it goes.

    ``opt`` and ``sched`` are replaced when a stage resets the optimiser, ``pos`` at each epoch's
    end; ``t_ckpt`` is when the last checkpoint was written (mid-epoch checkpoints come
    ``recipe.checkpoint_every_s`` after it), ``batches_done`` counts this sitting's batches (for
    ``stop_after_batches``) and ``t_run`` is when its loop started (the ``wall_s`` column).
    """

    run: Path
    recipe: Recipe
    dev: torch.device
    model: torch.nn.Module
    objective: Objective
    train_set: DisplaySet
    test_set: DisplaySet
    n_train: int
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    pos: Position
    t_run: float = 0.0
    t_ckpt: float = 0.0
    batches_done: int = 0

    def checkpoint(self) -> None:
        """Save the checkpoint of the current position and restart the checkpoint clock."""
        _save_checkpoint(self.run, self.model, self.opt, self.sched, self.pos, self.recipe)
        self.t_ckpt = time.perf_counter()


def _open_run(
    recipe: Recipe, run: Path, *, resume: bool, log: Callable[[str], None], started: dict | None
) -> tuple | None:
    """Check that ``run`` may be started (no checkpoint) or resumed (a checkpoint, the same recipe),
    write its ``recipe.yaml`` and note the starting position in ``started``.

    Returns the checkpoint to resume from (:func:`_latest_intact_checkpoint`), None for a fresh run.
    """
    ptr = run / "checkpoints" / "latest.json"
    if ptr.exists() and not resume:
        raise FileExistsError(f"{run} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not ptr.exists():
        raise FileNotFoundError(f"--resume: no checkpoint in {run}")
    checkpoint = None
    if resume:
        old = yaml.safe_load((run / "recipe.yaml").read_text())
        if old != recipe.to_dict():
            raise ValueError(
                f"--resume: the recipe differs from the one {run} was started with "
                f"({run / 'recipe.yaml'}); resume with the same recipe and overrides"
            )
        checkpoint = _latest_intact_checkpoint(run, log)
    run.mkdir(parents=True, exist_ok=True)
    write_text(run / "recipe.yaml", yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    if started is not None:
        started["position"] = _position_of(ptr) if resume else [0, 0]
    return checkpoint


def _build(
    recipe: Recipe, run: Path, dev: torch.device, *, resume: bool, mnist_dir: str | None, log: Callable[[str], None]
) -> _Sitting:
    """The model (seeded initialisation, ``recipe.init`` weights on a fresh run), the training and
    test display sets, the objective, and the optimiser and schedule at the run's start.
    The order of these steps fixes the random streams: keep it."""
    for precision in run_precisions(recipe):
        check_precision(precision, dev)
    torch.manual_seed(derive_seed(recipe.seed, "init"))
    model = create_model(recipe.model, **recipe.model_args).to(dev)
    if recipe.init is not None and not resume:
        _init_from(model, recipe, log)
    size = getattr(model, "input_size", MODELS[recipe.model].input_size)  # an ensemble: its member's
    if size != recipe.size:
        raise ValueError(f"model {recipe.model!r} takes {size}px displays but the recipe makes {recipe.size}px ones")
    train_split = mnist.load("train", mnist_dir)
    test_split = mnist.load("test", mnist_dir)
    n_train = len(train_split) if recipe.train_limit is None else min(recipe.train_limit, len(train_split))
    train_set = DisplaySet(
        train_split.images[:n_train],
        train_split.labels[:n_train],
        recipe.stages[0].display,
        seed=recipe.seed,
        shuffle=True,
        static=recipe.static,
        device=dev,
    )
    test_set = DisplaySet(
        test_split.images,
        test_split.labels,
        recipe.stages[0].display,
        seed=derive_seed(recipe.seed, "eval"),
        device=dev,
    )

    prepare_model(model, "bf16" if "bf16" in run_precisions(recipe) else "fp32")
    objective = make_objective(recipe, dev)
    pos = Position()
    opt = _make_optimizer(recipe, model, recipe.optimizer.lr)
    sched = _make_schedule(recipe, opt)
    return _Sitting(
        run=run,
        recipe=recipe,
        dev=dev,
        model=model,
        objective=objective,
        train_set=train_set,
        test_set=test_set,
        n_train=n_train,
        opt=opt,
        sched=sched,
        pos=pos,
    )


def _restore(s: _Sitting, checkpoint: tuple, log: Callable[[str], None]) -> None:
    """Load a checkpoint into the sitting: weights, position, optimiser, schedule and the random state."""
    _, weights, state = checkpoint
    s.model.load_state_dict(weights)
    s.pos = Position(**state["position"])
    # the optimiser and schedule that wrote the state: a stage may have re-created them with its own
    # lr and schedule (e.g. STN-128's constant-lr contrast stages after the recipe's StepLR)
    s.opt, s.sched = _regime_at(s.recipe, s.model, s.pos.epoch if s.pos.batch else s.pos.epoch - 1)
    s.opt.load_state_dict(state["optimizer"])
    s.sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    log(f"resuming {s.run} at epoch {s.pos.epoch + 1}, batch {s.pos.batch}")


def _open_metrics(path: Path, *, resume: bool, pos: Position) -> None:
    """Start ``metrics.csv`` (its header) on a fresh run; on a resumed one, drop the rows written
    after the checkpoint (their epochs are redone identically)."""
    if not path.exists() or not resume:  # a fresh start: rows of a run killed before its first checkpoint go
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerow(METRIC_FIELDS)
    elif resume:  # drop rows written after the checkpoint (they will be redone identically)
        with open(path) as fh:
            rows = list(csv.reader(fh))
        kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= pos.epoch]
        with open(path, "w", newline="") as fh:
            csv.writer(fh).writerows(kept)


def _run_epoch(
    s: _Sitting,
    epoch: int,
    stage: Stage,
    lr: float,
    sigint: _SigintFlag,
    *,
    progress: bool,
    stop_after_batches: int | None,
) -> None:
    """Train the batches of ``epoch`` from ``s.pos.batch`` on.

    The loss and correct counts accumulate on the device; every 50 batches (and at the epoch's
    last batch, or when stopping) one sync point moves them into ``s.pos``, checks that no loss
    was non-finite (:class:`TrainingError`) and, ``recipe.checkpoint_every_s`` after the last
    checkpoint, saves a mid-epoch one.  A Ctrl-C (``sigint``) or ``stop_after_batches`` ends the
    batch, saves a checkpoint and raises :class:`TrainingInterrupted`.
    """
    from tqdm.auto import tqdm

    recipe, run, pos, dev = s.recipe, s.run, s.pos, s.dev
    bs = recipe.batch_size
    n_batches = math.ceil(s.n_train / bs)
    ds = s.train_set.with_config(stage.display)
    bar = tqdm(
        total=n_batches,
        initial=pos.batch,
        disable=None if progress else True,
        leave=False,
        mininterval=1.0,
        desc=f"epoch {epoch + 1}/{recipe.total_epochs} [{stage.name}]",
    )
    # running sums stay on the device: no host round trip per batch
    loss_acc = torch.zeros((), dtype=torch.float64, device=dev)
    correct_acc = torch.zeros((), dtype=torch.int64, device=dev)
    finite = torch.ones((), dtype=torch.bool, device=dev)
    last_check = pos.batch
    t_sync = time.perf_counter()
    for b in range(pos.batch, n_batches):
        d = ds.batch(b * bs, min(s.n_train, (b + 1) * bs), epoch)
        with autocast(stage.precision_in(recipe), dev):
            loss, ok = s.objective(s.model, d)
        finite &= torch.isfinite(loss)
        s.opt.zero_grad(set_to_none=True)
        loss.backward()
        s.opt.step()
        loss_acc += loss.detach() * len(d)
        correct_acc += ok
        pos.seen += len(d)
        pos.batch = b + 1
        s.batches_done += 1
        stop = sigint.hit or (stop_after_batches is not None and s.batches_done >= stop_after_batches)
        if b % 50 == 49 or b == n_batches - 1 or stop:  # sync point
            if not bool(finite):
                bar.close()
                raise TrainingError(
                    f"non-finite loss in epoch {epoch + 1} between batches {last_check + 1} and {b + 1} "
                    f"(stage {stage.name}, lr {lr:g}); nothing of this epoch was saved and the last "
                    f"good checkpoint is kept in {run / 'checkpoints'}. Lower the learning rate or "
                    f"check the inputs."
                )
            last_check = b + 1
            pos.loss_sum += float(loss_acc)
            pos.correct += int(correct_acc)
            loss_acc.zero_()
            correct_acc.zero_()
            now = time.perf_counter()
            pos.train_time += now - t_sync
            t_sync = now
            if progress:
                bar.set_postfix(
                    loss=f"{pos.loss_sum / pos.seen:.3f}",
                    acc=f"{pos.correct / pos.seen:.3f}",
                    sps=f"{pos.seen / max(pos.train_time, 1e-9):,.0f}",
                )
            if not stop and b < n_batches - 1 and now - s.t_ckpt >= recipe.checkpoint_every_s:
                s.checkpoint()  # a mid-epoch sitting boundary
        bar.update(1)
        if stop:
            bar.close()
            _save_checkpoint(run, s.model, s.opt, s.sched, pos, recipe)
            raise TrainingInterrupted(
                f"interrupted at epoch {epoch + 1}, batch {b + 1}; checkpoint saved. "
                f"Continue with: whatwhere train RECIPE --out {run} --resume"
            )
    bar.close()


def _end_epoch(s: _Sitting, epoch: int, k: int, stage: Stage, lr: float, log: Callable[[str], None]) -> None:
    """Close ``epoch``: step the schedule, evaluate on the test displays, append the metrics row,
    log it, move to the next epoch's start and checkpoint there."""
    recipe, pos = s.recipe, s.pos
    with warnings.catch_warnings():  # a run resumed exactly at an epoch's end steps no batch first
        warnings.simplefilter("ignore", UserWarning)
        s.sched.step()
    test_loss, test_acc = evaluate(
        s.model,
        s.test_set.with_config(stage.display),
        n=recipe.eval_digits,
        objective=s.objective,
        precision=stage.precision_in(recipe),
    )
    row = [
        epoch + 1,
        k,
        stage.name,
        f"{lr:.6g}",
        f"{pos.loss_sum / pos.seen:.6f}",
        f"{pos.correct / pos.seen:.6f}",
        f"{test_loss:.6f}",
        f"{test_acc:.6f}",
        f"{pos.seen / max(pos.train_time, 1e-9):.1f}",
        f"{time.perf_counter() - s.t_run:.1f}",
    ]
    with open(s.run / "metrics.csv", "a", newline="") as fh:
        csv.writer(fh).writerow(row)
    log(
        f"epoch {epoch + 1}/{recipe.total_epochs} [{stage.name}] lr {lr:.3g} "
        f"train loss {pos.loss_sum / pos.seen:.4f} acc {pos.correct / pos.seen:.4f} | "
        f"test loss {test_loss:.4f} acc {test_acc:.4f} | {pos.seen / max(pos.train_time, 1e-9):,.0f} samples/s"
    )
    s.pos = Position(epoch=epoch + 1)
    s.checkpoint()


def _save_final(s: _Sitting) -> None:
    """Write the final weights (``model.safetensors``) and how to rebuild the model (``model.json``)."""
    try:
        save_weights(s.model, s.run / "model.safetensors", model_meta(s.recipe))
        write_text(s.run / "model.json", json.dumps(model_meta(s.recipe), indent=2))
    except OSError as exc:
        raise TrainingError(
            f"the final weights could not be written: {exc}; the last checkpoint is kept: free "
            f"some space and continue with --resume"
        ) from exc


def _train(
    recipe: Recipe,
    run_dir: str | Path,
    *,
    resume: bool,
    device: str | None,
    mnist_dir: str | None,
    progress: bool,
    stop_after_batches: int | None,
    log: Callable[[str], None],
    started: dict | None = None,
) -> Path:
    """The body of :func:`train` (runs inside a forked random state): open the run, build the model
    and data, restore the checkpoint, then train epoch by epoch, each stage's optimiser reset
    where the recipe asks, and write the final weights."""
    run = Path(run_dir)
    dev = pick_device(device or recipe.device)
    checkpoint = _open_run(recipe, run, resume=resume, log=log, started=started)
    s = _build(recipe, run, dev, resume=resume, mnist_dir=mnist_dir, log=log)
    if resume:
        assert checkpoint is not None  # _open_run returns the checkpoint to resume from (or raises)
        _restore(s, checkpoint, log)
    _open_metrics(run / "metrics.csv", resume=resume, pos=s.pos)

    s.t_run = time.perf_counter()
    s.t_ckpt = time.perf_counter()
    s.model.train()
    with _SigintFlag() as sigint:
        for epoch in range(s.pos.epoch, recipe.total_epochs):
            k, stage, start = _stage_of(recipe, epoch)
            if epoch == start and s.pos.batch == 0 and stage.reset_optimizer and epoch > 0:
                s.opt = _make_optimizer(recipe, s.model, stage.lr or recipe.optimizer.lr)
                s.sched = _make_schedule(recipe, s.opt, stage)
            lr = s.opt.param_groups[0]["lr"]
            _run_epoch(s, epoch, stage, lr, sigint, progress=progress, stop_after_batches=stop_after_batches)
            _end_epoch(s, epoch, k, stage, lr, log)
    _save_final(s)
    return run


def export_members(run: str | Path, recipe: Recipe) -> list[Path]:
    """Write each member of a trained ensemble run as a run of its own, ``RUN/member-K``: its
    weights (as the single recipe's model) and the single recipe (the member's source names it)."""
    from whatwhere.engine.checkpoints import load

    run = Path(run)
    ens = cast("Ensemble", load(run))  # an ensemble run's model
    paths = []
    for k in range(ens.n):
        out = run / f"member-{k}"
        d = recipe.to_dict()
        d["source"] = f"{d.get('source', '')} [member {k} of the ensemble {run.name}]".strip()
        write_text(out / "recipe.yaml", yaml.safe_dump(d, sort_keys=False))
        paths.append(save_weights(ens.member(k), out / "model.safetensors", model_meta(recipe)))
    return paths


def read_metrics(run: str | Path) -> list[dict]:
    """The rows of ``RUN/metrics.csv`` as dicts of floats (``stage_name`` kept as text).

    Raises:
        FileNotFoundError: no ``metrics.csv`` (not a run directory, or no epoch finished yet).
        UserError: a value that is not a number (a corrupted file).
    """
    from whatwhere.utils.errors import UserError

    path = Path(run) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run} is not a run directory, or no epoch has finished")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return [{k: (v if k == "stage_name" else float(v)) for k, v in r.items()} for r in rows]
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: not a metrics table of numbers (corrupted?): {exc}") from exc
