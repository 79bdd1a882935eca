"""The closed saccade loop of the What/Where model (Daucé, Albiges & Perrinet 2020), batched.

One step of the loop, for every sample of the batch at once (no per-sample Python loop):

1. **What** classifies the *fovea*: the 28 x 28 crop of the display centred at the current
   fixation ``(gi, gj)`` (rows ``N/2 + gi - 14 ... N/2 + gi + 13``, N = 128 for the published
   model; pixels outside the display are ``pad``, 0.5).  Its confidence is the largest softmax probability.
2. **Where** sees the *view*: the display translated so that the fixation is at the centre
   (``view[i, j] = display[i + gi, j + gj]``, 0.5 where that leaves the display), encoded by the
   retina into 2880 codes, and predicts 240 cell logits; ``sigmoid`` = predicted What accuracy
   after a saccade to each cell.
3. The eye jumps to the best cell's **saccade target** (the argmax pixel of its collicular kernel,
   :meth:`~whatwhere.retina.Colliculus.saccade_targets`, 2-55 px; the original's default): the
   new fixation is ``clip(fixation + target, -50, 50)`` per axis (so the fovea never leaves the
   display, as in the original; ``N/2 - 14`` on an ``N x N`` display).

**Display size.**  The loop runs on the displays of its Where network (``where.input_size``: 128,
or 60 / 100 for the standard tasks, with the retina of
:meth:`~whatwhere.retina.RetinaConfig.for_size`); the What network reads a 28 x 28 fovea at any
size.  Pixels leaving the display read ``pad`` and the disk mask is re-applied when ``mask``
(default: the Where model's ``pad`` / ``mask``: 0.5 and the mask for MotionClouds displays, 0
and no mask for black ones).

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

**Bug-faithful loop** (``faithful=True``, the original notebooks' two defects): post-saccade views are neither
re-masked nor encoded the training way (plain ``whiten(x)``, no +0.5 / clip: with the DC leak
of the outer rings this shifts ring 7-9 codes by up to ~30), and the Where network's dropout
(p = 0.5) stays active during the loop (its masks come from a generator seeded by ``seed``, so
runs are reproducible).  The first view uses the training encoding, as the original's cached
features did.

**Stopping rule** (:meth:`Agent.run_until_confident`, the paper's appendix; never used for the
published numbers): before each saccade, stop when the What confidence at the current fixation exceeds the
Where-predicted accuracy of the chosen target.  That prediction is, as in the original code, the
value at the target pixel of the full-field map reconstructed from the 240 predicted accuracies
with the colliculus pseudo-inverse (``stop_value="pinv"``); ``stop_value="cell"`` uses the
chosen cell's own sigmoid output instead.  A sample that stops keeps its fixation (and answer)
for the remaining steps.

**Inhibition of return** (optional, not in the original): cells whose landing point falls
within ``ior_radius`` px of an *earlier* fixation (not the current one) are excluded from the
choice, so the eye does not go back and forth between two places.

``whatwhere saccades --help`` runs the eccentricity x saccades benchmark of an agent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from whatwhere.data.display import mask_disk
from whatwhere.ops.sampling import fovea, translate
from whatwhere.retina import Colliculus, Retina
from whatwhere.utils.seeding import generator

__all__ = ["Agent", "SaccadeTrace"]


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
        retina: encodes the views (default: the Where model's own retina, else a new published
            retina).
        colliculus: saccade targets and the stopping value (default: built from the retina).
        faithful: reproduce the original loop's two defects (module docstring).
        inhibition_of_return: exclude cells landing within ``ior_radius`` px of earlier fixations.
        offset_clip: the Where network's training encoding (default: ``where.offset_clip``, else True).
        max_fixation: fixations are clipped to ``±max_fixation`` px per axis (default
            ``N/2 - 14``: 50 at N = 128, as the original).
        pad, mask: the value outside the display and whether re-centred views get the disk mask
            (default: the Where model's ``pad`` / ``mask``, else 0.5 / True).
        target_method: ``"kernel"`` (original) or ``"pinv"`` saccade targets.
        stop_value: ``"pinv"`` (original) or ``"cell"`` (see the module docstring).
        saccades: number of saccades made by :meth:`forward` (1).
        seed: seed of the dropout masks in faithful mode.

    The retina and colliculus are submodules without persistent state: ``.to(device)`` moves
    them and the agent's ``state_dict`` holds only the What and Where weights.
    """

    targets: torch.Tensor

    def __init__(
        self,
        what: nn.Module,
        where: nn.Module,
        retina: Retina | None = None,
        colliculus: Colliculus | None = None,
        *,
        faithful: bool = False,
        inhibition_of_return: bool = False,
        ior_radius: float = 5.0,
        offset_clip: bool | None = None,
        max_fixation: int | None = None,
        target_method: str = "kernel",
        stop_value: str = "pinv",
        saccades: int = 1,
        seed: int = 0,
        pad: float | None = None,
        mask: bool | None = None,
    ) -> None:
        super().__init__()
        if stop_value not in ("pinv", "cell"):
            raise ValueError(f"stop_value must be 'pinv' or 'cell', got {stop_value!r}")
        if target_method not in ("kernel", "pinv"):
            raise ValueError(f"target_method must be 'kernel' or 'pinv', got {target_method!r}")
        if saccades < 0 or (max_fixation is not None and max_fixation < 0):
            raise ValueError("saccades and max_fixation must be >= 0")
        if getattr(what, "input_size", 28) != 28 or hasattr(what, "head"):
            raise ValueError(
                f"the What network must be a 28x28 classifier (e.g. the zoo's `what`), got a "
                f"{type(what).__name__} of {getattr(what, 'input_size', '?')}-px input"
            )
        if getattr(where, "input_size", 128) != 128 and not hasattr(where, "head"):
            raise ValueError(
                f"the Where network must be a Where model (e.g. the zoo's `where-c0.7`), got a "
                f"{type(where).__name__} of {where.input_size}-px input"
            )
        self.what = what
        self.where = where
        self.faithful = bool(faithful)
        self.inhibition_of_return = bool(inhibition_of_return)
        self.ior_radius = float(ior_radius)
        self.offset_clip = bool(getattr(where, "offset_clip", True) if offset_clip is None else offset_clip)
        self.pad = float(getattr(where, "pad", 0.5) if pad is None else pad)
        self.mask = bool(getattr(where, "mask", True) if mask is None else mask)
        self.target_method = target_method
        self.stop_value = stop_value
        self.saccades = int(saccades)
        self.seed = int(seed)
        if retina is None:
            retina = getattr(where, "retina", None)
            retina = retina if isinstance(retina, Retina) else Retina(offset_clip=self.offset_clip)
        size = getattr(where, "input_size", None)
        if isinstance(size, int) and size != retina.N:
            raise ValueError(f"the retina is for {retina.N}px displays but the Where network takes {size}px ones")
        self.retina = retina
        self.max_fixation = int(retina.N // 2 - 14 if max_fixation is None else max_fixation)
        self.colliculus = colliculus if colliculus is not None else Colliculus(retina)
        self.register_buffer("targets", self.colliculus.saccade_targets(method=target_method), persistent=False)

    @property
    def input_size(self) -> int:
        """Side N of the displays the loop runs on (its retina's)."""
        return self.retina.N

    @property
    def bandwidth(self) -> int:
        """Numbers the Where pathway sees per display: the retina code size (2880)."""
        return self.retina.n_codes

    @torch.no_grad()
    def localiser_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the Where pathway reads at the first fixation: the retina codes ``(B, 2880)``."""
        return self.retina.encode(images, offset_clip=self.offset_clip)

    # -- the two pathways

    def _what(self, images: torch.Tensor, fix: torch.Tensor) -> torch.Tensor:
        return self.what(fovea(images, fix, fill=self.pad))

    def where_logits(
        self, images: torch.Tensor, fix: torch.Tensor, first: bool, gen: torch.Generator | None = None
    ) -> torch.Tensor:
        """Where logits ``(B, 240)`` for the views of ``images`` at fixations ``fix``."""
        if first:
            codes = self.retina.encode(images, offset_clip=self.offset_clip)
        elif self.faithful:
            codes = self.retina.encode(translate(images, fix, fill=self.pad), offset_clip=False)
        else:
            view = translate(images, fix, fill=self.pad)
            if self.mask:
                view = (view - 0.5) * mask_disk(images.shape[-1], images.device) + 0.5
            codes = self.retina.encode(view, offset_clip=self.offset_clip)
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
        targets = self.targets
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
                landing = (fix[:, None, :] + targets[None]).clamp(-M, M).double()  # (B, 240, 2)
                earlier = torch.stack(fixes[:-1], 1).double()  # (B, k, 2)
                near = (torch.cdist(landing, earlier) <= self.ior_radius).any(-1)  # (B, 240)
                near &= ~near.all(-1, keepdim=True)  # nowhere left to go: ignore the inhibition
                score = lp.masked_fill(near, float("-inf"))
            cell = score.argmax(-1)
            cells.append(cell)
            target = targets[cell]  # (B, 2)
            p = lp.sigmoid()
            if self.stop_value == "cell":
                wconf = p.gather(1, cell[:, None])[:, 0]
            else:
                N = images.shape[-1]
                pix = (target[:, 0] + N // 2).clamp(0, N - 1) * N + (target[:, 1] + N // 2).clamp(0, N - 1)
                pinv = self.colliculus.pseudo_inverse()  # (240, N*N)
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
            logits=torch.stack(logits, 1),
            fixations=torch.stack(fixes, 1),
            confidence=torch.stack(confs, 1),
            where_confidence=torch.stack(wconfs, 1) if wconfs else empty,
            cells=torch.stack(cells, 1) if cells else empty.long(),
            n_saccades=n_sacc,
        )

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
