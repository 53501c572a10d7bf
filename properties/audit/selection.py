"""The audit's pytest plugin in every process that collects and runs properties (the audit's own
process, or each pytest-xdist worker: `python -m properties.audit` loads it with
`-p properties.audit.selection`, and xdist hands the same arguments to its workers).

    --audit-claims ID,ID,...   keep only the properties of these leaf claims and the peer
                               findings on them; tag each kept item with the claims it names
    --audit-figures DIR        draw the evidence's figures into DIR (evidence.FIGURE_DIR)

Every such process computes on one torch thread, as the xdist workers do (properties/conftest.py):
the split of a float reduction depends on the thread count, and with it the last bits of the
evidence's numbers (PACK-05's max error / tolerance differed in its second digit between two
threads and one), so the audit's evidence would otherwise depend on -n.

The tag, ("claims", {"supports", "refutes", "findings"}) in the item's user_properties, travels
with every report of the item, so the process that gathers the results (the audit's Collector)
learns which claims a property checks without collecting the properties itself.
"""

from pathlib import Path

import torch

from properties import catalogue, evidence


def pytest_addoption(parser):
    group = parser.getgroup("audit", "the audit (python -m properties.audit sets these)")
    group.addoption(
        "--audit-claims",
        default=None,
        metavar="ID,ID,...",
        help="keep only the properties of these leaf claims and the peer findings on them",
    )
    group.addoption("--audit-figures", default=None, metavar="DIR", help="draw figures into DIR")


def pytest_configure(config):
    torch.set_num_threads(1)
    figures = config.getoption("--audit-figures")
    if figures:
        evidence.FIGURE_DIR = Path(figures)


def wanted(selected, supports, refutes, about):
    """Whether a property runs for the selected leaf claims: it checks one of them, or it is a
    peer finding on one of them or on a claim they are parts of."""
    if selected & set(supports + refutes):
        return True
    return any(s == c or s.startswith(c + ".") for c in about for s in selected)


def pytest_collection_modifyitems(config, items):
    option = config.getoption("--audit-claims")
    if option is None:
        return
    selected = set(option.split(",")) - {""}
    keep, drop = [], []
    for item in items:
        supports, refutes = catalogue.marked(item)
        about = catalogue.findings_of(item)
        if wanted(selected, supports, refutes, about):
            tag = {"supports": list(supports), "refutes": list(refutes), "findings": list(about)}
            item.user_properties.append(("claims", tag))
            keep.append(item)
        else:
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
