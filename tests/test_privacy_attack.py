"""The differencing attack against the release mechanism: coves of 5, 8 and 20 in every scenario, wearers joining and
leaving at many times, the strongest attacker in tests/helpers/differencing.py. Goal: its error is at least 0.8 x the
error of guessing the mean of the others. The same attacker against exact means must still recover the wearer's
number (the control that shows the test has teeth). And the wall stays alive: the released cove arousal tracks the
true mean over a confrontation session.
"""

import pytest
from helpers import differencing as d
from lifepalette.sim.scenarios import SCENARIO_NAMES

SIZES = (5, 8, 20)


@pytest.fixture(scope="module")
def coves():
    return {size: [d.simulate_cove(size + 1, scenario, 7 + i) for i, scenario in enumerate(SCENARIO_NAMES)]
            for size in SIZES}


@pytest.mark.parametrize("size", SIZES)
def test_the_attacker_does_no_better_than_guessing_the_mean(coves, size):
    attacker, guess = d.attack_size(coves[size], size, seed=size, noisy=True)
    assert guess > 0.03
    assert attacker >= 0.8 * guess, f"cove of {size}: attacker MAE {attacker:.4f}, guessing {guess:.4f}"


@pytest.mark.parametrize("size", SIZES)
def test_the_same_attacker_recovers_the_wearer_from_exact_means(coves, size):
    attacker, guess = d.attack_size(coves[size], size, seed=size, noisy=False)
    assert attacker <= 0.3 * guess, f"cove of {size}: attacker MAE {attacker:.4f}, guessing {guess:.4f}"


@pytest.mark.parametrize("size", SIZES)
def test_the_released_cove_arousal_tracks_the_true_mean_in_a_confrontation(size):
    cove = d.simulate_cove(size, "confrontation", 11, seconds=1800)
    spearman, error = d.tracking(cove, seed=size)
    assert spearman >= 0.8, f"cove of {size}: Spearman {spearman:.3f}"
    assert error <= {5: 0.06, 8: 0.05, 20: 0.03}[size], f"cove of {size}: mean absolute error {error:.4f}"
