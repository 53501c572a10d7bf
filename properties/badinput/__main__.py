"""The bad-input survey: every spec's wrong-value makers, a few derandomized draws each, sorted
into clear / unclear / silent / hang (properties/badinput/__init__.py).

    python -m properties.badinput [--names GLOB] [--draws 3] [--json FILE] [--show unclear,silent,hang]

Deterministic: the same specs give the same calls, so the counts of two trees compare.
"""

import argparse
import fnmatch
import json
import sys
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from properties import badinput

CATEGORIES = ("clear", "unclear", "silent", "hang")


def survey(spec, draws):
    """[(argument, maker, value repr, category, detail)] over `draws` draws per maker."""
    rows = []

    def experiment(arg, maker):
        @settings(
            derandomize=True,
            database=None,
            max_examples=draws,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def one(data):
            kwargs = spec.valid()
            kwargs[arg] = data.draw(maker(kwargs, arg))
            category, detail = badinput.classify(spec, kwargs, (arg, *maker.names))
            rows.append(
                (arg, repr(maker), " ".join(repr(kwargs[arg]).split())[:80], category, detail)
            )

        return one

    for arg, maker in spec.makers:
        experiment(arg, maker)()
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m properties.badinput", description=__doc__)
    parser.add_argument("--draws", type=int, default=3, help="draws per wrong-value maker (3)")
    parser.add_argument("--names", default="*", help="only the specs matching this glob (all)")
    parser.add_argument("--json", help="write every call and its category to this file")
    parser.add_argument(
        "--show", default="unclear,silent,hang", help="categories to list (unclear,silent,hang)"
    )
    args = parser.parse_args(argv)
    registry = badinput.load()
    names = badinput.public_names()
    missing = [n for n in names if n not in registry]
    calls, counts = [], Counter()
    for name, spec in sorted(registry.items()):
        if isinstance(spec, badinput.Exempt) or not fnmatch.fnmatch(name, args.names):
            continue
        for arg, maker, value, category, detail in survey(spec, args.draws):
            counts[category] += 1
            calls.append(
                dict(
                    name=name,
                    argument=arg,
                    maker=maker,
                    value=value,
                    category=category,
                    detail=detail,
                )
            )
    show = set(args.show.split(","))
    for c in calls:
        if c["category"] in show:
            print(f"{c['category']:8} {c['name']}({c['argument']}={c['value']}): {c['detail']}")
    total = sum(counts.values())
    specs = sum(isinstance(s, badinput.Spec) for s in registry.values())
    print(
        f"{total} wrong calls over {specs} specs ({len(names)} public names, "
        f"{len(names) - len(missing)} covered, {len(missing)} without a spec): "
        + ", ".join(f"{c} {counts[c]}" for c in CATEGORIES)
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(counts=dict(counts), missing=missing, calls=calls), f, indent=1)
    return 0 if counts["clear"] == total and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
