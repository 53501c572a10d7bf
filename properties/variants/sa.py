"""Rejected variants of the stochastic-approximation claims (SA-*)."""

from properties.adapters import sa
from properties.variants import variant


@variant(
    "SA-01",
    name="mean-step-1/(k+1)",
    why="the incremental mean with step 1/(k+1) in place of 1/k (w_1 treated as a first sample)",
)
def _(mp):
    mp.setattr(sa.Reference, "incremental_mean", sa.OffByOneMean.incremental_mean)
