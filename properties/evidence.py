"""Evidence that properties leave for the audit: numbers, a summary, counterexamples, figures.

The conftest opens one Evidence per test (`collecting`); helpers and tests write to `current()`.
Outside a test, writes go to a scratch Evidence and are dropped. Figures are drawn only when the
audit sets FIGURE_DIR, so a plain test run spends no time on them.
"""

from contextlib import contextmanager

from hypothesis import find
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import NoSuchExample

FIGURE_DIR = None  # pathlib.Path set by the audit runner


class Evidence:
    def __init__(self):
        self.numbers, self.figures, self.discrepancies = {}, [], []
        self.summary = None
        self.counterexample = None

    def record(self, **numbers):
        """Set named numbers (the last write wins; Hypothesis replays the minimal failure last)."""
        self.numbers.update(numbers)

    def worst(self, name, value, *, larger_is_worse=True):
        """Keep the worst value of `name` seen over all examples."""
        old = self.numbers.get(name)
        if old is None or (value > old if larger_is_worse else value < old):
            self.numbers[name] = value

    def discrepancy(self, what, article, computed, case=None):
        """The article's value beside the computed one, for the report's "what the articles get
        wrong" section: `what` names the quantity, `article` is what the article states (a number
        or its words), `computed` what the audit computed, `case` the minimal case it holds on."""
        entry = {"what": what, "article": article, "computed": computed, "case": case}
        if entry not in self.discrepancies:  # Hypothesis may replay the same example
            self.discrepancies.append(entry)

    def as_dict(self):
        return {
            "summary": self.summary,
            "numbers": dict(self.numbers),
            "counterexample": self.counterexample,
            "figures": list(self.figures),
            "discrepancies": list(self.discrepancies),
        }


_stack = [Evidence()]


def current():
    return _stack[-1]


@contextmanager
def collecting():
    _stack.append(Evidence())
    try:
        yield _stack[-1]
    finally:
        _stack.pop()


def figure(name, draw, *, size=(6.4, 4.0)):
    """Save `draw(fig)` as FIGURE_DIR/<name>.png and list it in the evidence (audit runs only)."""
    if FIGURE_DIR is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size, layout="constrained")
    try:
        draw(fig)
        FIGURE_DIR.mkdir(parents=True, exist_ok=True)
        fig.savefig(FIGURE_DIR / f"{name}.png", dpi=110)
    finally:
        plt.close(fig)
    current().figures.append(f"{name}.png")


class ClaimNotRefuted(AssertionError):
    """A refutation found no counterexample: the claim it expected to fail may hold."""


def refute(strategy, holds, *, claim, max_examples=200, describe=repr):
    """Find the minimal example on which the claim `holds(example)` is false; record and return it.

    Raises ClaimNotRefuted when none is found within `max_examples` examples.
    """
    try:
        example = find(
            strategy,
            lambda ex: not holds(ex),
            settings=hypothesis_settings(
                max_examples=max_examples, database=None, derandomize=True
            ),
        )
    except NoSuchExample:
        raise ClaimNotRefuted(
            f"{claim}: no counterexample in {max_examples} examples; the claim was expected to fail"
        ) from None
    current().counterexample = describe(example)
    return example
