"""The recurrent attention model (RAM) and the fully connected / convolutional baselines of
Mnih, Heess, Graves & Kavukcuoglu 2014, "Recurrent Models of Visual Attention" (NIPS).

RAM, for ``K`` glimpses on ``N×N`` displays:

* **glimpse sensor** ρ(x, l): ``scales`` square patches centred at ``l``, of sides ``g, 2g, 4g, ...``
  pixels, each resized to ``g×g`` (the largest sampled at one point per display pixel by the
  shared bilinear sampler :func:`whatwhere.ops.sampling.sample`; patch ``k`` is the centre of
  that grid, ``2^k × 2^k`` average-pooled: an area resize);
  outside the display reads ``pad`` (0: the black displays of the standard tasks);
* **glimpse network**: ``h_g = ReLU(W ρ)`` (128), ``h_l = ReLU(W l)`` (128),
  ``g = ReLU(W h_g + W h_l)`` (256);
* **core**: ``h_t = ReLU(W h_{t-1} + W g_t)`` (256 units, the paper's ReLU RNN for classification);
* **location network**: the mean ``μ_t = tanh(W h_t)`` of a Gaussian policy of fixed ``std``;
  locations ``l = (x, y)`` in [-1, 1]² (PyTorch's normalised coordinates: ``x`` columns,
  ``y`` rows, ±1 the outer display edges); a sampled location is clipped to [-1, 1];
* **baseline** ``b_t = W h_t`` (on the detached state: it does not shape the core);
* **classifier** on the last state ``h_K``.

The first glimpse is at the display centre (``l_0 = 0``: deterministic, the same for every
display); the policy then chooses the ``K − 1`` later locations.  In training mode the
locations are sampled (``forward_trace(..., sample=True)``), in eval mode the policy mean is used.
Sampling draws from ``generator`` when one is given, else from torch's default generator (which
the trainer seeds from the recipe's seed and saves in its checkpoints, as for dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from whatwhere.ops.sampling import as_nchw, attention_theta, sample

__all__ = ["RAM", "ConvNet", "FCNet", "RAMTrace", "default_scales"]


def default_scales(size: int) -> int:
    """The paper's number of glimpse scales: 3 at 60 px (and below), 4 above."""
    return 3 if size <= 60 else 4


def _check_size(size) -> int:
    if isinstance(size, bool) or int(size) != size or not (size == 28 or size >= 32):
        raise ValueError(f"size must be 28 or an integer >= 32 (display side, px), got {size}")
    return int(size)


@dataclass
class RAMTrace:
    """What a RAM run produced.

    Attributes:
        logits: ``(B, 10)`` of the classifier on the last state.
        log_probs: ``(B, K-1)`` log π(l_t | h_t) of the chosen locations (summed over x, y).
        baselines: ``(B, K-1)`` the baseline's reward prediction at each decision.
        locations: ``(B, K, 2)`` glimpse centres ``(x, y)`` in [-1, 1] (``[:, 0]`` the centre).
        means: ``(B, K-1, 2)`` the policy means.
    """

    logits: torch.Tensor
    log_probs: torch.Tensor
    baselines: torch.Tensor
    locations: torch.Tensor
    means: torch.Tensor


class RAM(nn.Module):
    """Recurrent attention model (module docstring).

    Args:
        size: display side N (60, 100, 128...).
        glimpses: K, the number of glimpses (>= 1).
        patch: g, the side of each glimpse patch (12 in the paper).
        scales: patches per glimpse (default :func:`default_scales`: 3 at 60 px, 4 at 100 px).
        std: the policy's fixed standard deviation, in normalised units (0.15: ±0.15·N/2 px).
        pad: value read outside the display (0 for black displays, 0.5 for MotionClouds ones).
        hidden: core units (256); glimpse_hidden: units of h_g and h_l (128).

    ``forward(images (B, N, N)) -> logits (B, 10)``; ``forward_trace`` also returns the policy's
    log-probabilities and the baselines (:class:`RAMTrace`) for the ``ram`` objective.
    """

    def __init__(
        self,
        size: int = 60,
        glimpses: int = 8,
        patch: int = 12,
        scales: int | None = None,
        std: float = 0.15,
        pad: float = 0.0,
        hidden: int = 256,
        glimpse_hidden: int = 128,
    ) -> None:
        super().__init__()
        size = _check_size(size)
        scales = default_scales(size) if scales is None else scales
        for name, v, lo in (
            ("glimpses", glimpses, 1),
            ("patch", patch, 2),
            ("scales", scales, 1),
            ("hidden", hidden, 1),
            ("glimpse_hidden", glimpse_hidden, 1),
        ):
            if isinstance(v, bool) or int(v) != v or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
        if scales > 8:
            raise ValueError(f"scales must be in [1, 8], got {scales}")
        if not 0 < std <= 1:
            raise ValueError(f"std (policy standard deviation, normalised units) must be in (0, 1], got {std}")
        self.input_size = size
        self.glimpses, self.patch, self.scales = int(glimpses), int(patch), int(scales)
        self.std, self.pad = float(std), float(pad)
        self.glimpse_patch = nn.Linear(self.scales * patch * patch, glimpse_hidden)
        self.glimpse_loc = nn.Linear(2, glimpse_hidden)
        self.glimpse_what = nn.Linear(glimpse_hidden, 2 * glimpse_hidden)
        self.glimpse_where = nn.Linear(glimpse_hidden, 2 * glimpse_hidden)
        self.core = nn.RNNCell(2 * glimpse_hidden, hidden, nonlinearity="relu")
        self.locator = nn.Linear(hidden, 2)
        self.baseline = nn.Linear(hidden, 1)
        self.classifier = nn.Linear(hidden, 10)

    def sense(self, images: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        """The glimpse sensor: ``(B, 1, N, N)``, ``(B, 2)`` in [-1, 1] -> ``(B, scales·g·g)``."""
        B, N, g = images.shape[0], self.input_size, self.patch
        big = g * 2 ** (self.scales - 1)  # pixels of the display the largest patch covers
        theta = attention_theta(images.new_tensor(big / N), loc[:, 0], loc[:, 1])
        full = sample(images, theta, big, background=self.pad)  # (B, 1, big, big), one sample per pixel
        views = []
        for k in range(self.scales):  # patch k is the central (g·2^k)² of the same grid, area-resized
            side = g * 2**k
            a = (big - side) // 2
            v = full[:, :, a : a + side, a : a + side]
            if k:
                v = nn.functional.avg_pool2d(v, 2**k)
            views.append(v.reshape(B, g * g))
        return torch.cat(views, 1)

    def glimpse(self, images: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        """The glimpse network: ``(B, 1, N, N)``, ``(B, 2)`` -> ``g_t`` ``(B, 256)``."""
        h_g = torch.relu(self.glimpse_patch(self.sense(images, loc)))
        h_l = torch.relu(self.glimpse_loc(loc))
        return torch.relu(self.glimpse_what(h_g) + self.glimpse_where(h_l))

    def forward_trace(
        self, images: torch.Tensor, *, sample: bool | None = None, generator: torch.Generator | None = None
    ) -> RAMTrace:
        """Run the K glimpses.

        Args:
            images: ``(B, N, N)`` or ``(B, 1, N, N)`` displays.
            sample: draw the locations from the policy (default: ``self.training``); False uses
                the mean.
            generator: where the policy noise comes from (default torch's default generator).
        """
        x = as_nchw(images, self.input_size)
        sample = self.training if sample is None else sample
        B = x.shape[0]
        loc = x.new_zeros(B, 2)  # the first glimpse at the centre
        h = x.new_zeros(B, self.core.hidden_size)
        locs, log_probs, baselines, means = [loc], [], [], []
        for t in range(self.glimpses):
            h = self.core(self.glimpse(x, loc), h)
            if t == self.glimpses - 1:
                break
            mu = torch.tanh(self.locator(h))
            if sample:
                eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                raw = mu.detach() + self.std * eps
                log_probs.append(torch.distributions.Normal(mu, self.std).log_prob(raw).sum(1))
                loc = raw.clamp(-1, 1)
            else:
                log_probs.append(mu.new_zeros(B))
                loc = mu
            baselines.append(self.baseline(h.detach()).squeeze(1))
            means.append(mu)
            locs.append(loc)
        empty = x.new_zeros(B, 0)
        return RAMTrace(
            logits=self.classifier(h),
            log_probs=torch.stack(log_probs, 1) if log_probs else empty,
            baselines=torch.stack(baselines, 1) if baselines else empty,
            locations=torch.stack(locs, 1),
            means=torch.stack(means, 1) if means else x.new_zeros(B, 0, 2),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` -> logits ``(B, 10)`` (policy samples in training mode, means in eval mode)."""
        return self.forward_trace(images).logits


class FCNet(nn.Module):
    """The RAM paper's fully connected baseline ("FC, 2 layers"): ``N²`` -> hidden... -> 10, ReLU.

    Args:
        size: display side N.
        hidden: the hidden layer widths (``[256, 256]`` or ``[64, 64]`` in the paper's tables).

    ``forward(images (B, N, N)) -> logits (B, 10)``.
    """

    def __init__(self, size: int = 60, hidden: list[int] | tuple[int, ...] = (256, 256)) -> None:
        super().__init__()
        self.input_size = _check_size(size)
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        if not hidden or any(isinstance(h, bool) or int(h) != h or h < 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty list of positive integers, got {hidden}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = self.input_size**2
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        layers.append(nn.Linear(width, 10))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` or ``(B, 1, N, N)`` -> logits ``(B, 10)``."""
        return self.net(as_nchw(images, self.input_size))


class ConvNet(nn.Module):
    """The RAM paper's convolutional baseline ("Convolutional, 2 layers"), as we recall its text:
    one convolutional layer of ``filters`` (8) ``kernel×kernel`` (10×10) filters at stride
    ``stride`` (5), ReLU, a fully connected layer of ``hidden`` (256) ReLU units, then 10 logits.
    (Not checked against the paper here: the sizes are arguments.)

    At 60 px: 8 × 11 × 11 = 968 features; at 100 px: 8 × 19 × 19 = 2,888.
    ``forward(images (B, N, N)) -> logits (B, 10)``.
    """

    def __init__(self, size: int = 60, filters: int = 8, kernel: int = 10, stride: int = 5, hidden: int = 256) -> None:
        super().__init__()
        self.input_size = _check_size(size)
        for name, v in (("filters", filters), ("kernel", kernel), ("stride", stride), ("hidden", hidden)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v}")
        if kernel > self.input_size:
            raise ValueError(f"kernel must be <= size ({self.input_size}), got {kernel}")
        side = (self.input_size - kernel) // stride + 1
        self.features = nn.Sequential(nn.Conv2d(1, filters, kernel, stride=stride), nn.ReLU(), nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(filters * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, N, N)`` or ``(B, 1, N, N)`` -> logits ``(B, 10)``."""
        return self.classifier(self.features(as_nchw(images, self.input_size)))
