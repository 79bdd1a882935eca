"""One sitting on a lent GPU machine: the helper of scripts/gpu_sitting.sh (read its --help).

Standard library only (the device step starts the trainers as `whatwhere train` processes), so that
`prepare` and `collect` run with any python3 and `sit` with the device's python3, which holds torch.

    prepare            HERE, before the `run` call: .gpu/{mnist,runs,commit}, trim the travelling tree
    sit                THERE (the device step): train the runs side by side until the deadline, pack $OUT
    collect DIR        HERE, after it: DIR/NAME.tgz[.NN] -> parked/NAME, untrim, say what comes next
    trim | untrim      HERE: hide / restore the large files that need not travel
    size               HERE: what would travel (MiB)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import lzma
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GPU = Path(os.environ.get("GPU_DIR", ROOT / ".gpu"))
PARKED = Path(os.environ.get("PARKED", ROOT / "parked"))
#: the sitting's runs: run name -> packaged recipe
RUNS = {"stn128-gpu": "stn128", "atn-gpu": "atn", "conv_polo_atn-gpu": "conv_polo_atn"}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MIB = 1 << 20
TRAVEL_LIMIT = 64 * MIB  # what a `run` call may send: tracked + untracked-not-ignored files + carried paths
OUT_FILES, OUT_FILE_MAX, OUT_TOTAL = 8, 16 * MIB, 64 * MIB  # what comes back from $OUT
PART = int(float(os.environ.get("SITTING_PART_MB", "15")) * MIB)  # tar parts, under the 16 MiB a file
TRIM_MARK = "# >>> gpu_sitting trim (scripts/gpu_sitting.sh untrim removes this block)"
TRIM_END = "# <<< gpu_sitting trim"


def say(*a) -> None:
    print(*a, flush=True)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def run_names() -> list[str]:
    names = os.environ.get("SITTING_RUNS", " ".join(RUNS)).split()
    bad = [n for n in names if n not in RUNS]
    if bad:
        raise SystemExit(f"gpu_sitting: unknown run(s) {bad}; known: {', '.join(RUNS)}")
    return names


def position(ptr: Path) -> tuple[int, int]:
    """A checkpoint pointer's (epoch, batch); (-1, 0) when there is none or it is unreadable."""
    try:
        d = json.loads(ptr.read_text())
        return int(d["epoch"]), int(d["batch"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1, 0


def run_files(run: Path) -> list[Path]:
    """What a run is made of for resuming it elsewhere: its top-level files, ``latest.json`` and the
    newest checkpoint's state (and weights, unless the run is done: its model.safetensors is the same
    weights), relative to ``run``."""
    files = sorted(p.relative_to(run) for p in run.iterdir() if p.is_file())
    ck = run / "checkpoints"
    if (ck / "latest.json").is_file():
        stem = json.loads((ck / "latest.json").read_text())["stem"]
        files.append(Path("checkpoints/latest.json"))
        files.append(Path(f"checkpoints/{stem}.state.pt"))
        if not (run / "model.safetensors").is_file():
            files.append(Path(f"checkpoints/{stem}.safetensors"))
    for f in files:
        if not (run / f).is_file():
            raise FileNotFoundError(f"{run / f} is missing")
    return files


def pack(run: Path, dest: Path, level: int = 6) -> Path:
    """``run``'s files (:func:`run_files`) as one gzipped tar ``dest`` (members NAME/...)."""
    tmp = dest.with_name(dest.name + ".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=level) as tar:
        for f in run_files(run):
            tar.add(run / f, arcname=f"{run.name}/{f}")
    tmp.replace(dest)
    return dest


def unpack(data: bytes, into: Path, name: str) -> Path:
    """Extract the tar.gz ``data`` (members ``name/...`` only, plain files) into ``into/name.new`` and
    return that folder."""
    new = into / f"{name}.new"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts
            if not m.isfile() or not parts or parts[0] != name or ".." in parts or Path(m.name).is_absolute():
                if m.isdir() and parts and parts[0] == name and ".." not in parts:
                    continue
                raise ValueError(f"unexpected member {m.name!r} in the tar of {name}")
            target = new.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            target.write_bytes(src.read())
    return new


# ---------------------------------------------------------------------------------------- git, trim


def git(*args: str, inp: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, input=inp, capture_output=True, check=True).stdout


def git_path(name: str) -> Path:
    return ROOT / git("rev-parse", "--git-path", name).decode().strip()


def travelling() -> list[tuple[str, int]]:
    """The files a `run` call sends from this checkout (tracked, and untracked but not ignored), with sizes."""
    out = []
    for f in sorted(set(git("ls-files", "-z", "--cached", "--others", "--exclude-standard").decode().split("\0"))):
        p = ROOT / f
        if f and p.is_file() and not p.is_symlink():
            out.append((f, p.stat().st_size))
    return out


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def keep(path: str) -> bool:
    """Files the device step needs, whatever their size: the code, the recipes, the zoo's manifest."""
    return path.startswith(("src/", "scripts/")) and path.endswith((".py", ".yaml", ".yml", ".json", ".sh", ".toml"))


def _escape(path: str) -> str:
    out = "".join("\\" + c if c in "\\*?[" else c for c in path)
    return "/" + (out[:-1] + "\\ " if out.endswith(" ") else out)


def trim(min_kb: float | None = None) -> list[str]:
    """Hide from the `run` call the travelling files of ``min_kb`` KiB or more that the device step does
    not need (the zoo's weights, figures, parked runs: .gpu carries what it needs of those).

    A tracked one is removed from the index (``git update-index --force-remove``: the file stays on
    disk, git shows it as a staged deletion) and ignored through ``.git/info/exclude``, so that it is
    neither tracked nor untracked-not-ignored; an untracked one is only ignored.  The index entries are
    recorded, and :func:`untrim` puts them back exactly.  Returns the hidden paths."""
    untrim(quiet=True)
    min_b = (env_float("TRIM_KB", 64) if min_kb is None else min_kb) * 1024
    hide = [f for f, size in travelling() if size >= min_b and not keep(f)]
    if not hide:
        return []
    tracked = git("ls-files", "-s", "-z", "--", *hide).decode().split("\0")
    tracked = [t for t in tracked if t]
    state = git_path("gpu_sitting-trim.json")
    state.write_text(json.dumps({"index": tracked, "paths": hide}))
    exclude = git_path("info/exclude")
    exclude.parent.mkdir(parents=True, exist_ok=True)
    text = exclude.read_text() if exclude.exists() else ""
    block = "\n".join([TRIM_MARK, *(_escape(f) for f in hide), TRIM_END]) + "\n"
    exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + block)
    paths = [t.split("\t", 1)[1] for t in tracked]
    if paths:
        git("update-index", "-z", "--force-remove", "--stdin", inp=("\0".join(paths) + "\0").encode())
    return hide


def untrim(quiet: bool = False) -> int:
    """Undo :func:`trim`: the recorded index entries back, the exclude block out.  Returns how many
    index entries it restored (0 when nothing was trimmed, or outside a git checkout)."""
    try:
        state, exclude = git_path("gpu_sitting-trim.json"), git_path("info/exclude")
    except (OSError, subprocess.CalledProcessError):
        return 0
    n = 0
    if state.is_file():
        rec = json.loads(state.read_text())
        if rec["index"]:
            git("update-index", "-z", "--index-info", inp=("\0".join(rec["index"]) + "\0").encode())
        n = len(rec["index"])
    if exclude.is_file() and TRIM_MARK in exclude.read_text().splitlines():
        lines, skip = [], False
        for line in exclude.read_text().splitlines():
            if line == TRIM_MARK:
                skip = True
            elif line == TRIM_END:
                skip = False
            elif not skip:
                lines.append(line)
        exclude.write_text("\n".join(lines) + ("\n" if lines else ""))
    state.unlink(missing_ok=True)
    if n and not quiet:
        say(f"untrimmed: {n} tracked files are back in the index")
    return n


def size_report() -> int:
    tree = sum(s for _, s in travelling())
    carried = du(GPU)
    total = tree + carried
    say(
        f"travels: working tree {tree / MIB:.1f} MiB + {GPU.name} {carried / MIB:.1f} MiB = {total / MIB:.1f} MiB "
        f"(limit {TRAVEL_LIMIT / MIB:.0f} MiB)"
    )
    return total


# ------------------------------------------------------------------------------------------ prepare


def mnist_source(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if os.environ.get("WHATWHERE_MNIST"):
        return Path(os.environ["WHATWHERE_MNIST"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whatwhere" / "mnist"


#: packages of the project's dependencies that the device's python3 lacks (KINDS.md of the device tool)
NOT_ON_DEVICE = ("submitit", "pooch")


def check_imports() -> None:
    """Import what `whatwhere train` imports with the packages the device lacks made unimportable:
    they are imported lazily (sweeps, zoo downloads), so no wheels need to travel.  A failure says
    which import to make lazy (or which wheels to carry)."""
    code = (
        "import sys\n"
        f"for m in {NOT_ON_DEVICE!r}: sys.modules[m] = None\n"
        "import whatwhere.cli, whatwhere.cli.train, whatwhere.engine.trainer, whatwhere.engine.recipe\n"
        "import whatwhere.models, whatwhere.data.mnist, whatwhere.engine.objectives, whatwhere.engine.precision\n"
        "from whatwhere.engine.recipe import load_recipe\n"
        "from whatwhere.models import create_model\n"
        "for n in ('stn128', 'atn', 'conv_polo_atn'): load_recipe(n)\n"
        "create_model('atn')\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        OMP_NUM_THREADS="1",
    )
    py = os.environ.get("PY") or sys.executable
    r = subprocess.run([py, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode:
        raise SystemExit(
            f"gpu_sitting: `whatwhere train` needs {' or '.join(NOT_ON_DEVICE)} at import, which the "
            f"device lacks: make that import lazy or carry wheels\n{r.stderr[-2000:]}"
        )
    say(f"imports: `whatwhere train` imports without {', '.join(NOT_ON_DEVICE)} (no wheels to carry)")


def prepare(args) -> int:
    GPU.mkdir(parents=True, exist_ok=True)
    # MNIST, xz-compressed (9.2 MB instead of 55 MB raw or 11.4 MB gzipped); the device step
    # decompresses it and the loader checks every file's SHA-256
    src, dst = mnist_source(args.mnist_dir), GPU / "mnist"
    dst.mkdir(exist_ok=True)
    for name in MNIST_FILES:
        out = dst / f"{name}.xz"
        if out.is_file() and out.stat().st_size > 0:
            continue
        raw, gz = src / name, src / f"{name}.gz"
        if raw.is_file():
            data = raw.read_bytes()
        elif gz.is_file():
            data = gzip.decompress(gz.read_bytes())
        else:
            raise SystemExit(f"gpu_sitting: no {name} in {src} (fetch MNIST first, e.g. `whatwhere data fetch`)")
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(lzma.compress(data, preset=9))
        tmp.replace(out)
    say(f"mnist: {dst} ({du(dst) / MIB:.1f} MiB)")
    # the parked GPU runs, one .tgz each (the newest checkpoint only)
    runs = GPU / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    for name in RUNS:
        p = PARKED / name
        if (p / "model.safetensors").is_file():
            (runs / f"{name}.done").write_text("parked with its model.safetensors: the sitting skips it\n")
            say(f"{name}: done ({p / 'model.safetensors'}); the sitting skips it")
        elif (p / "checkpoints" / "latest.json").is_file():
            e, b = position(p / "checkpoints" / "latest.json")
            t = pack(p, runs / f"{name}.tgz")
            say(
                f"{name}: parked at epoch {e} batch {b} -> {t.relative_to(ROOT) if t.is_relative_to(ROOT) else t} "
                f"({t.stat().st_size / MIB:.1f} MiB)"
            )
        else:
            say(f"{name}: not parked; the sitting starts it")
    try:
        commit = git("rev-parse", "--short", "HEAD").decode().strip()
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src").strip()
        (GPU / "commit").write_text(commit + ("-dirty" if dirty else "") + "\n")
    except (OSError, subprocess.CalledProcessError):
        pass
    check_imports()
    if not args.no_trim:
        hidden = trim()
        if hidden:
            n_tracked = len(json.loads(git_path("gpu_sitting-trim.json").read_text())["index"])
            say(
                f"trimmed: {len(hidden)} large files will not travel ({n_tracked} tracked ones are staged as "
                f"deleted until `scripts/gpu_sitting.sh collect` or `untrim`: DO NOT COMMIT in between)"
            )
    total = size_report()
    if total > TRAVEL_LIMIT - 2 * MIB:
        say("gpu_sitting: WARNING: that is at or over the limit of a `run` call")
        return 1
    say(
        'next: run(command="bash scripts/gpu_sitting.sh", carry=[".gpu"], timeout_s=600), '
        "then scripts/gpu_sitting.sh collect FILES_AT"
    )
    return 0


# --------------------------------------------------------------------------------------- the sitting


class Tee:
    def __init__(self, path: Path | None) -> None:
        self.fh = open(path, "a") if path else None

    def __call__(self, *a) -> None:
        line = " ".join(str(x) for x in a)
        print(line, flush=True)
        if self.fh:
            self.fh.write(line + "\n")
            self.fh.flush()


def facts(log: Tee, py: str) -> None:
    if shutil.which("nvidia-smi"):
        r = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        log("nvidia-smi:", r.stdout.strip() or r.stderr.strip())
    code = (
        "import torch, platform, os; c = torch.cuda.is_available(); "
        "print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda, "
        "'| cores', os.cpu_count(), '| gpu', torch.cuda.get_device_name() if c else None, "
        "'| capability', torch.cuda.get_device_capability() if c else None, "
        "'| bf16', torch.cuda.is_bf16_supported() if c else None, "
        "'| free/total GiB', [round(x / 2**30, 1) for x in torch.cuda.mem_get_info()] if c else None)"
    )
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120)
    log("torch:", (r.stdout + r.stderr).strip())


def gpu_load() -> str:
    if not shutil.which("nvidia-smi"):
        return ""
    try:
        r = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return "gpu " + r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def last_line(path: Path, prefix: str = "epoch ") -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.startswith(prefix)]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def sit(args) -> int:
    t0 = time.monotonic()
    sitting_s = env_float("SITTING_S", 480)
    grace_s = env_float("SITTING_GRACE_S", 45)
    beat_s = env_float("SITTING_HEARTBEAT_S", 60)
    device = os.environ.get("SITTING_DEVICE", "cuda")
    precision = os.environ.get("SITTING_PRECISION", "bf16")
    ckpt_s = os.environ.get("SITTING_CHECKPOINT_S", "120")
    extra = shlex.split(os.environ.get("SITTING_ARGS", ""))
    py = os.environ.get("PY") or sys.executable
    out = Path(os.environ.get("OUT") or ROOT / "out-sitting")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("SITTING_WORK", "/tmp/gpu_sitting"))
    shutil.rmtree(work, ignore_errors=True)
    (work / "runs").mkdir(parents=True)
    log = Tee(out / "sitting.log")
    commit = (GPU / "commit").read_text().strip() if (GPU / "commit").is_file() else "unknown"
    log(
        f"gpu_sitting {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}: commit {commit}, device {device}, "
        f"precision {precision}, checkpoint every {ckpt_s} s, deadline {sitting_s:.0f} s, extra {extra}"
    )
    try:
        facts(log, py)
    except (OSError, subprocess.SubprocessError) as exc:  # facts are for the record: never stop the sitting
        log(f"facts: {exc}")

    mnist_args: list[str] = []
    if (GPU / "mnist").is_dir():
        m = work / "mnist"
        m.mkdir()
        for f in sorted((GPU / "mnist").iterdir()):
            if f.suffix == ".xz":
                (m / f.stem).write_bytes(lzma.decompress(f.read_bytes()))
            elif f.is_file():
                shutil.copy2(f, m / f.name)
        mnist_args = ["--mnist-dir", str(m)]
        log(f"mnist: {GPU / 'mnist'} -> {m}")

    names = run_names()
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // max(1, len(names))))
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        PYTHONUNBUFFERED="1",
    )
    procs: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    for name in names:
        run = work / "runs" / name
        tgz = GPU / "runs" / f"{name}.tgz"
        if (GPU / "runs" / f"{name}.done").is_file():
            log(f"{name}: done (parked); skipped")
            continue
        if tgz.is_file():
            new = unpack(tgz.read_bytes(), work / "runs", name)
            new.rename(run)
        resume = (run / "checkpoints" / "latest.json").is_file()
        if (run / "model.safetensors").is_file():
            log(f"{name}: already done; skipped")
            continue
        run.mkdir(parents=True, exist_ok=True)
        argv = [
            py,
            "-c",
            "import sys; from whatwhere.cli import main; sys.argv[0] = 'whatwhere'; sys.exit(main())",
            "train",
            RUNS[name],
            "--out",
            str(run),
            "--no-progress",
            "--device",
            device,
            "--set",
            f"precision={precision}",
            "--set",
            f"checkpoint_every_s={ckpt_s}",
            *extra,
            *mnist_args,
        ]
        if resume:
            argv.append("--resume")
        e, b = position(run / "checkpoints" / "latest.json")
        logs[name] = run / "train.log"
        with open(logs[name], "a") as fh:
            fh.write(
                f"=== gpu sitting {dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}, commit {commit}: "
                f"{shlex.join(['whatwhere', *argv[3:]])}\n"
            )
        procs[name] = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=open(logs[name], "a"), stderr=subprocess.STDOUT)
        log(
            f"{name}: {f'resumed at epoch {e} batch {b}' if resume else 'started'} (pid {procs[name].pid}, "
            f"{threads} threads)"
        )

    deadline = t0 + sitting_s

    def on_term(signum, frame):  # a timeout's SIGTERM: stop the trainers now and pack what there is
        nonlocal deadline, grace_s
        deadline, grace_s = 0.0, min(grace_s, 15.0)

    signal.signal(signal.SIGTERM, on_term)
    next_beat = time.monotonic() + beat_s
    while procs and any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        time.sleep(1)
        if time.monotonic() >= next_beat:
            next_beat += beat_s
            log(f"[{time.monotonic() - t0:4.0f} s] {gpu_load()}")
            for name in procs:
                state = "running" if procs[name].poll() is None else f"exit {procs[name].returncode}"
                log(f"  {name} ({state}): {last_line(logs[name])[:150]}")
    running = [p for p in procs.values() if p.poll() is None]
    for p in running:
        p.send_signal(signal.SIGINT)
    if running:
        log(f"[{time.monotonic() - t0:4.0f} s] deadline: SIGINT sent to the running trainers")
    end = time.monotonic() + grace_s
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < end:
        time.sleep(0.5)
    for name, p in procs.items():
        if p.poll() is None:  # a second Ctrl-C aborts; the last complete checkpoint stays
            log(f"{name}: still running {grace_s:.0f} s after SIGINT: a second SIGINT, then SIGKILL")
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # pack: one NAME.tgz a run, split into NAME.tgz.NN parts of at most SITTING_PART_MB
    made: list[Path] = []
    for name in names:
        run = work / "runs" / name
        if name in procs:
            rc = procs[name].returncode
            what = {0: "done", 130: "interrupted, checkpoint saved"}.get(rc, "FAILED: see train.log")
            log(f"{name}: exit {rc} ({what})")
            if rc not in (0, 130):
                for line in logs[name].read_text(errors="replace").splitlines()[-15:]:
                    log(f"  | {line}")
        if not (run / "checkpoints" / "latest.json").is_file():
            if name in procs:
                log(f"{name}: no checkpoint; nothing to bring back but its log")
                shutil.copy2(logs[name], out / f"{name}.train.log")
                made.append(out / f"{name}.train.log")
            continue
        fill_commit(run / "run.json", commit)
        e, b = position(run / "checkpoints" / "latest.json")
        tgz = pack(run, work / f"{name}.tgz")
        size = tgz.stat().st_size
        made += put_out(tgz, out)
        done = (run / "model.safetensors").is_file()
        log(
            f"{name}: {'DONE' if done else f'at epoch {e} batch {b}'}; {last_line(run / 'train.log')[:150]}; "
            f"packed {size / MIB:.1f} MiB"
        )
    made.append(out / "sitting.log")
    total = sum(p.stat().st_size for p in made if p.exists())
    big = [p.name for p in made if p.exists() and p.stat().st_size > OUT_FILE_MAX]
    log(
        f"$OUT: {len(made)} files, {total / MIB:.1f} MiB ({[p.name for p in made]}); "
        f"limits {OUT_FILES} files, {OUT_FILE_MAX // MIB} MiB each, {OUT_TOTAL // MIB} MiB in all"
    )
    if len(made) > OUT_FILES or total > OUT_TOTAL or big:
        log("gpu_sitting: WARNING: over what comes back from $OUT")
    log(f"sitting over after {time.monotonic() - t0:.0f} s")
    return 0 if all(p.returncode in (0, 130) for p in procs.values()) else 1


def put_out(tgz: Path, out: Path, part: int | None = None) -> list[Path]:
    """Move ``tgz`` into ``out``: whole if it is at most ``part`` bytes (default SITTING_PART_MB),
    else as ``NAME.NN`` parts of ``part`` bytes (``collect`` joins them in order)."""
    part = part or PART
    if tgz.stat().st_size <= part:
        return [Path(shutil.move(str(tgz), out / tgz.name))]
    made = []
    with open(tgz, "rb") as fh:
        while chunk := fh.read(part):
            made.append(out / f"{tgz.name}.{len(made):02d}")
            made[-1].write_bytes(chunk)
    tgz.unlink()
    return made


def fill_commit(path: Path, commit: str) -> None:
    """The device copy has no .git: the sittings it recorded have ``git_commit: null``; fill in the commit
    that `prepare` noted."""
    if commit == "unknown" or not path.is_file():
        return
    rec = json.loads(path.read_text())
    changed = False
    for s in rec.get("sittings", []):
        if s.get("git_commit") is None:
            s["git_commit"] = commit
            changed = True
    if changed:
        path.write_text(json.dumps(rec, indent=2))


# ------------------------------------------------------------------------------------------ collect


def zoo_hint(run: Path, rel: Path, recipe: str) -> str:
    """The commands that evaluate a finished run and add it to the zoo, provenance filled in from run.json."""
    rec = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
    last = (rec.get("sittings") or [{}])[-1]
    hw = str(last.get("hardware") or "...")
    ev = f"whatwhere eval central {rel} --digits 10000 --out results/{recipe} --name {recipe}"
    prov = [
        f"commit={last.get('git_commit') or '...'}",
        f"hardware={hw}",
        f"trained_on={hw}, {str(last.get('end', ''))[:10]}",
        f"evaluated_by={ev}",
    ]
    add = shlex.join(
        [
            "whatwhere",
            "zoo",
            "add",
            str(rel),
            "--name",
            recipe,
            "--metric",
            "central=...",
            "--metric",
            "general=...",
            *(x for p in prov for x in ("--provenance", p)),
        ]
    )
    return f"  to ship it (fill the metrics from results/{recipe}/central.json):\n  {ev}\n  {add}"


def collect(args) -> int:
    src = Path(args.dir)
    try:
        if not src.is_dir():
            raise SystemExit(f"gpu_sitting: {src} is not a folder")
        if (src / "sitting.log").is_file():
            say(f"--- {src / 'sitting.log'} (end)")
            for line in (src / "sitting.log").read_text(errors="replace").splitlines()[-12:]:
                say(f"  {line}")
        found = changed = 0
        for name in RUNS:
            whole, parts = src / f"{name}.tgz", sorted(src.glob(f"{name}.tgz.[0-9][0-9]"))
            if whole.is_file():
                data = whole.read_bytes()
            elif parts:
                data = b"".join(p.read_bytes() for p in parts)
            else:
                if (src / f"{name}.train.log").is_file():
                    say(f"{name}: no checkpoint came back; its log is {src / f'{name}.train.log'}")
                continue
            found += 1
            PARKED.mkdir(parents=True, exist_ok=True)
            new = unpack(data, PARKED, name)
            mine, theirs = (
                position(PARKED / name / "checkpoints" / "latest.json"),
                position(new / "checkpoints" / "latest.json"),
            )
            if (PARKED / name / "model.safetensors").is_file() or theirs < mine:
                shutil.rmtree(new)
                why = "is done" if (PARKED / name / "model.safetensors").is_file() else "is further"
                say(
                    f"{name}: {PARKED / name} {why} (epoch {mine[0]} batch {mine[1]}) than what came back "
                    f"(epoch {theirs[0]} batch {theirs[1]}); kept"
                )
                continue
            changed += 1
            shutil.rmtree(PARKED / name, ignore_errors=True)
            new.rename(PARKED / name)
            here = PARKED / name
            rel = here.relative_to(ROOT) if here.is_relative_to(ROOT) else here
            if (here / "model.safetensors").is_file():
                say(f"{name}: DONE, {(here / 'model.safetensors').stat().st_size / MIB:.1f} MiB of weights in {rel}")
                say(zoo_hint(here, rel, RUNS[name]))
            else:
                say(
                    f"{name}: parked at epoch {theirs[0]} batch {theirs[1]} in {rel} ({du(here) / MIB:.1f} MiB); "
                    f"{last_line(here / 'train.log')[:140]}"
                )
        if changed:
            say(
                f"commit {PARKED.name}/ (git add {PARKED.name} && git commit) so that the next session resumes them; "
                "the next sitting starts with `scripts/gpu_sitting.sh prepare`"
            )
        if not found:
            say("gpu_sitting: no run came back")
    finally:
        untrim()
    return 0 if found else 1


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="gpu_sitting", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd")
    p = sub.add_parser("prepare")
    p.add_argument("--mnist-dir", help="the MNIST IDX files (default: $WHATWHERE_MNIST, else the cache)")
    p.add_argument("--no-trim", action="store_true", help="do not hide the large files from the run call")
    sub.add_parser("sit")
    c = sub.add_parser("collect")
    c.add_argument("dir", help="the folder the run call's files came back to (files_at)")
    sub.add_parser("trim")
    sub.add_parser("untrim")
    sub.add_parser("size")
    args = ap.parse_args()
    if args.cmd == "prepare":
        return prepare(args)
    if args.cmd == "collect":
        return collect(args)
    if args.cmd == "trim":
        hidden = trim()
        say(f"trimmed: {len(hidden)} files hidden from the run call")
        size_report()
        return 0
    if args.cmd == "untrim":
        untrim()
        return 0
    if args.cmd == "size":
        size_report()
        return 0
    return sit(args)


if __name__ == "__main__":
    sys.exit(main())
