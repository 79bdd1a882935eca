"""Published numbers that whatwhere is measured against (sources in each entry)."""

from typing import Any

# Daucé, Albiges & Perrinet 2020, What "run A" (the paper's Fig. 2 and the original notebooks): radial profile of
# the map.
WHAT_RADIAL = (
    [0, 2, 4, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27],
    [0.804, 0.785, 0.756, 0.734, 0.674, 0.548, 0.467, 0.339, 0.253, 0.172, 0.140, 0.113, 0.113],
)
WHAT = {
    "central": 0.8036,
    "general": 0.3367,
    "best_sigma0": 0.9113,
    "source": "Daucé, Albiges & Perrinet 2020, J. Vision 20(8):22 (run A)",
}

# Dabane, Perrinet & Daucé 2021/22, STN_28x28 final run (int-lab-book stn_28x28.ipynb).
STN28_RADIAL = (
    [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26],
    [0.871, 0.865, 0.849, 0.826, 0.790, 0.733, 0.648, 0.530, 0.382, 0.249, 0.172, 0.134, 0.123, 0.119],
)
STN28 = {
    "central": 0.8764,
    "general": 0.4261,
    "source": "Dabane, Perrinet & Daucé 2021/22 (int-lab-book stn_28x28.ipynb, 2021-05-22)",
}

from whatwhere.eval.metrics import CHANCE  # noqa: E402,F401  (re-exported)

PUBLISHED: dict[str, dict[str, Any]] = {"what": WHAT, "stn28": STN28}
PUBLISHED_RADIAL = {"what": WHAT_RADIAL, "stn28": STN28_RADIAL}

# Daucé, Albiges & Perrinet 2020, Figs. 4 and 5B (`accuracy_mean_linear` of
# 4_results_figure_contrast.ipynb): What/Where accuracy after 0..5 saccades (fixed count, no stopping
# rule), one Where network per contrast, 1000 MNIST-test trials per cell (about ±1.6 points),
# eccentricities in ascending order (the notebook stores them descending).
WHERE_ECCENTRICITY: dict[str, Any] = {
    "eccentricities": (4.44, 8.89, 13.33, 17.78, 22.22, 26.67, 31.11, 35.56, 40.0),
    "n_per_cell": 1000,
    "source": "Daucé, Albiges & Perrinet 2020, J. Vision 20(8):22, Figs. 4-5",
    "accuracy": {  # contrast -> saccades -> accuracy per eccentricity
        0.7: {
            0: (0.899, 0.756, 0.532, 0.287, 0.159, 0.104, 0.102, 0.112, 0.111),
            1: (0.900, 0.879, 0.859, 0.782, 0.777, 0.724, 0.714, 0.672, 0.628),
            2: (0.872, 0.879, 0.879, 0.860, 0.836, 0.824, 0.786, 0.765, 0.703),
            3: (0.875, 0.890, 0.854, 0.857, 0.838, 0.830, 0.809, 0.781, 0.729),
            4: (0.877, 0.884, 0.876, 0.869, 0.856, 0.826, 0.814, 0.777, 0.714),
            5: (0.886, 0.866, 0.872, 0.854, 0.842, 0.833, 0.823, 0.800, 0.740),
        },
        0.5: {
            0: (0.823, 0.699, 0.478, 0.306, 0.151, 0.108, 0.127, 0.105, 0.111),
            1: (0.833, 0.811, 0.762, 0.717, 0.660, 0.625, 0.566, 0.537, 0.422),
            2: (0.804, 0.799, 0.780, 0.776, 0.728, 0.678, 0.649, 0.608, 0.493),
            3: (0.792, 0.789, 0.790, 0.765, 0.715, 0.706, 0.657, 0.607, 0.502),
            4: (0.789, 0.792, 0.791, 0.747, 0.719, 0.721, 0.649, 0.631, 0.526),
            5: (0.805, 0.780, 0.787, 0.752, 0.737, 0.686, 0.651, 0.602, 0.523),
        },
        0.3: {
            0: (0.528, 0.455, 0.342, 0.182, 0.131, 0.103, 0.103, 0.115, 0.093),
            1: (0.538, 0.512, 0.466, 0.397, 0.368, 0.318, 0.252, 0.234, 0.164),
            2: (0.538, 0.501, 0.470, 0.436, 0.411, 0.325, 0.341, 0.258, 0.197),
            3: (0.506, 0.509, 0.453, 0.438, 0.416, 0.357, 0.323, 0.261, 0.210),
            4: (0.484, 0.498, 0.453, 0.444, 0.359, 0.330, 0.326, 0.282, 0.224),
            5: (0.476, 0.470, 0.462, 0.404, 0.347, 0.341, 0.319, 0.288, 0.204),
        },
    },
}

# Dabane, Perrinet & Daucé 2021/22, the 128×128 benchmark (int-lab-book `benchmark.ipynb`):
# accuracy on the 10k MNIST-test set per eccentricity (same 9 as above), contrast fixed
# (flexible=False), clutter 0.75.  Keys are whatwhere's registry names.
STN_BENCHMARK: dict[str, Any] = {
    "source": "Dabane, Perrinet & Daucé 2021/22, int-lab-book benchmark.ipynb",
    "n_per_cell": 10000,
    "accuracy": {  # model -> contrast -> accuracy per eccentricity
        "stn128": {
            0.7: (0.9715, 0.9657, 0.9628, 0.9650, 0.9623, 0.9621, 0.9572, 0.9548, 0.9558),
            0.5: (0.9548, 0.9553, 0.9539, 0.9533, 0.9509, 0.9433, 0.9483, 0.9424, 0.9433),
            0.3: (0.7656, 0.7598, 0.7455, 0.7433, 0.7367, 0.7242, 0.7422, 0.7437, 0.6892),
        },
        "atn": {
            0.7: (0.9606, 0.9509, 0.9417, 0.9324, 0.9224, 0.9218, 0.9147, 0.9335, 0.9456),
            0.5: (0.9314, 0.9316, 0.9248, 0.9334, 0.9258, 0.9152, 0.9177, 0.9179, 0.9264),
            0.3: (0.7122, 0.6868, 0.6760, 0.6779, 0.6871, 0.6744, 0.6549, 0.6768, 0.6111),
        },
        "polo_atn": {
            0.7: (0.8654, 0.8457, 0.8002, 0.7282, 0.6109, 0.4977, 0.4231, 0.3836, 0.3362),
            0.5: (0.7733, 0.7443, 0.6974, 0.6212, 0.5517, 0.4665, 0.3947, 0.3196, 0.2394),
            0.3: (0.4094, 0.3913, 0.3405, 0.2858, 0.2480, 0.2055, 0.1752, 0.1487, 0.1151),
        },
        "polo_atn85": {
            0.7: (0.8953, 0.8846, 0.8598, 0.7962, 0.6699, 0.5489, 0.4713, 0.4203, 0.4030),
            0.5: (0.8283, 0.8176, 0.7880, 0.7352, 0.6554, 0.5785, 0.4856, 0.4190, 0.3427),
            0.3: (0.5035, 0.4950, 0.4648, 0.4122, 0.3502, 0.2950, 0.2384, 0.1948, 0.1378),
        },
        "conv_polo_atn": {
            0.7: (0.9493, 0.9373, 0.9318, 0.9204, 0.9111, 0.8886, 0.8320, 0.6749, 0.5789),
            0.5: (0.8764, 0.8544, 0.8550, 0.8395, 0.8202, 0.7456, 0.5869, 0.3960, 0.2865),
            0.3: (0.4882, 0.4286, 0.3916, 0.3536, 0.3222, 0.2466, 0.1760, 0.1289, 0.1176),
        },
    },
}


def published_curve(key: str, contrast: float, saccades, eccentricities) -> "list[float] | None":
    """Published accuracy of a model at ``contrast`` on the given eccentricities (NaN where the
    study has no value), or None if nothing is published for it.

    ``key``: a registry name of :data:`STN_BENCHMARK` (``saccades`` None) or ``"whatwhere"``
    (``saccades`` 0..5, :data:`WHERE_ECCENTRICITY`).
    """
    if key == "whatwhere":
        table, pe = WHERE_ECCENTRICITY["accuracy"], WHERE_ECCENTRICITY["eccentricities"]
        rows = next((t for c, t in table.items() if abs(c - contrast) < 1e-9), None)
        row = None if rows is None or not isinstance(saccades, int) else rows.get(saccades)
    else:
        pe = WHERE_ECCENTRICITY["eccentricities"]
        rows = STN_BENCHMARK["accuracy"].get(key)
        row = (
            None
            if rows is None or saccades is not None
            else next((t for c, t in rows.items() if abs(c - contrast) < 1e-9), None)
        )
    if row is None:
        return None
    out = []
    for e in eccentricities:
        k = next((i for i, p in enumerate(pe) if abs(p - e) < 0.01), None)
        out.append(float("nan") if k is None else float(row[k]))
    return out if any(v == v for v in out) else None


# Daucé, Albiges & Perrinet 2020, the parameter scan (Fig. "params"; notebook 6_results_parameters.ipynb):
# accuracy after one saccade on displays of the network's own training distribution, one network
# per value, trained with the notebooks' defaults of the time (clutter 0.75, contrast 0.7, radius
# sigma 30 clipped at 34 px, Adam 5e-3 with batch-norm, no dropout); the repetitions of the
# notebook were not independent (their spread is 0 in most cells).
WHERE_SCAN: dict[str, Any] = {
    "source": "Daucé, Albiges & Perrinet 2020, parameter scan (6_results_parameters.ipynb)",
    "default": 0.545,
    "scans": {  # recipe key -> {value: accuracy}
        "display.clutter": {
            0.375: 0.724,
            0.472: 0.704,
            0.530: 0.676,
            0.595: 0.646,
            0.668: 0.588,
            0.75: 0.545,
            0.842: 0.449,
            0.945: 0.395,
            1.061: 0.333,
            1.191: 0.294,
            1.5: 0.216,
        },
        "display.contrast": {
            0.35: 0.233,
            0.441: 0.283,
            0.495: 0.324,
            0.556: 0.370,
            0.624: 0.440,
            0.7: 0.545,
            0.786: 0.601,
            0.882: 0.648,
            0.99: 0.691,
        },
        "display.sigma": {
            15: 0.621,
            18: 0.598,
            21: 0.583,
            23: 0.570,
            26: 0.559,
            30: 0.545,
            33: 0.526,
            37: 0.505,
            42: 0.480,
            47: 0.462,
            60: 0.415,
        },
        "display.sf_0": {
            0.05: 0.404,
            0.063: 0.392,
            0.071: 0.398,
            0.079: 0.424,
            0.089: 0.468,
            0.1: 0.545,
            0.112: 0.596,
            0.126: 0.655,
            0.141: 0.721,
            0.159: 0.738,
            0.2: 0.747,
        },
        "display.B_sf": {
            0.05: 0.622,
            0.063: 0.592,
            0.071: 0.584,
            0.079: 0.575,
            0.089: 0.567,
            0.1: 0.545,
            0.112: 0.503,
            0.126: 0.487,
            0.141: 0.472,
            0.159: 0.462,
            0.2: 0.439,
        },
        "model_args.dim1": {500: 0.544, 629: 0.543, 793: 0.541, 1000: 0.545, 1259: 0.544, 1587: 0.534, 2000: 0.524},
        "model_args.dim2": {500: 0.535, 629: 0.547, 793: 0.548, 1000: 0.545, 1259: 0.517, 1587: 0.532, 2000: 0.518},
        "model_args.p_dropout": {0.0: 0.545, 0.167: 0.516, 0.333: 0.493, 0.5: 0.433, 0.667: 0.337, 0.833: 0.247},
    },
}


def where_scan_published(key: str | None, x=None) -> tuple[float, bool] | None:
    """The published scan accuracy of ``key`` (a recipe key of :data:`WHERE_SCAN`) at ``x``, or of the
    default point (``key`` None): ``(accuracy, interpolated)``.  A value the paper did not scan is
    interpolated linearly between its two neighbours (``interpolated`` True); None outside the
    published range or for a key it did not scan."""
    if key is None:
        return float(WHERE_SCAN["default"]), False
    table = WHERE_SCAN["scans"].get(key)
    if not table or x is None:
        return None
    xs = sorted(table)
    x = float(x)
    for k in xs:
        if abs(k - x) <= 1e-9 * max(1.0, abs(x)):
            return float(table[k]), False
    for lo, hi in zip(xs, xs[1:], strict=False):
        if lo < x < hi:
            t = (x - lo) / (hi - lo)
            return float(table[lo] + t * (table[hi] - table[lo])), True
    return None


# Mnih, Heess, Graves & Kavukcuoglu 2014, "Recurrent Models of Visual Attention": test error (%) of
# every row of tables 1 and 2.  The paper exists in two printings whose tables differ in every cell:
# arXiv:1406.6247v1 (24 June 2014) and the NIPS 27 proceedings (pp. 2204-2212), both read from the
# PDFs.  Only the proceedings have the 28x28 convolutional baseline and the "8 random glimpses" rows;
# only v1 has "1 random glimpse" (None: the row is not in that printing).
RAM_TABLES: dict[str, dict[str, dict[str, float | None]]] = {
    "nips2014": {  # NIPS 27 proceedings
        "mnist28": {
            "fc256": 1.69,
            "conv": 1.21,
            "ram2": 3.79,
            "ram3": 1.51,
            "ram4": 1.54,
            "ram5": 1.34,
            "ram6": 1.12,
            "ram7": 1.07,
            "random1": None,
        },
        "translated60": {"fc64": 6.42, "fc256": 2.63, "conv": 1.62, "ram4": 1.54, "ram6": 1.22, "ram8": 1.20},
        "cluttered60": {
            "fc64": 28.58,
            "fc256": 11.96,
            "conv": 8.09,
            "ram4": 4.96,
            "ram6": 4.08,
            "ram8": 4.04,
            "random8": 14.4,
        },
        "cluttered100": {"conv": 14.35, "ram4": 9.41, "ram6": 8.31, "ram8": 8.11, "random8": 28.4},
    },
    "arxiv_v1": {  # arXiv:1406.6247v1
        "mnist28": {
            "fc256": 1.35,
            "conv": None,
            "ram2": 6.27,
            "ram3": 2.7,
            "ram4": 1.73,
            "ram5": 1.55,
            "ram6": 1.29,
            "ram7": 1.47,
            "random1": 42.85,
        },
        "translated60": {"fc64": 7.56, "fc256": 3.7, "conv": 2.31, "ram4": 2.29, "ram6": 1.86, "ram8": 1.84},
        "cluttered60": {
            "fc64": 28.96,
            "fc256": 13.2,
            "conv": 7.83,
            "ram4": 7.1,
            "ram6": 5.88,
            "ram8": 5.23,
            "random8": None,
        },
        "cluttered100": {"conv": 16.51, "ram4": 14.95, "ram6": 11.58, "ram8": 10.83, "random8": None},
    },
}

# Jaderberg, Simonyan, Zisserman & Kavukcuoglu 2015, "Spatial Transformer Networks" (NIPS 28),
# sect. 4.1 and table 1 (left, column TC): test error (%) on 60x60 translated cluttered MNIST.
STN_TC = {"fcn": 13.2, "cnn": 3.5, "st_fcn": 2.0, "st_cnn": 1.7}


def _frac(percent: float | None) -> float:
    """A published error in percent as a fraction (rounded: no binary noise in reports)."""
    assert percent is not None
    return round(percent / 100, 6)


# The published test error of each packaged recipe's model on its standard task, as a fraction.
# RAM rows: the NIPS 27 proceedings (the published version; arXiv v1's value of the same row in
# RAM_TABLES["arxiv_v1"]), at the recipe's glimpse count (8; FC 2 x 256; conv 8 filters 10x10).
STANDARD_TASKS: dict[str, Any] = {
    "source": "Mnih, Heess, Graves & Kavukcuoglu 2014 (NIPS 27 proceedings), tables 1b and 2; "
    "Jaderberg, Simonyan, Zisserman & Kavukcuoglu 2015 (NIPS 28), sect. 4.1",
    "error": {  # recipe -> published test error
        "ram60-translated": _frac(RAM_TABLES["nips2014"]["translated60"]["ram8"]),  # table 1b
        "ram60-cluttered": _frac(RAM_TABLES["nips2014"]["cluttered60"]["ram8"]),  # table 2a
        "fc60-cluttered": _frac(RAM_TABLES["nips2014"]["cluttered60"]["fc256"]),  # table 2a
        "conv60-cluttered": _frac(RAM_TABLES["nips2014"]["cluttered60"]["conv"]),  # table 2a
        "ram100-cluttered": _frac(RAM_TABLES["nips2014"]["cluttered100"]["ram8"]),  # table 2b, 4 scales
        "fcn-tc": _frac(STN_TC["fcn"]),
        "cnn-tc": _frac(STN_TC["cnn"]),
        "st-fcn-tc": _frac(STN_TC["st_fcn"]),
        "st-cnn-tc": _frac(STN_TC["st_cnn"]),
    },
}
