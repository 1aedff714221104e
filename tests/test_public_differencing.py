"""Issue 13: the hub's public view must not give a wearer's arousal away when they leave, pause or join.

Exact means over at least K_MIN people let an observer who sees the count change recover the leaver's number
(n A(n) - (n - 1) A(n - 1)). This goes through the hub's one seam, `release_public_view`, on a simulated cove of 8
in dialogue; the full attack (every scenario, coves of 5, 8 and 20, the exact mechanism as a control) is in
test_privacy_attack.py.
"""

import numpy as np
import pytest
from helpers import differencing as d


@pytest.fixture(scope="module")
def coves_of_8():
    return [d.simulate_cove(9, "dialogue", seed) for seed in (3, 4)]


def test_the_public_view_gives_no_better_than_a_guess_of_a_leaver_or_joiner(coves_of_8):
    rng = np.random.default_rng(5)
    results = [d.attack(change, d.seam_stream(change, bytes([i]) * 16))
               for i, change in enumerate(c for cove in coves_of_8 for c in d.changes(cove, 8, rng))]
    attacker, guess = d.best_attack(results)
    assert len(results) == 24 and guess > 0.03
    assert attacker >= 0.8 * guess, f"attacker MAE {attacker:.4f} against {guess:.4f} for guessing the mean"
