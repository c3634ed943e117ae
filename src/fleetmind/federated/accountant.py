"""The privacy a federated run spends, computed with dp-accounting for the mechanism that ran.

Each round the server releases the mean of the sampled sites' updates, each clipped
to norm C, plus Gaussian noise of standard deviation z * C / m (Flower's DP
wrappers, m the number of sites sampled). A site's whole data is the unit protected.

* Every site every round (m = N): R compositions of the Gaussian mechanism with
  multiplier z under add-or-remove-one-site neighbours (removing a site changes the
  sum of clipped updates by at most C):
  ``SelfComposedDpEvent(GaussianDpEvent(z), R)``.
* A sample of the sites (m < N): Flower draws exactly m of the N sites uniformly
  without replacement (``random.sample``), so the event is
  ``SampledWithoutReplacementDpEvent(N, m, GaussianDpEvent(z / 2))`` under
  replace-one-site neighbours (the neighbouring relation that sampling without
  replacement needs; replacing a site changes the sum by up to 2C, hence z / 2).
  Poisson sampling would be a different mechanism, which Flower does not run.

Both are composed with dp-accounting's RDP accountant and converted to epsilon at
the given delta. z = 0 spends an unbounded epsilon (reported as ``inf``).

Local DP (Flower's ``LocalDpMod``) is each site's own: it clips its update to C and
adds Gaussian noise of standard deviation ``2C * sqrt(2 ln(1.25 / delta)) / epsilon``
(any two of its clipped updates differ by at most 2C), so each update it sends is
(epsilon, delta)-DP whatever the server does. Over k updates that is k compositions
of the Gaussian mechanism with multiplier ``sqrt(2 ln(1.25 / delta)) / epsilon``
(:func:`local_epsilon_spent`); a site trains at most once a round, so after round r
it has spent at most the value for k = r (sampling does not amplify it: the server
knows whom it sampled).
"""

from __future__ import annotations

import math

import dp_accounting
from dp_accounting.rdp import RdpAccountant

from fleetmind.core.errors import ConfigError

NOISE_RANGE = (0.01, 100.0)
"""Noise multipliers --dp-target-epsilon searches."""


def round_event(noise: float, sample_size: int, sites: int) -> dp_accounting.DpEvent:
    """The event of one round (see the module docstring)."""
    if sample_size >= sites:
        return dp_accounting.GaussianDpEvent(noise)
    return dp_accounting.SampledWithoutReplacementDpEvent(
        sites, sample_size, dp_accounting.GaussianDpEvent(noise / 2)
    )


def epsilon_spent(noise: float, rounds: int, sample_size: int, sites: int, delta: float) -> float:
    """Epsilon at ``delta`` after ``rounds`` rounds (``inf`` without noise)."""
    if rounds == 0:
        return 0.0
    if noise <= 0:
        return math.inf
    relation = (
        dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
        if sample_size >= sites
        else dp_accounting.NeighboringRelation.REPLACE_ONE
    )
    accountant = RdpAccountant(neighboring_relation=relation)
    accountant.compose(
        dp_accounting.SelfComposedDpEvent(round_event(noise, sample_size, sites), rounds)
    )
    return float(accountant.get_epsilon(delta))


def noise_for_epsilon(
    target: float, rounds: int, sample_size: int, sites: int, delta: float
) -> float:
    """The smallest z in :data:`NOISE_RANGE` (to 0.1%) whose run spends at most ``target``;
    ConfigError when even the largest does not reach it."""
    low, high = NOISE_RANGE

    def spent(z: float) -> float:
        return epsilon_spent(z, rounds, sample_size, sites, delta)

    if spent(high) > target:
        raise ConfigError(
            f"--dp-target-epsilon {target} cannot be reached: even noise multiplier {high} "
            f"spends epsilon {spent(high):.3g} over {rounds} rounds at delta {delta}; "
            "raise the target or run fewer rounds"
        )
    if spent(low) <= target:
        return low
    while high - low > 1e-3 * high:
        middle = (low + high) / 2
        low, high = (low, middle) if spent(middle) <= target else (middle, high)
    return high


def local_noise_multiplier(epsilon: float, delta: float) -> float:
    """The noise of LocalDpMod over its sensitivity: sqrt(2 ln(1.25 / delta)) / epsilon."""
    return math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def local_noise_std(epsilon: float, delta: float, clip: float) -> float:
    """The standard deviation of the noise a site adds to each weight (sensitivity 2C)."""
    return 2 * clip * local_noise_multiplier(epsilon, delta)


def local_epsilon_spent(epsilon: float, delta: float, updates: int) -> float:
    """Epsilon at ``delta`` that a site has spent after sending ``updates`` updates."""
    if updates == 0:
        return 0.0
    accountant = RdpAccountant()
    event = dp_accounting.GaussianDpEvent(local_noise_multiplier(epsilon, delta))
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, updates))
    return float(accountant.get_epsilon(delta))
