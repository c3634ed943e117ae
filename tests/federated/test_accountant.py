"""The privacy spent equals dp-accounting's value for the mechanism that ran."""

from __future__ import annotations

import math

import dp_accounting
import pytest
from dp_accounting.rdp import RdpAccountant

from fleetmind.core.errors import ConfigError
from fleetmind.federated.accountant import epsilon_spent, noise_for_epsilon


@pytest.mark.parametrize(("noise", "rounds"), [(0.8, 1), (1.1, 10), (2.0, 50)])
def test_every_site_every_round_is_r_gaussian_mechanisms(noise: float, rounds: int) -> None:
    accountant = RdpAccountant()  # add-or-remove-one
    for _ in range(rounds):
        accountant.compose(dp_accounting.GaussianDpEvent(noise))
    expected = accountant.get_epsilon(1e-5)
    assert epsilon_spent(noise, rounds, 4, 4, 1e-5) == pytest.approx(expected, rel=1e-9)
    # and no looser than the textbook RDP bound of R Gaussian mechanisms
    textbook = min(rounds * a / (2 * noise**2) + math.log(1e5) / (a - 1) for a in range(2, 512))
    assert epsilon_spent(noise, rounds, 4, 4, 1e-5) <= textbook + 1e-9


def test_a_sample_is_fixed_size_without_replacement() -> None:
    accountant = RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.REPLACE_ONE)
    event = dp_accounting.SampledWithoutReplacementDpEvent(
        100, 10, dp_accounting.GaussianDpEvent(1.5 / 2)
    )
    accountant.compose(event, 20)
    assert epsilon_spent(1.5, 20, 10, 100, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5))


def test_epsilon_grows_with_rounds_and_falls_with_noise() -> None:
    assert epsilon_spent(1.0, 0, 2, 2, 1e-5) == 0.0
    assert epsilon_spent(1.0, 5, 2, 2, 1e-5) < epsilon_spent(1.0, 10, 2, 2, 1e-5)
    assert epsilon_spent(2.0, 10, 2, 2, 1e-5) < epsilon_spent(1.0, 10, 2, 2, 1e-5)
    assert epsilon_spent(0.0, 1, 2, 2, 1e-5) == math.inf


def test_target_epsilon_picks_the_smallest_noise_that_reaches_it() -> None:
    z = noise_for_epsilon(4.0, 10, 3, 3, 1e-5)
    assert epsilon_spent(z, 10, 3, 3, 1e-5) <= 4.0
    assert epsilon_spent(z * 0.99, 10, 3, 3, 1e-5) > 4.0


def test_an_unreachable_target_is_refused() -> None:
    with pytest.raises(ConfigError, match="cannot be reached"):
        noise_for_epsilon(1e-4, 10, 3, 3, 1e-5)
