"""Published numbers that whatwhere is measured against (sources in each entry)."""

# Daucé, Albiges & Perrinet 2020, What "run A" (whatwhere-spec §2.4): radial profile of the map.
WHAT_RADIAL = ([0, 2, 4, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27],
               [0.804, 0.785, 0.756, 0.734, 0.674, 0.548, 0.467, 0.339, 0.253, 0.172, 0.140, 0.113, 0.113])
WHAT = {"central": 0.8036, "general": 0.3367, "best_sigma0": 0.9113,
        "source": "Daucé, Albiges & Perrinet 2020, J. Vision 20(8):22 (run A)"}

# Dabane, Perrinet & Daucé 2021/22, STN_28x28 final run (stn-spec §5.1).
STN28_RADIAL = ([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26],
                [0.871, 0.865, 0.849, 0.826, 0.790, 0.733, 0.648, 0.530, 0.382, 0.249, 0.172, 0.134, 0.123, 0.119])
STN28 = {"central": 0.8764, "general": 0.4261,
         "source": "Dabane, Perrinet & Daucé 2021/22 (int-lab-book stn_28x28.ipynb, 2021-05-22)"}

CHANCE = 0.1135  # the What net answers "1" on an empty fovea: 1135/10000 test digits are ones

PUBLISHED = {"what": WHAT, "stn28": STN28}
PUBLISHED_RADIAL = {"what": WHAT_RADIAL, "stn28": STN28_RADIAL}

# Daucé, Albiges & Perrinet 2020, Figs. 4 and 5B (whatwhere-spec §6.2, `accuracy_mean_linear` of
# 4_results_figure_contrast.ipynb): What/Where accuracy after 0..5 saccades (fixed count, no stopping
# rule), one Where network per contrast, 1000 MNIST-test trials per cell (about ±1.6 points),
# eccentricities in ascending order (the notebook stores them descending).
WHERE_ECCENTRICITY = {
    "eccentricities": (4.44, 8.89, 13.33, 17.78, 22.22, 26.67, 31.11, 35.56, 40.0),
    "n_per_cell": 1000,
    "source": "Daucé, Albiges & Perrinet 2020, J. Vision 20(8):22, Figs. 4-5 (whatwhere-spec §6.2)",
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
