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
