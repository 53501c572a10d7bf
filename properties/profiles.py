"""Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default: `ci` when CI is set, else `dev`).

ci        derandomized, no example database, 40 examples per property: reproducible gates.
dev       random, 100 examples, the local example database: day-to-day work.
thorough  random, 1000 examples: nightly hunts (hypothesis.target steers towards worst errors).
mutation  derandomized, no database, 10 examples (2 per statistical property): the mutation run
          (properties/mutation.py), which runs the properties once per mutant.
variants  ci's examples, derandomized, without shrinking: the rejected-variants run
          (properties/variants), where one failing example decides and its size does not matter.

Statistical properties run a Monte Carlo experiment per example, so they take fewer examples
(`statistical()`): 6 / 10 / 40. With the suite's statistical checks this keeps every profile
within the false-alarm budget of properties/stats.py (the conftest enforces it).
"""

import os

from hypothesis import HealthCheck, Phase, settings

PROFILES = {
    "ci": dict(derandomize=True, database=None, max_examples=40, print_blob=False),
    "dev": dict(max_examples=100),
    "thorough": dict(max_examples=1000),
    "mutation": dict(derandomize=True, database=None, max_examples=10, print_blob=False),
    "variants": dict(
        derandomize=True,
        database=None,
        max_examples=40,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate),
    ),
}
STATISTICAL_EXAMPLES = {"ci": 6, "dev": 10, "thorough": 40, "mutation": 2, "variants": 6}


def active():
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    if name not in PROFILES:
        raise ValueError(
            f"HYPOTHESIS_PROFILE: unknown profile {name!r}; choose from {list(PROFILES)}"
        )
    return name


def register():
    for name, options in PROFILES.items():
        settings.register_profile(
            name, deadline=None, suppress_health_check=[HealthCheck.too_slow], **options
        )
    settings.load_profile(active())


def statistical():
    """Settings for a property whose every example is a Monte Carlo experiment."""
    return settings(max_examples=STATISTICAL_EXAMPLES[active()])


def costly():
    """Settings for a property whose every example is a costly measurement (as many examples
    as a statistical property)."""
    return settings(max_examples=STATISTICAL_EXAMPLES[active()])
