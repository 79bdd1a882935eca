"""Where the shipped saccadic transformer's glimpses end when it misses a 40-px digit.

On the benchmark's 40-px displays (preset dabane2021, clutter 0.75, seed 0, the first DIGITS digits
of MNIST-test, contrasts 0.7 and 0.3), with the shipped rule (up to 6 glimpses, stop at 0.95):
the distance of the last fixation from the digit, binned, with the accuracy in each bin; for the
"far misses" (last fixation >= 30 px from the digit), how many glimpses were taken, how close any
fixation came, and the azimuth error (degrees between the direction of the digit and that of the
first collicular map's argmax cell, seen from the centre), against the displays where it was found.

    OMP_NUM_THREADS=1 python results/saccadic-limits/misses.py --digits 1000 > results/saccadic-limits/misses.txt
"""

import argparse

import torch

import whatwhere
from whatwhere.data import DisplaySet, mnist, preset

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--digits", type=int, default=1000)
args = p.parse_args()
torch.set_num_threads(1)
test = mnist.load("test")
m = whatwhere.load("saccadic_transformer-retina").eval()  # shipped as saccadic_transformer until 2026-12-07


def azimuth_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|angle| in degrees between the directions of (di, dj) vectors a and b, (B,)."""
    d = torch.atan2(a[:, 0], a[:, 1]) - torch.atan2(b[:, 0], b[:, 1])
    return torch.rad2deg(torch.atan2(torch.sin(d), torch.cos(d))).abs()


print(f"shipped saccadic_transformer, 40 px, {args.digits} digits per contrast, torch {torch.__version__}")
for c in (0.7, 0.3):
    cfg = preset("dabane2021", 128).replace(contrast=c, placement="eccentricity", eccentricity=40.0, azimuth=None)
    ds = DisplaySet(test.images, test.labels, cfg, seed=0, shuffle=True)
    cols = []
    with torch.no_grad():
        for d in ds.epoch(0, 250, limit=args.digits):
            tr = m.forward_trace(d.images)
            off = d.offsets.float()
            last = tr.fixations.gather(1, tr.n_glimpses.view(-1, 1, 1).expand(-1, 1, 2))[:, 0]
            cell = m.targets[tr.where_logits[:, 0].argmax(-1)]
            cols.append(torch.stack([
                (last - off).norm(dim=-1),
                (tr.logits.argmax(-1) == d.labels).float(),
                tr.n_glimpses.float(),
                (tr.fixations[:, 1:] - off[:, None]).norm(dim=-1).min(1).values,
                azimuth_error(cell, off),
            ], 1))
    r = torch.cat(cols)
    err, ok, n, closest, az = r.unbind(1)
    print(f"\ncontrast {c}: accuracy {ok.mean():.3f}")
    print("  last fixation's distance from the digit | share of displays | accuracy")
    edges = [0, 5, 10, 14, 20, 30, 1000]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (err >= lo) & (err < hi)
        acc = f"{ok[sel].mean():.3f}" if sel.any() else "-"
        print(f"  {lo:>3} to {hi if hi < 1000 else 'inf':>3} px | {sel.float().mean():.3f} | {acc}")
    far = err >= 30
    print(f"  far misses (>= 30 px): {int(far.sum())}; glimpses taken mean {n[far].mean():.2f}; "
          f"closest fixation to the digit, median {closest[far].median():.1f} px")
    for name, sel in (("far misses", far), ("found (< 30 px)", ~far)):
        h = torch.histc(az[sel], bins=6, min=0, max=180).int().tolist()
        print(f"  azimuth error of the first map's argmax cell, {name}, 0-30 ... 150-180 degrees: {h}")

# Control: the first collicular map of the same displays with the digit nearly invisible (contrast
# 0.01: the same clutter pattern, up to the display's min-max normalisation), and the difference
# between the two maps (the digit's own contribution): where does each one's argmax cell point?
print("\nthe first map on 500 displays at 40 px: argmax cell's azimuth error, 0-30 ... 150-180 degrees")
maps = {}
for c in (0.7, 0.01):
    cfg = preset("dabane2021", 128).replace(contrast=c, placement="eccentricity", eccentricity=40.0, azimuth=None)
    d = DisplaySet(test.images, test.labels, cfg, seed=0, shuffle=True).batch(0, 500)
    x = d.images if d.images.dim() == 3 else d.images[:, 0]
    with torch.no_grad():
        maps[c] = m.where.fc3(m.where.hidden(m.peripheral_code(x, torch.zeros(len(x), 2))))
    offsets = d.offsets.float()
for name, logits in (("contrast 0.7", maps[0.7]), ("contrast 0.01 (clutter only)", maps[0.01]),
                     ("their difference (the digit's part)", maps[0.7] - maps[0.01])):
    cell = m.targets[logits.argmax(-1)]
    print(f"  {name}: {torch.histc(azimuth_error(cell, offsets), bins=6, min=0, max=180).int().tolist()}")
