"""The foveated saccadic transformer: sees like What/Where, reads like a spatial transformer.

Each of ``K`` glimpses (``glimpses``, 1 to 3):

1. **Periphery.**  The display re-centred on the current fixation (pixels that leave the display
   are the background 0.5, the disk mask re-applied, as in the What/Where loop) is encoded by the
   2880-coefficient log-Gabor retina (:class:`~whatwhere.retina.Retina`, the default) or by the
   768-d POLO code of Dabane, Perrinet & Dauce 2022 (``periphery="polo"``, the shipped recipe's:
   its first saccade lands nearer a far digit).  Nothing else of the periphery is read.
2. **Colliculus.**  The Where MLP (2880 or 768 → 1000 → 1000 → 240, the architecture of Daucé,
   Albiges & Perrinet 2020) predicts the collicular accuracy map: one logit per log-polar cell.
3. **Continuous saccade.**  A soft-argmax turns the map into a fixation: the cells' saccade
   targets (:meth:`~whatwhere.retina.Colliculus.saccade_targets`, the What/Where loop's landing
   points) weighted by ``softmax(logits / temperature)``, plus a learned sub-cell correction
   ``max_shift * tanh(W h)`` from the MLP's last hidden layer.  The temperature is learned (its
   log is a parameter).  With the last layers initialised to zero the map is flat, the weights
   uniform and the first fixation the display centre (the targets are point-symmetric).
4. **Fovea.**  A 28×28 glimpse at the fixation, taken by the shared differentiable sampler at one
   display pixel per glimpse pixel (:func:`~whatwhere.ops.sample`, scale 28/N), is classified
   by the What LeNet (or STN-28, ``fovea="stn28"``).  With ``end_to_end`` (the default) the
   classification loss reaches the collicular map through the sampler and the soft-argmax; the
   shipped recipe detaches the glimpse and trains the map by its collicular loss only.

The fixations accumulate (each saccade is relative to the current fixation, as an eye's) and are
clipped to ±``max_fixation`` px (default ``N/2 - 14``: 50 px at N = 128, the fovea stays on the display).

**Display size.**  ``size`` (N, default 128) builds the model for ``N x N`` displays: the retina
and colliculus of :meth:`~whatwhere.retina.RetinaConfig.for_size` (the same 2880 codes and 240
cells, radii scaled by N/128, so the Where MLP keeps its shape), the glimpse scale 28/N, and the
fixation range.  ``pad`` is the value of pixels outside the display (in the glimpse and the
re-centred views: 0.5 for the MotionClouds displays, 0 for the black displays of the standard
tasks) and ``mask`` whether a re-centred view gets the disk mask of the MotionClouds displays.
The next retina code is computed from the display re-centred on the rounded fixation (the
re-centring is not differentiated).

**Evidence accumulation** (the product of posteriors of the paper's appendix): the answer after
``k`` glimpses is ``sum_j log softmax(logits_j)``; with one glimpse it equals the single
glimpse's classifier.  **Stopping**: with ``stop_confidence`` set, a display stops taking glimpses
once its accumulated posterior exceeds it (``forward_trace`` reports how many it took).
**At test time** (eval mode) the loop may take more glimpses than in training, with its own stop:
``test_glimpses`` and ``test_stop_confidence`` (None: the training values).  The Where MLP is
trained from every fixation, so the loop goes on re-centring after the glimpses it was trained
with; the packaged recipe trains with 2 glimpses and decides with up to 6, stopping at a posterior
of 0.95.

**Saccade policy** (``policy_std`` > 0, off by default; for a REINFORCE term added to the
collicular loss, as the recurrent attention model of Mnih, Heess, Graves & Kavukcuoglu 2014,
"Recurrent Models of Visual Attention", trains its locations with Williams 1992): in training mode
each saccade is drawn from a Gaussian of standard deviation ``policy_std`` *px* (per axis) around
the deterministic saccade, and the glimpse is taken at the sample, which is detached (no
reparameterisation: the classification gradient does not reach the saccade through the sampler).
The trace records ``log π`` of each sample (summed over the two axes, its gradient reaching the Where MLP,
the sub-cell head and the temperature through the mean) and a learned baseline's prediction of
the reward: a linear head ``baseline`` on the collicular map of that glimpse (the 240 logits,
detached, so the baseline does not shape the map).  The objective ``saccadic`` uses them with
``objective_args.policy_weight``.  In eval mode the saccades stay deterministic.

The model follows :class:`~whatwhere.models.interface.GlimpseModel` (``forward_with_theta``: the
logits and the ``theta`` of the last glimpse) and reads ``bandwidth`` = 2,880 numbers of the
periphery per glimpse (768 with POLO) plus the 784 pixels of its fovea.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from whatwhere.data.display import mask_disk
from whatwhere.models.stn import STN28
from whatwhere.models.what import WhatNet
from whatwhere.models.where import WhereNet
from whatwhere.ops.sampling import FOVEA, as_nchw, attention_theta, sample, translate
from whatwhere.retina import Colliculus, Retina, RetinaConfig

if TYPE_CHECKING:
    from whatwhere.retina.polo import PoloCode

__all__ = ["SaccadicTransformer", "SaccadicTrace"]

PERIPHERIES = ("retina", "polo")
FOVEAE = ("what", "stn28")


@dataclass
class SaccadicTrace:
    """What the saccadic transformer did on a batch of ``B`` displays with ``K`` glimpses.

    Attributes:
        logits: ``(B, 10)`` accumulated evidence after the glimpses taken (the answer).
        step_logits: ``(B, K, 10)`` the classifier's logits of each glimpse.
        evidence: ``(B, K, 10)`` accumulated log-posterior after 1..K glimpses.
        where_logits: ``(B, K, n_cells)`` the collicular map predicted before each glimpse.
        fixations: ``(B, K + 1, 2)`` float fixations ``(di, dj)`` (px from the display centre),
            the first one the centre.
        theta: ``(B, 2, 3)`` the transform of the last glimpse taken.
        n_glimpses: ``(B,)`` int64 glimpses taken (``K`` without stopping).
        log_probs: ``(B, K)`` log-density (px⁻²) of each sampled saccade under the policy, 0 for a
            display that had stopped; None unless the saccades were sampled (``policy_std`` > 0,
            training mode).
        baselines: ``(B, K)`` the baseline's prediction of the reward at each saccade (None likewise).
    """

    logits: torch.Tensor
    step_logits: torch.Tensor
    evidence: torch.Tensor
    where_logits: torch.Tensor
    fixations: torch.Tensor
    theta: torch.Tensor
    n_glimpses: torch.Tensor
    log_probs: torch.Tensor | None = None
    baselines: torch.Tensor | None = None


class SaccadicTransformer(nn.Module):
    """The foveated saccadic transformer (module docstring).

    Args:
        glimpses: K, the number of glimpses (1, 2 or 3 in the study; any K >= 1).
        periphery: ``"retina"`` (2880 log-Gabor coefficients) or ``"polo"`` (the 768-d POLO code).
        dim1, dim2, p_dropout: the Where MLP (1000, 1000, 0.5 as the paper).
        temperature: initial soft-argmax temperature (learned).
        max_shift: largest sub-cell correction, px.
        max_fixation: fixations are clipped to ± this, px (50, as the What/Where loop).
        stop_confidence: stop a display once its accumulated posterior exceeds this (None: never).
        test_glimpses: the glimpses taken in eval mode (at most, with a stop); None: ``glimpses``.
            Training (train mode) always takes ``glimpses``.
        test_stop_confidence: the stop of eval mode; None: ``stop_confidence``.
        freeze: names of submodules whose parameters are not trained (e.g. ``["where.fc1"]``).
        end_to_end: let the classification loss reach the saccade through the sampler (True); False
            detaches the fixation before the glimpse, so the collicular map learns only from its
            own supervised loss (what the packaged recipe does: through the bilinear sampler the
            classification gradient only sees about a pixel around the glimpse, and in a
            controlled test it degraded the trained map).
        size: display side N (128; 60, 100 ... for the standard tasks; an even integer >= 32).
        pad: the value read outside the display (0.5; 0 for black displays).
        mask: re-apply the disk mask to re-centred views (True; False for black displays).
        fovea: the foveal classifier of the 28×28 glimpse: ``"what"`` (the What LeNet) or
            ``"stn28"`` (STN-28: a small localiser re-centres the digit inside the glimpse before the
            same LeNet; 5,520 more parameters).
        test_inhibition: inhibition of return at test time (eval mode only), px: a map cell whose
            saccade would land within this distance of a fixation already taken (the current one
            included) is left out of the soft-argmax, so that an uncertain display looks elsewhere
            instead of returning to the same place; 0 (default): off.  If every cell is inhibited,
            none is.  The trace's ``where_logits`` stay the map as predicted.
        policy_std: standard deviation, in display px per axis, of the Gaussian saccade policy
            sampled in training mode (module docstring); 0 (default): no sampling and no
            ``baseline`` head (the model and its state dict are those without the option).  Needs
            ``end_to_end=False``: the sampled fixation is detached.

    Submodules: ``where`` (:class:`~whatwhere.models.where.WhereNet`), ``what`` (the foveal
    classifier: :class:`~whatwhere.models.what.WhatNet` or :class:`~whatwhere.models.stn.STN28`),
    ``refine`` (the sub-cell head) and the fixed ``retina`` / ``colliculus`` (non-persistent
    buffers: not in the state dict).  The names of ``where.*`` and ``what.*`` match the Where and
    What models' state dicts, so trained weights load into them (:meth:`load_pathways`).
    """

    input_size = 128
    out_size = FOVEA
    code: PoloCode | None  # the POLO periphery's code, None with the retina's
    targets: torch.Tensor  # buffers
    scale: torch.Tensor

    def __init__(
        self,
        glimpses: int = 2,
        periphery: str = "retina",
        dim1: int = 1000,
        dim2: int = 1000,
        p_dropout: float = 0.5,
        temperature: float = 0.25,
        max_shift: float = 6.0,
        max_fixation: int | None = None,
        stop_confidence: float | None = None,
        test_glimpses: int | None = None,
        test_stop_confidence: float | None = None,
        freeze: list | tuple = (),
        end_to_end: bool = True,
        fovea: str = "what",
        retina: Retina | None = None,
        size: int = 128,
        pad: float = 0.5,
        mask: bool = True,
        policy_std: float = 0.0,
        test_inhibition: float = 0.0,
    ) -> None:
        super().__init__()
        config = RetinaConfig.for_size(size)  # ValueError naming size for a display it cannot serve
        if retina is not None and retina.N != size:
            raise ValueError(f"retina is for {retina.N}px displays but size is {size}")
        self.input_size = int(size)
        self.pad = float(pad)
        self.mask = bool(mask)
        if max_fixation is None:
            max_fixation = size // 2 - FOVEA // 2
        if int(glimpses) != glimpses or glimpses < 1:
            raise ValueError(f"glimpses must be an integer >= 1, got {glimpses!r}")
        if periphery not in PERIPHERIES:
            raise ValueError(f"periphery must be one of {PERIPHERIES}, got {periphery!r}")
        if periphery == "polo" and size != 128:
            raise ValueError(
                f"periphery 'polo' is the STN study's POLO-95 code of 128 px displays; size={size}: "
                "use periphery='retina' (its geometry scales with the display)"
            )
        if fovea not in FOVEAE:
            raise ValueError(f"fovea must be one of {FOVEAE}, got {fovea!r}")
        if not temperature > 0 or not max_shift >= 0 or max_fixation < 0:
            raise ValueError("temperature must be > 0, max_shift and max_fixation >= 0")
        if test_glimpses is not None and (int(test_glimpses) != test_glimpses or test_glimpses < 1):
            raise ValueError(f"test_glimpses must be an integer >= 1 or None, got {test_glimpses!r}")
        for key, value in (("stop_confidence", stop_confidence), ("test_stop_confidence", test_stop_confidence)):
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{key} must be in (0, 1] or None, got {value!r}")
        if not (test_inhibition >= 0 and test_inhibition < float("inf")):
            raise ValueError(f"test_inhibition must be a finite number of px >= 0, got {test_inhibition!r}")
        if not (policy_std >= 0 and policy_std < float("inf")):
            raise ValueError(f"policy_std must be a finite number of px >= 0, got {policy_std!r}")
        if policy_std > 0 and end_to_end:
            raise ValueError(
                "policy_std > 0 takes each glimpse at a sampled fixation, detached from the saccade "
                "(REINFORCE, not the sampler's gradient): set end_to_end=False"
            )
        self.glimpses = int(glimpses)
        self.periphery = periphery
        self.max_shift = float(max_shift)
        self.max_fixation = int(max_fixation)
        self.stop_confidence = stop_confidence
        self.test_glimpses = None if test_glimpses is None else int(test_glimpses)
        self.test_stop_confidence = test_stop_confidence
        self.test_inhibition = float(test_inhibition)
        self.end_to_end = bool(end_to_end)
        self.retina = retina if retina is not None else Retina(config)
        self.colliculus = Colliculus(self.retina)
        if periphery == "polo":
            from whatwhere.retina.polo import polo95

            self.code = polo95()
            n_codes = self.code.dim
        else:
            self.code = None
            n_codes = self.retina.n_codes
        n_cells = self.colliculus.n_cells
        self.where = WhereNet(n_codes, dim1, dim2, n_cells, p_dropout)
        nn.init.zeros_(self.where.fc3.weight)  # a flat map: the first fixation is the centre
        nn.init.zeros_(self.where.fc3.bias)
        self.refine = nn.Linear(dim2, 2)
        nn.init.zeros_(self.refine.weight)
        nn.init.zeros_(self.refine.bias)
        self.log_temperature = nn.Parameter(torch.tensor(float(temperature)).log())
        self.fovea = fovea
        self.what = WhatNet() if fovea == "what" else STN28()
        self.policy_std = float(policy_std)
        self.baseline: nn.Linear | None = None
        if self.policy_std > 0:  # the reward predicted from the collicular map (starts at 0: no reward expected)
            self.baseline = nn.Linear(n_cells, 1)
            nn.init.zeros_(self.baseline.weight)
            nn.init.zeros_(self.baseline.bias)
        self.register_buffer("targets", self.colliculus.saccade_targets().float(), persistent=False)
        self.register_buffer("scale", torch.tensor(FOVEA / float(self.input_size)), persistent=False)
        self.freeze = tuple(freeze)
        for name in self.freeze:
            try:
                module = self.get_submodule(name)
            except AttributeError:
                raise ValueError(f"freeze: no submodule {name!r}") from None
            for p in module.parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------ properties

    @property
    def bandwidth(self) -> int:
        """Numbers of the periphery read per glimpse (2880, or 768 with POLO)."""
        return self.where.fc1.in_features

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def load_pathways(self, what: nn.Module | None = None, where: nn.Module | None = None) -> None:
        """Start from trained pathways: a What model's weights into ``what``, a Where model's MLP
        (``net.*``) into ``where``.  The collicular read-out is then the Where model's own."""
        if what is not None:
            self.what.load_state_dict(what.state_dict())
        if where is not None:
            net = getattr(where, "net", where)
            self.where.load_state_dict(net.state_dict())

    # ------------------------------------------------------------------ one step

    def peripheral_code(self, images: torch.Tensor, fixations: torch.Tensor) -> torch.Tensor:
        """What the Where MLP reads at ``fixations``: ``(B, N, N), (B, 2) -> (B, bandwidth)``."""
        fix = fixations.detach().round().long()
        if bool((fix == 0).all()):
            view = images
        else:
            view = translate(images, fix, fill=self.pad)
            if self.mask:
                view = (view - 0.5) * mask_disk(images.shape[-1], images.device) + 0.5
        if self.code is not None:
            return self.code(view).reshape(len(view), -1)
        return self.retina.encode(view)

    def saccade(self, where_logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The continuous saccade ``(B, 2)`` px: soft-argmax of the map plus the sub-cell correction."""
        w = torch.softmax(where_logits / self.temperature, dim=-1)  # (B, n_cells)
        return w @ self.targets + self.max_shift * torch.tanh(self.refine(hidden))

    def _inhibited(
        self, where_logits: torch.Tensor, fix: torch.Tensor, visited: list[torch.Tensor], radius: float
    ) -> torch.Tensor:
        """``where_logits`` ``(B, n_cells)`` with the cells whose saccade from ``fix`` ``(B, 2)`` would
        land within ``radius`` px of a fixation in ``visited`` (each ``(B, 2)``) set to -inf (a display
        whose every cell is inhibited keeps its map)."""
        land = fix.detach()[:, None, :] + self.targets[None]  # (B, n_cells, 2)
        seen = torch.stack(visited, 1).detach().to(land.dtype)  # (B, V, 2)
        near = (torch.cdist(land, seen) < radius).any(-1)  # (B, n_cells)
        near &= ~near.all(dim=-1, keepdim=True)
        return where_logits.masked_fill(near, float("-inf"))

    def glimpse_at(self, images: torch.Tensor, fixations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 28×28 glimpse ``(B, 1, 28, 28)`` centred at ``fixations`` and its ``theta``."""
        N = images.shape[-1]
        # glimpse pixel (14, 14) lands on display pixel N//2 + fixation (see ops.glimpse_centre)
        u = (2 * (N // 2 + fixations) + 1) / N - 1 - self.scale * ((2 * (FOVEA // 2) + 1) / FOVEA - 1)
        theta = attention_theta(self.scale.to(u.dtype), u[:, 1], u[:, 0])
        return sample(as_nchw(images), theta, FOVEA, background=self.pad), theta

    # ------------------------------------------------------------------ the loop

    def forward_trace(self, images: torch.Tensor, glimpses: int | None = None) -> SaccadicTrace:
        """Run the loop on displays ``(B, N, N)`` (or ``(B, 1, N, N)``), N = ``size``; see :class:`SaccadicTrace`.

        ``glimpses`` overrides the number of glimpses (otherwise ``glimpses`` in train mode,
        ``test_glimpses`` in eval mode when set)."""
        x = as_nchw(images, self.input_size)[:, 0]
        test = not self.training
        if glimpses is not None:
            K = int(glimpses)
        else:
            K = self.test_glimpses if test and self.test_glimpses is not None else self.glimpses
        stop_at = self.test_stop_confidence if test and self.test_stop_confidence is not None else self.stop_confidence
        if K < 1:
            raise ValueError(f"glimpses must be >= 1, got {K}")
        B = x.shape[0]
        fix = torch.zeros(B, 2, dtype=x.dtype, device=x.device)
        fixes, steps, evid, maps = [fix], [], [], []
        acc = torch.zeros(B, 10, dtype=x.dtype, device=x.device)
        active = torch.ones(B, dtype=torch.bool, device=x.device)
        n = torch.zeros(B, dtype=torch.int64, device=x.device)
        theta_last = None
        policy = self.training and self.baseline is not None
        inhibit = self.test_inhibition if test else 0.0
        log_probs: list[torch.Tensor] = []
        baselines: list[torch.Tensor] = []
        for _ in range(K):
            code = self.peripheral_code(x, fix)
            h = self.where.hidden(code)
            logits_map = self.where.fc3(self.where.drop(h))
            if policy:  # REINFORCE (Williams 1992): sample around the saccade, glimpse at the detached sample
                assert self.baseline is not None
                mean = fix + self.saccade(logits_map, h)
                raw = mean.detach() + self.policy_std * torch.randn_like(mean)
                logp = torch.distributions.Normal(mean, self.policy_std).log_prob(raw).sum(-1)
                log_probs.append(logp * active.to(logp.dtype))  # a stopped display takes no decision
                baselines.append(self.baseline(logits_map.detach()).squeeze(-1))
                new = raw.clamp(-self.max_fixation, self.max_fixation)
            else:
                steer = self._inhibited(logits_map, fix, fixes, inhibit) if inhibit > 0 else logits_map
                new = (fix + self.saccade(steer, h)).clamp(-self.max_fixation, self.max_fixation)
            glimpse, theta = self.glimpse_at(x, new if self.end_to_end else new.detach())
            step = self.what(glimpse)
            acc_new = acc + F.log_softmax(step, dim=-1)
            if stop_at is not None:  # stopped displays keep their evidence and fixation
                keep = active[:, None]
                acc = torch.where(keep, acc_new, acc)
                new = torch.where(keep, new, fix)
                theta = theta if theta_last is None else torch.where(keep[:, :, None], theta, theta_last)
                n += active.long()
                active = active & (acc.softmax(-1).amax(-1) < stop_at)
            else:
                acc = acc_new
                n += 1
            fix, theta_last = new, theta
            fixes.append(fix)
            steps.append(step)
            evid.append(acc)
            maps.append(logits_map)
        assert theta_last is not None  # K >= 1 glimpses taken
        return SaccadicTrace(
            logits=acc,
            step_logits=torch.stack(steps, 1),
            evidence=torch.stack(evid, 1),
            where_logits=torch.stack(maps, 1),
            fixations=torch.stack(fixes, 1),
            theta=theta_last,
            n_glimpses=n,
            log_probs=torch.stack(log_probs, 1) if policy else None,
            baselines=torch.stack(baselines, 1) if policy else None,
        )

    def forward_with_theta(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Displays -> ``(logits (B, 10), theta (B, 2, 3) of the last glimpse)``."""
        tr = self.forward_trace(images)
        return tr.logits, tr.theta

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Displays ``(B, N, N)`` -> accumulated logits ``(B, 10)`` (log-posteriors up to a constant)."""
        return self.forward_trace(images).logits

    @torch.no_grad()
    def localise(self, images: torch.Tensor) -> torch.Tensor:
        """``theta`` ``(B, 2, 3)`` of the last glimpse (no gradients)."""
        return self.forward_trace(images).theta

    @torch.no_grad()
    def glimpse(self, images: torch.Tensor) -> torch.Tensor:
        """The last glimpse ``(B, 1, 28, 28)``."""
        tr = self.forward_trace(images)
        return self.glimpse_at(as_nchw(images, self.input_size)[:, 0], tr.fixations[:, -1])[0]

    @torch.no_grad()
    def localiser_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the Where MLP reads at the first fixation: ``(B, bandwidth)``."""
        x = as_nchw(images, self.input_size)[:, 0]
        return self.peripheral_code(x, torch.zeros(len(x), 2, device=x.device))
