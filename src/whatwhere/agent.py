"""The closed saccade loop of the What/Where model (whatwhere-spec §5), batched over samples.

One step of the loop, for every sample of the batch at once (no per-sample Python loop):

1. **What** classifies the *fovea*: the 28 x 28 crop of the display centred at the current
   fixation ``(gi, gj)`` (rows ``64 + gi - 14 ... 64 + gi + 13``; pixels outside the display are
   0.5).  Its confidence is the largest softmax probability.
2. **Where** sees the *view*: the display translated so that the fixation is at the centre
   (``view[i, j] = display[i + gi, j + gj]``, 0.5 where that leaves the display), encoded by the
   retina into 2880 codes, and predicts 240 cell logits; ``sigmoid`` = predicted What accuracy
   after a saccade to each cell.
3. The eye jumps to the best cell's **saccade target** (the argmax pixel of its collicular kernel,
   :meth:`~whatwhere.retina.Colliculus.saccade_targets`, 2-55 px; the original's default): the
   new fixation is ``clip(fixation + target, -50, 50)`` per axis (so the fovea never leaves the
   display, as in the original).

After ``K`` saccades What classifies the final fovea (no evidence accumulation across
fixations, as in the original).  :meth:`Agent.run` returns the answers after 0, 1, ..., K
saccades in one pass.

**Re-encoding after a saccade** (the default, ``faithful=False``): the view is masked again
like a training display (every pixel outside the disk of radius 64 around the centre set to 0.5)
and encoded exactly as the Where network was trained (``clip(whiten + 0.5, 0, 1)`` for the
published nets, see :mod:`whatwhere.models.where`); the view is not min-max re-normalised (its
pixels already come from a normalised display).  The first view is the display itself, encoded
the same way.  Views after a saccade still contain grey (0.5) regions inside the disk where the
translated display has no pixels: training displays never do, an inherent limit of the design.

**Bug-faithful loop** (``faithful=True``, spec §8 B1 and B2): post-saccade views are neither
re-masked nor encoded the training way (plain ``whiten(x)``, no +0.5 / clip: with the DC leak
of the outer rings this shifts ring 7-9 codes by up to ~30), and the Where network's dropout
(p = 0.5) stays active during the loop (its masks come from a generator seeded by ``seed``, so
runs are reproducible).  The first view uses the training encoding, as the original's cached
features did.

**Stopping rule** (:meth:`Agent.run_until_confident`, spec §5.3, never used for the published
numbers): before each saccade, stop when the What confidence at the current fixation exceeds the
Where-predicted accuracy of the chosen target.  That prediction is, as in the original code, the
value at the target pixel of the full-field map reconstructed from the 240 predicted accuracies
with the colliculus pseudo-inverse (``stop_value="pinv"``); ``stop_value="cell"`` uses the
chosen cell's own sigmoid output instead.  A sample that stops keeps its fixation (and answer)
for the remaining steps.

**Inhibition of return** (optional, not in the original): cells whose landing point falls
within ``ior_radius`` px of an *earlier* fixation (not the current one) are excluded from the
choice, so the eye does not go back and forth between two places.

Run ``python -m whatwhere.agent --help`` for the benchmark entry point (eccentricity x
saccades table, ``benchmark.json`` and figures).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from whatwhere.data.display import mask_disk
from whatwhere.models.where import encode_views, shared_colliculus, shared_retina
from whatwhere.retina import Colliculus, Retina
from whatwhere.seeding import generator

__all__ = ["Agent", "SaccadeTrace", "fovea", "translate", "main"]

FOVEA = 28


def _take(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, fill: float) -> torch.Tensor:
    """``out[b, r, c] = images[b, rows[b, r], cols[b, c]]``, ``fill`` where out of range."""
    N = images.shape[-1]
    ok = ((rows >= 0) & (rows < N))[:, :, None] & ((cols >= 0) & (cols < N))[:, None, :]
    b = torch.arange(images.shape[0], device=images.device)[:, None, None]
    out = images[b, rows.clamp(0, N - 1)[:, :, None], cols.clamp(0, N - 1)[:, None, :]]
    return torch.where(ok, out, torch.full_like(out, fill))


def fovea(images: torch.Tensor, fixations: torch.Tensor, size: int = FOVEA, fill: float = 0.5) -> torch.Tensor:
    """The ``size x size`` crops centred at ``fixations``: ``(B, N, N)``, ``(B, 2)`` -> ``(B, size, size)``.

    Crop rows are ``N//2 + gi - size//2 ... N//2 + gi + size//2 - 1`` (the frame a digit at offset
    ``(gi, gj)`` occupies); pixels outside the display are ``fill``.
    """
    N = images.shape[-1]
    ar = torch.arange(size, device=images.device) + N // 2 - size // 2
    fix = fixations.to(images.device).long()
    return _take(images, fix[:, :1] + ar, fix[:, 1:] + ar, fill)


def translate(images: torch.Tensor, fixations: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """Displays translated so that ``fixations`` land on the centre: ``view[i, j] = img[i + gi, j + gj]``."""
    N = images.shape[-1]
    ar = torch.arange(N, device=images.device)
    fix = fixations.to(images.device).long()
    return _take(images, fix[:, :1] + ar, fix[:, 1:] + ar, fill)


@dataclass
class SaccadeTrace:
    """What the agent did, for a batch of ``B`` displays and up to ``K`` saccades.

    Attributes:
        logits: ``(B, K+1, 10)`` What logits at fixation 0 (the centre), 1, ..., K.
        fixations: ``(B, K+1, 2)`` int64 fixations, pixel offsets ``(di, dj)`` from the centre.
        confidence: ``(B, K+1)`` What confidence (largest softmax probability) at each fixation.
        where_confidence: ``(B, K)`` Where-predicted accuracy of the target chosen at each step
            (see the stopping rule in the module docstring).
        cells: ``(B, K)`` int64 chosen cell (``azimuth * 10 + ring``) at each step.
        n_saccades: ``(B,)`` int64 saccades actually made (``K`` without the stopping rule).
    """

    logits: torch.Tensor
    fixations: torch.Tensor
    confidence: torch.Tensor
    where_confidence: torch.Tensor
    cells: torch.Tensor
    n_saccades: torch.Tensor

    @property
    def predictions(self) -> torch.Tensor:
        """``(B, K+1)`` predicted class after 0..K saccades."""
        return self.logits.argmax(-1)

    @property
    def final_logits(self) -> torch.Tensor:
        """``(B, 10)`` logits of the final answer (after the last saccade made)."""
        return self.logits[:, -1]

    @property
    def final_predictions(self) -> torch.Tensor:
        """``(B,)`` final answers."""
        return self.final_logits.argmax(-1)


class Agent(nn.Module):
    """What + Where + retina + colliculus: the closed saccade loop.

    Args:
        what: 28 x 28 classifier, ``(B, 28, 28) -> (B, 10)`` logits.
        where: the Where pathway: a :class:`~whatwhere.models.where.Where` model, a bare
            :class:`~whatwhere.models.where.WhereNet`, or any module with
            ``head(codes (B, 2880), *, dropout, generator) -> (B, 240)`` logits (or, without
            ``head``, that signature for ``__call__``).
        retina: encodes the views (default: the published retina from
            :func:`~whatwhere.models.where.shared_retina`).
        colliculus: saccade targets and the stopping value (default: the published one).
        faithful: reproduce the original loop's two defects (module docstring).
        inhibition_of_return: exclude cells landing within ``ior_radius`` px of earlier fixations.
        offset_clip: the Where network's training encoding (default: ``where.offset_clip``, else True).
        max_fixation: fixations are clipped to ``±max_fixation`` px per axis (50, as the original).
        target_method: ``"kernel"`` (original) or ``"pinv"`` saccade targets.
        stop_value: ``"pinv"`` (original) or ``"cell"`` (see the module docstring).
        saccades: number of saccades made by :meth:`forward` (1).
        seed: seed of the dropout masks in faithful mode.
    """

    def __init__(self, what: nn.Module, where: nn.Module, retina: Retina | None = None,
                 colliculus: Colliculus | None = None, *, faithful: bool = False, inhibition_of_return: bool = False,
                 ior_radius: float = 5.0, offset_clip: bool | None = None, max_fixation: int = 50,
                 target_method: str = "kernel", stop_value: str = "pinv", saccades: int = 1, seed: int = 0) -> None:
        super().__init__()
        if stop_value not in ("pinv", "cell"):
            raise ValueError(f"stop_value must be 'pinv' or 'cell', got {stop_value!r}")
        if target_method not in ("kernel", "pinv"):
            raise ValueError(f"target_method must be 'kernel' or 'pinv', got {target_method!r}")
        if saccades < 0 or max_fixation < 0:
            raise ValueError("saccades and max_fixation must be >= 0")
        self.what = what
        self.where = where
        self.faithful = bool(faithful)
        self.inhibition_of_return = bool(inhibition_of_return)
        self.ior_radius = float(ior_radius)
        self.offset_clip = bool(getattr(where, "offset_clip", True) if offset_clip is None else offset_clip)
        self.max_fixation = int(max_fixation)
        self.target_method = target_method
        self.stop_value = stop_value
        self.saccades = int(saccades)
        self.seed = int(seed)
        self._retina = {} if retina is None else {str(retina.device): retina}
        self._colliculus = {} if colliculus is None else {str(colliculus.kernels.device): colliculus}
        self._explicit = (retina is not None, colliculus is not None)
        self._targets: dict[str, torch.Tensor] = {}

    # -- per-device resources (plain attributes: never in the state dict)

    def retina(self, device) -> Retina:
        key = str(torch.device(device))
        if key not in self._retina:
            if self._explicit[0]:
                self._retina[key] = next(iter(self._retina.values())).to(device)
            else:
                self._retina[key] = shared_retina(offset_clip=self.offset_clip, device=device)
        return self._retina[key]

    def colliculus(self, device) -> Colliculus:
        key = str(torch.device(device))
        if key not in self._colliculus:
            if self._explicit[1]:
                self._colliculus[key] = next(iter(self._colliculus.values())).to(device)
            else:
                self._colliculus[key] = shared_colliculus(device)
        return self._colliculus[key]

    def targets(self, device) -> torch.Tensor:
        """``(240, 2)`` int64 saccade target of every cell, on ``device``."""
        key = str(torch.device(device))
        if key not in self._targets:
            self._targets[key] = self.colliculus(device).saccade_targets(method=self.target_method).to(device)
        return self._targets[key]

    # -- the two pathways

    def _what(self, images: torch.Tensor, fix: torch.Tensor) -> torch.Tensor:
        return self.what(fovea(images, fix))

    def where_logits(self, images: torch.Tensor, fix: torch.Tensor, first: bool,
                     gen: torch.Generator | None = None) -> torch.Tensor:
        """Where logits ``(B, 240)`` for the views of ``images`` at fixations ``fix``."""
        retina = self.retina(images.device)
        if first:
            codes = encode_views(retina, images, offset_clip=self.offset_clip)
        elif self.faithful:
            codes = encode_views(retina, translate(images, fix), offset_clip=False)
        else:
            view = (translate(images, fix) - 0.5) * mask_disk(images.shape[-1], images.device) + 0.5
            codes = encode_views(retina, view, offset_clip=self.offset_clip)
        head = getattr(self.where, "head", self.where)
        return head(codes, dropout=self.faithful, generator=gen)

    # -- the loop

    @torch.no_grad()
    def _loop(self, images: torch.Tensor, K: int, stop: bool) -> SaccadeTrace:
        if images.ndim == 4 and images.shape[1] == 1:
            images = images[:, 0]
        if images.ndim != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must have shape (B, N, N), got {tuple(images.shape)}")
        if K < 0:
            raise ValueError(f"the number of saccades must be >= 0, got {K}")
        dev = images.device
        B = images.shape[0]
        targets = self.targets(dev)
        gen = generator(self.seed, "agent-dropout", device=dev) if self.faithful else None
        fix = torch.zeros(B, 2, dtype=torch.int64, device=dev)
        active = torch.ones(B, dtype=torch.bool, device=dev)
        n_sacc = torch.zeros(B, dtype=torch.int64, device=dev)
        fixes, logits, confs, wconfs, cells = [fix], [], [], [], []
        M = self.max_fixation
        for k in range(K):
            lw = self._what(images, fix)
            logits.append(lw)
            conf = lw.softmax(-1).amax(-1)
            confs.append(conf)
            lp = self.where_logits(images, fix, first=(k == 0), gen=gen)
            score = lp
            if self.inhibition_of_return and k > 0:
                landing = (fix[:, None, :] + targets[None]).clamp(-M, M).double()      # (B, 240, 2)
                earlier = torch.stack(fixes[:-1], 1).double()                          # (B, k, 2)
                near = (torch.cdist(landing, earlier) <= self.ior_radius).any(-1)       # (B, 240)
                near &= ~near.all(-1, keepdim=True)  # nowhere left to go: ignore the inhibition
                score = lp.masked_fill(near, float("-inf"))
            cell = score.argmax(-1)
            cells.append(cell)
            target = targets[cell]                                                     # (B, 2)
            p = lp.sigmoid()
            if self.stop_value == "cell":
                wconf = p.gather(1, cell[:, None])[:, 0]
            else:
                N = images.shape[-1]
                pix = (target[:, 0] + N // 2).clamp(0, N - 1) * N + (target[:, 1] + N // 2).clamp(0, N - 1)
                pinv = self.colliculus(dev).pseudo_inverse()                           # (240, N*N)
                wconf = (p * pinv[:, pix].T).sum(-1)
            wconfs.append(wconf)
            new = (fix + target).clamp(-M, M)
            if stop:
                active = active & ~(conf > wconf)
                new = torch.where(active[:, None], new, fix)
            n_sacc += active.long()
            fix = new
            fixes.append(fix)
        lw = self._what(images, fix)
        logits.append(lw)
        confs.append(lw.softmax(-1).amax(-1))
        empty = torch.zeros(B, 0, device=dev)
        return SaccadeTrace(
            logits=torch.stack(logits, 1), fixations=torch.stack(fixes, 1), confidence=torch.stack(confs, 1),
            where_confidence=torch.stack(wconfs, 1) if wconfs else empty,
            cells=torch.stack(cells, 1) if cells else empty.long(), n_saccades=n_sacc)

    def run(self, images: torch.Tensor, n_saccades: int) -> SaccadeTrace:
        """A fixed number of saccades; answers after 0, 1, ..., ``n_saccades`` of them.

        Args:
            images: ``(B, N, N)`` displays in [0, 1] (on the agent's device).
        """
        return self._loop(images, int(n_saccades), stop=False)

    def run_until_confident(self, images: torch.Tensor, max_saccades: int) -> SaccadeTrace:
        """Saccade until the What confidence exceeds the Where-predicted accuracy of the best
        target, at most ``max_saccades`` times; ``trace.n_saccades`` says how many were made and
        ``trace.final_logits`` is the answer."""
        return self._loop(images, int(max_saccades), stop=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Common model interface: logits ``(B, 10)`` after ``self.saccades`` saccades."""
        return self.run(images, self.saccades).final_logits


# ------------------------------------------------------------------------------ entry point


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m whatwhere.agent",
        description="Eccentricity x contrast benchmark of the What/Where agent (0..K saccades and the "
                    "stopping rule), written to OUT/benchmark.json with figures. "
                    "`python -m whatwhere.agent figures JSON... --out DIR` redraws the combined figures.")
    p.add_argument("--what", default="results/what", help="What run directory or weights (default results/what)")
    p.add_argument("--where", required=True, help="Where run directory or weights (e.g. runs/where-c0.7)")
    p.add_argument("--contrast", type=float, nargs="+", default=[0.7], help="digit contrast(s) (default 0.7)")
    p.add_argument("--digits", type=int, default=1000, help="MNIST-test digits per cell (default 1000, as the paper)")
    p.add_argument("--saccades", type=int, default=5, help="largest fixed number of saccades (default 5)")
    p.add_argument("--no-stop", action="store_true", help="skip the stopping-rule condition")
    p.add_argument("--faithful", action="store_true", help="reproduce the original loop's defects (B1, B2)")
    p.add_argument("--ior", action="store_true", help="inhibition of return")
    p.add_argument("--noise", type=float, default=1.0, help="clutter level (default 1.0, paper)")
    p.add_argument("--seed", type=int, default=0, help="display seed (default 0)")
    p.add_argument("--batch", type=int, default=None, help="displays per batch (default 500 CPU, 5000 GPU)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--name", default=None, help="model name in the records (default whatwhere[-faithful])")
    p.add_argument("--out", required=True, help="output directory (benchmark.json, figures)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.add_argument("--mnist-dir", default=None, help="directory holding the MNIST IDX files")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _figures_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m whatwhere.agent figures",
                                description="Fig. 4 and Fig. 5B from one or more benchmark.json files.")
    p.add_argument("files", nargs="+", help="benchmark.json files (records are concatenated)")
    p.add_argument("--out", required=True, help="output directory")
    return p


def draw_figures(records: list[dict], out: str | Path, *, name: str | None = None) -> list[Path]:
    """Fig. 4 (0 vs 1 saccade per contrast) and Fig. 5B (0..3 saccades, each contrast) from records."""
    from whatwhere import plots

    out = Path(out)
    paths = [plots.where_fig4(records, out / "fig4_saccade_gain.png", model=name)]
    for c in sorted({r["contrast"] for r in records}):
        paths.append(plots.where_fig5b(records, out / f"fig5b_saccades_c{c:g}.png", contrast=c, model=name))
    return paths


@torch.no_grad()
def _fig3(agent: Agent, contrast: float, noise: float, seed: int, out: Path, device, mnist_dir=None) -> Path:
    """Fig. 3-style panel for one display of the training distribution (polar placement)."""
    from whatwhere import plots
    from whatwhere.data import DisplaySet, mnist, preset

    test = mnist.load("test", mnist_dir)
    cfg = preset("paper", 128, noise=noise, contrast=contrast)
    d = DisplaySet(test.images, test.labels, cfg, seed=seed, shuffle=True, device=device).batch(0, 16)
    k = int(torch.argmax((d.offsets.double().norm(dim=1) - 25).abs().neg()))  # a digit about 25 px out
    img = d.images[k:k + 1]
    retina = agent.retina(device)
    col = agent.colliculus(device)
    codes = encode_views(retina, img, offset_clip=agent.offset_clip)
    recon = retina.reconstruct(codes)[0]
    from whatwhere.models.where import DEFAULT_ACCURACY_MAP, load_accuracy_map

    acc = load_accuracy_map(DEFAULT_ACCURACY_MAP).to(device)
    true_cells = col.where_target(acc, d.offsets[k:k + 1])
    tr = agent.run(img, 1)
    pred_cells = agent.where_logits(img, torch.zeros(1, 2, dtype=torch.long, device=device), first=True).sigmoid()
    fov = fovea(img, tr.fixations[:, 1])[0]
    return plots.where_fig3(
        display=img[0].cpu().numpy(), reconstruction=recon.cpu().numpy(),
        true_map=col.unpool(true_cells, method="transpose")[0].cpu().numpy(),
        pred_map=col.unpool(pred_cells, method="transpose")[0].cpu().numpy(),
        fovea=fov.cpu().numpy(), label=int(d.labels[k]), prediction=int(tr.predictions[0, 1]),
        offset=tuple(int(v) for v in d.offsets[k]), fixation=tuple(int(v) for v in tr.fixations[0, 1]),
        out=out, title=f"contrast {contrast:g}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m whatwhere.agent`` (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "figures":
        a = _figures_parser().parse_args(argv[1:])
        import json

        records = [r for f in a.files for r in json.loads(Path(f).read_text())["records"]]
        for p in draw_figures(records, a.out):
            print(f"wrote {p}")
        return 0
    if argv and argv[0] == "benchmark":
        argv = argv[1:]
    a = _parser().parse_args(argv)
    from whatwhere.protocols import eccentricity_benchmark, provenance, write_json
    from whatwhere.train import load_model, pick_device

    dev = pick_device(a.device)
    what = load_model(a.what, dev)
    where = load_model(a.where, dev)
    agent = Agent(what, where, faithful=a.faithful, inhibition_of_return=a.ior).to(dev).eval()
    name = a.name or ("whatwhere-faithful" if a.faithful else "whatwhere")
    t0 = time.perf_counter()
    records = eccentricity_benchmark(agent, contrasts=tuple(a.contrast), n_digits=a.digits,
                                     saccades=range(0, a.saccades + 1), stopping_rule=not a.no_stop, seed=a.seed,
                                     noise=a.noise, device=dev, name=name, batch=a.batch, mnist_dir=a.mnist_dir,
                                     progress=not a.no_progress)
    wall = time.perf_counter() - t0
    out = Path(a.out)
    command = " ".join(["python -m whatwhere.agent"] + list(sys.argv[1:] if argv is None else argv))
    payload = provenance(model=name, recipe=out.name, seed=a.seed, device=dev, wall_time_s=wall, command=command)
    payload.update({"what": str(a.what), "where": str(a.where), "faithful": a.faithful,
                    "inhibition_of_return": a.ior, "n_digits": a.digits, "noise": a.noise,
                    "stopping_rule": None if a.no_stop else {"max_saccades": a.saccades, "value": agent.stop_value},
                    "records": records})
    path = write_json(out / "benchmark.json", payload)
    print(f"wrote {path} ({len(records)} records, {wall:.1f} s)")
    _print_table(records)
    if not a.no_figures:
        for p in draw_figures(records, out, name=name):
            print(f"wrote {p}")
        for c in a.contrast:
            p = _fig3(agent, c, a.noise, a.seed, out / (f"fig3_example_c{c:g}.png"), dev, a.mnist_dir)
            print(f"wrote {p}")
    return 0


def _print_table(records: list[dict]) -> None:
    """Accuracy per (contrast, saccades) x eccentricity, with the published value when known."""
    from whatwhere.published import WHERE_ECCENTRICITY as PUB

    eccs = sorted({r["eccentricity"] for r in records})
    for c in sorted({r["contrast"] for r in records}):
        print(f"contrast {c:g}   ecc: " + " ".join(f"{e:6.2f}" for e in eccs))
        for s in sorted({r["saccades"] for r in records if r["contrast"] == c}, key=lambda s: (isinstance(s, str), s)):
            row = {r["eccentricity"]: r["accuracy"] for r in records if r["contrast"] == c and r["saccades"] == s}
            print(f"  saccades {s!s:>4}:  " + " ".join(f"{row.get(e, math.nan):6.3f}" for e in eccs))
            pub = PUB["accuracy"].get(c, {}).get(s)
            if pub is not None and len(eccs) == len(PUB["eccentricities"]):
                print("     published:  " + " ".join(f"{v:6.3f}" for v in pub))


if __name__ == "__main__":
    raise SystemExit(main())
