"""Random-stream tags of the gate: every random draw of a gate run is ``np.random.default_rng([seed, TAG])``
with the run's seed and one of these tags, so that no two draws share a stream and each can be
repeated alone (the gate's cache keys hold the seed, never the order of draws)."""

import numpy as np

TRAINING_WINDOWS = 11   # training-split windows the judged boxes are compared with
HELDOUT_WINDOWS = 13    # held-out windows judged as the control column
SEEDED_BOUNDARY = 17    # training windows that seed the Markov boundary test's canvases
MD_TRAINING_SEED = 19   # the training window that seeds the reference MD run
GIVEN_WINDOWS = 23      # windows cut from given boxes (map-suite validate --boxes)
GIVEN_MD_SEED = 29      # the window of the given boxes that seeds their MD run
BOOTSTRAP = 31          # resamples of the bootstrap null (validation.gate.significance)
NULL_POOL = 37          # held-out windows of the bootstrap pool


def rng(seed: int, tag: int):
    """The generator of stream `tag` for `seed`."""
    return np.random.default_rng([seed, tag])
