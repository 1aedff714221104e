"""The release mechanism and its accountant: seeded, held between epochs, k >= 5 at once, budget kept by OpenDP."""

import math

import pytest
from lifepalette.hub.views import public_release, released_colour
from lifepalette.privacy import K_MIN
from lifepalette.privacy import release as rel
from lifepalette.privacy.budget import SessionBudget, epsilon_of, release_rho
from lifepalette.privacy.release import CoveTruth, GroupTruth, PublicRelease


def truth(n: int, arousal: float = 0.4, synchrony: float | None = 0.3, groups=()) -> CoveTruth:
    return CoveTruth(frozenset(range(n)), arousal, synchrony, n, 0.5, tuple(groups))


def run(release: PublicRelease, seconds: int, n: int = 8) -> list:
    return [release.step(float(t), truth(n)).to_json() for t in range(seconds)]


def test_a_seed_fixes_every_release_and_different_seeds_differ():
    assert run(public_release(7), 120) == run(public_release(7), 120)
    assert run(public_release(7), 120) != run(public_release(8), 120)


def test_numbers_change_only_at_epochs_a_random_cadence_apart():
    release, epochs, views = public_release(1), [], []
    for t in range(600):
        views.append(release.step(float(t), truth(8)).to_json())
        epochs.append(release.epochs)
    changes = [t for t in range(1, 600) if epochs[t] != epochs[t - 1]]
    assert all(views[t]["arousal"] == views[t - 1]["arousal"] for t in range(1, 600) if t not in changes)
    gaps = [b - a for a, b in zip(changes, changes[1:], strict=False)]
    assert len(changes) >= 600 / rel.CADENCE_S / 2
    assert min(gaps) >= rel.CADENCE_S * 0.5 - 1 and max(gaps) <= rel.CADENCE_S * 1.5 + 1
    assert len(set(gaps)) > 3  # not a fixed clock an observer can align to


def test_noise_is_calibrated_to_one_persons_sensitivity():
    release = public_release(3)
    samples = []
    for t in range(0, 40_000, 1):
        view = release.step(float(t), truth(10, arousal=0.5, synchrony=None))
        if t == 0 or view.arousal != samples[-1]:
            samples.append(view.arousal)
        if len(samples) >= 400:
            break
    # released = exponential average of mean + N(0, NOISE / n): its spread is NOISE / n * sqrt(a / (2 - a))
    a = rel.SMOOTHING
    expected = rel.NOISE / 10 * math.sqrt(a / (2 - a))
    spread = (sum((s - 0.5) ** 2 for s in samples[20:]) / len(samples[20:])) ** 0.5
    assert 0.7 * expected < spread < 1.3 * expected


def test_below_k_the_view_is_withheld_at_once_and_the_next_cohort_starts_fresh():
    release = public_release(2)
    assert release.step(0.0, truth(K_MIN)).ready
    withheld = release.step(1.0, truth(K_MIN - 1))
    assert not withheld.ready and withheld.arousal is None and withheld.contributors == K_MIN - 1
    assert release.step(2.0, truth(K_MIN)).arousal is not None  # released at once, not held from before


def test_a_membership_change_shows_only_at_the_next_epoch():
    release = public_release(4)
    first = release.step(0.0, truth(8))
    during = release.step(1.0, truth(9, arousal=0.9))
    assert during.contributors == 8 and during.arousal == first.arousal


def test_groups_below_k_are_not_released_and_group_colours_come_from_released_numbers():
    release = public_release(5)
    view = release.step(0.0, truth(12, groups=[GroupTruth(6, 0.7, 0.2, 6), GroupTruth(4, 0.1, 0.5, 4)]))
    assert [g.contributors for g in view.groups] == [6]
    g = view.groups[0]
    assert g.rgb == released_colour(g.arousal, g.synchrony, ()).rgb


def test_the_budget_is_what_opendp_reports_and_the_filter_stops_new_numbers():
    release = PublicRelease(released_colour, seed=1, budget_rho=3 * release_rho(rel.NOISE, 2) + 1e-9)
    views, epochs = [], []
    for t in range(0, 200):
        views.append(release.step(float(t), truth(8)))
        epochs.append(release.epochs)
    assert release.budget.releases == 3 and release.budget.exhausted
    assert release.budget.spent == pytest.approx(3 * release_rho(rel.NOISE, 2))
    assert release_rho(rel.NOISE, 2) == pytest.approx(2 / (2 * rel.NOISE ** 2))  # zCDP Gaussian: fields / 2 sigma^2
    # past the budget the numbers stay where they were (the third release's, to the end)
    third = epochs.index(3)
    assert third < 40 and {(v.arousal, v.synchrony) for v in views[third:]} == {(views[third].arousal,
                                                                                   views[third].synchrony)}
    status = release.status()
    assert status["releases"] == 3 and status["refused"] >= 1 and status["fraction"] == pytest.approx(1.0, abs=1e-6)


def test_the_stated_session_budget_allows_the_stated_number_of_releases():
    assert rel.BUDGET_RHO == pytest.approx(rel.RELEASES_PER_SESSION * release_rho(rel.NOISE, rel.FIELDS_PER_PERSON))
    budget = SessionBudget(rel.BUDGET_RHO * (1 + 1e-9), rel.NOISE)
    assert all(budget.charge(rel.FIELDS_PER_PERSON) for _ in range(rel.RELEASES_PER_SESSION))
    assert not budget.charge(rel.FIELDS_PER_PERSON)
    assert budget.spent == pytest.approx(rel.BUDGET_RHO)


def test_epsilon_is_opendps_conversion_of_rho():
    rho = 2.0
    # OpenDP's conversion is tighter than the textbook bound rho + 2 sqrt(rho ln(1/delta)), and above rho
    assert rho < epsilon_of(rho) <= rho + 2 * math.sqrt(rho * math.log(1 / 1e-6))
    assert epsilon_of(2 * rho) > epsilon_of(rho)
    assert epsilon_of(0.0) == 0.0


def test_a_pair_mean_moves_by_at_most_8_over_g_for_one_person():
    from lifepalette.privacy.release import pair_mean_sensitivity

    # g = 16: one person is in 15 of 120 pairs, each pair's excess in [-2, 2] (width 4): 15 x 4 / 120 = 0.5
    assert pair_mean_sensitivity(16) == pytest.approx(15 * 4 / 120)
    assert pair_mean_sensitivity(8) == 1.0  # clipped to [0, 1]: never more than the whole range


def test_the_view_of_a_second_does_not_depend_on_how_often_it_was_asked_for():
    """One request a second, or many at odd instants (a wall, OSC and MQTT polling): the same numbers each second,
    so a replay that asks once a second releases what the live hub released, and asking again adds nothing."""
    once, often = public_release(9), public_release(9)
    every_second = [once.step(float(t), truth(8 + t // 40, arousal=0.3 + 0.002 * t)).to_json() for t in range(300)]
    polled = {}
    for tenth in range(0, 3000, 3):
        t = tenth // 10
        view = often.step(tenth / 10, truth(8 + t // 40, arousal=0.3 + 0.002 * t)).to_json()
        polled.setdefault(t, view)
        assert {**view, "updated": 0} == {**polled[t], "updated": 0}  # later requests in a second: the same view
    assert [dict(v, updated=0) for v in every_second] == [dict(polled[t], updated=0) for t in range(300)]
    assert once.budget.releases == often.budget.releases > 20


def test_within_a_second_a_changed_truth_changes_nothing():
    release = public_release(6)
    first = release.step(10.2, truth(8))
    assert release.step(10.9, truth(12, arousal=0.9)).to_json() == dict(first.to_json(), updated=10.9)
    assert release.budget.releases == 1


def test_a_clock_that_goes_back_never_draws_a_seconds_noise_twice():
    release = public_release(8)
    first = release.step(100.0, truth(8))
    release.step(101.0, truth(K_MIN - 1))  # the cohort dissolves
    again = release.step(100.0, truth(8))  # and forms again at an earlier second, with the same numbers
    assert first.ready and again.ready and release.budget.releases == 2
    assert (again.arousal, again.synchrony) != (first.arousal, first.synchrony)  # fresh noise, not the same draw
