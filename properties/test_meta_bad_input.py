"""Bad input: every public name of impl/ refuses wrong arguments with a ValueError or TypeError
whose message starts with the argument's name, within a time and a memory limit
(properties/badinput/__init__.py). A public name without a spec fails here."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from properties import badinput

REGISTRY = badinput.load()
SPECS = sorted(n for n, s in REGISTRY.items() if isinstance(s, badinput.Spec))


def test_every_public_name_has_a_spec():
    names = badinput.public_names()
    missing = [n for n in names if n not in REGISTRY]
    assert not missing, f"public names of impl/ without a bad-input spec: {missing}"
    for name in REGISTRY:
        badinput.resolve(name)  # a spec for a name that no longer exists fails here


@pytest.mark.parametrize("name", SPECS)
def test_the_valid_call_runs(name):
    """The spec's valid call returns: a wrong call's error is then due to the wrong argument."""
    spec = REGISTRY[name]
    category, detail = badinput.classify(spec, spec.valid(), ())
    assert category == "silent", f"{name}: the valid call does not return: {detail}"


@pytest.mark.parametrize("name", SPECS)
@given(data=st.data())
def test_wrong_input_gets_a_clear_error(name, data):
    spec = REGISTRY[name]
    arg, maker = data.draw(st.sampled_from(spec.makers), label="argument, maker")
    kwargs = spec.valid()
    kwargs[arg] = data.draw(maker(kwargs, arg), label=arg)
    category, detail = badinput.classify(spec, kwargs, (arg, *maker.names))
    assert category == "clear", (
        f"{name}({arg}={kwargs[arg]!r:.80}) [{maker!r}]: {category}: {detail}"
    )


def test_names_argument_wants_the_whole_name_first():
    ok = badinput.names_argument
    assert ok("a: must lie in [0, 1]", ("a",))
    assert ok("mdp.prob: rows must sum to 1", ("mdp",))
    assert ok("x0[3] is nan", ("x0",))
    assert not ok("abar: must lie in [0, 1]", ("a",))
    assert not ok("x_t: wrong shape", ("x",))
    assert not ok("expected a: got 3", ("a",))


def test_classify_sorts_the_four_outcomes():
    def f(x):
        if x == "value":
            raise ValueError("x: bad")
        if x == "other":
            raise ValueError("y: bad")
        if x == "deep":
            raise IndexError("index 3 is out of bounds")
        if x == "loop":
            while True:
                pass
        if x == "big":
            return bytearray(8 * 2**30)
        return x

    s = badinput.Spec("f", dict, {"x": []}, call=f)
    assert badinput.classify(s, dict(x="value"), ("x",))[0] == "clear"
    assert badinput.classify(s, dict(x="other"), ("x",))[0] == "unclear"
    assert badinput.classify(s, dict(x="deep"), ("x",))[0] == "unclear"
    assert badinput.classify(s, dict(x=1), ("x",))[0] == "silent"
    assert badinput.classify(s, dict(x="big"), ("x",))[0] == "hang"
    limit, badinput.TIME_LIMIT_S = badinput.TIME_LIMIT_S, 0.2
    try:
        assert badinput.classify(s, dict(x="loop"), ("x",))[0] == "hang"
    finally:
        badinput.TIME_LIMIT_S = limit
