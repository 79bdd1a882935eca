"""Accuracy and median fixation error (per glimpse) of a saccadic-transformer run at 4.4, 22 and 40 px
(400 digits, contrast 0.7, preset dabane2021), before training (the shipped pathways) and after.
Usage: python results/saccadic/controlled-100-steps-diag.py RUN"""
import sys, torch
from whatwhere.engine.checkpoints import load
from whatwhere.models import create_model
from whatwhere.data import DisplaySet, mnist, preset
t = mnist.load('test')
where = load('where-c0.7')
def report(m, name):
    out = []
    for e in (4.44, 22.2, 40.0):
        d = DisplaySet(t.images, t.labels, preset('dabane2021', placement='eccentricity', eccentricity=e), seed=0).batch(0, 400)
        with torch.no_grad():
            tr = m.forward_trace(d.images)
            err = (tr.fixations[:, 1:] - d.offsets[:, None]).norm(dim=-1).median(0).values
            acc = (tr.logits.argmax(1) == d.labels).float().mean()
            steps = [(tr.step_logits[:, k].argmax(1) == d.labels).float().mean().item() for k in range(tr.step_logits.shape[1])]
        out.append(f"e{e:g}: acc {acc:.3f} steps {[round(s,3) for s in steps]} err {[round(x,1) for x in err.tolist()]}")
    print(name, " | ".join(out), "T", float(m.temperature))
m0 = create_model('saccadic_transformer', glimpses=2, fovea='stn28', retina=where.retina).eval()
m0.load_pathways(load('stn28'), where)
report(m0, "init ")
m1 = load(sys.argv[1], checkpoint=True).eval()
report(m1, "ckpt ")
