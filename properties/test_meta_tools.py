"""The tools around the suite: the offline dashboard rewrite (benchmarks/offline.py) and the
mutation report's classification of survivors (properties/mutation.py)."""

import base64
import hashlib
import textwrap

import pytest

from benchmarks import offline
from properties import mutation

JQUERY = "https://code.jquery.com/jquery-3.3.1.min.js"


def test_offline_rewrite_points_at_the_local_copy_with_its_integrity(tmp_path):
    spec, path = offline.VENDOR[JQUERY]
    local = tmp_path / offline._local(spec, path)
    local.parent.mkdir(parents=True)
    local.write_bytes(b"window.jQuery = 1;")
    page = (
        f'<script src="{JQUERY}" integrity="sha256-old" crossorigin="anonymous"></script>\n'
        '<a href="https://github.com/airspeed-velocity/asv/">asv</a>'
    )
    out = offline.rewrite(page, tmp_path)
    digest = base64.b64encode(hashlib.sha384(b"window.jQuery = 1;").digest()).decode()
    assert f'src="vendor/jquery-3.3.1/dist/jquery.min.js" integrity="sha384-{digest}"' in out
    assert JQUERY not in out and "sha256-old" not in out
    assert '<a href="https://github.com/airspeed-velocity/asv/">' in out  # a link, not a resource


def test_offline_rewrite_refuses_an_unknown_cdn(tmp_path):
    with pytest.raises(ValueError, match="unknown external resource https://cdn.example/x.js"):
        offline.rewrite('<script src="https://cdn.example/x.js"></script>', tmp_path)


def test_offline_needs_published_pages(tmp_path):
    with pytest.raises(FileNotFoundError, match="no published asv pages"):
        offline.make_offline(tmp_path)


MUTATED = textwrap.dedent(
    """
    def x_f__mutmut_orig(a, name):
        _checks.positive_int("n", a)
        if a < 0:
            raise ValueError(f"{name}: must be >= 0, got {a}")
        return 2 * a

    def x_f__mutmut_1(a, name):
        _checks.positive_int("n", a)
        if a < 0:
            raise ValueError(None)
        return 2 * a

    def x_f__mutmut_2(a, name):
        _checks.positive_int("XXnXX", a)
        if a < 0:
            raise ValueError(f"{name}: must be >= 0, got {a}")
        return 2 * a

    def x_f__mutmut_3(a, name):
        _checks.positive_int("n", a)
        if a <= 0:
            raise ValueError(f"{name}: must be >= 0, got {a}")
        return 2 * a

    def x_f__mutmut_4(a, name):
        _checks.positive_int("n", a)
        if a < 0:
            raise ValueError(f"{name}: must be >= 0, got {a}")
        return "XX"

    def x_p__mutmut_orig(parser, a, log):
        parser.add_argument("--a", default=1, help="the a")
        log(f"step {a + 1}")
        print("done", a)

    def x_p__mutmut_1(parser, a, log):
        parser.add_argument("--a", default=1, help="XXthe aXX")
        log(f"step {a + 1}")
        print("done", a)

    def x_p__mutmut_2(parser, a, log):
        parser.add_argument("--a", default=1, help="the a")
        log(f"step {a + 2}")
        print("done", a)

    def x_p__mutmut_3(parser, a, log):
        parser.add_argument("--a", default=1, help="the a")
        log(f"step {a + 1}")
        print(None, a)

    def x_p__mutmut_4(parser, a, log):
        parser.add_argument("--a", default=2, help="the a")
        log(f"step {a + 1}")
        print("done", a)

    def x_p__mutmut_5(parser, a, log):
        parser.add_argument("--b", default=1, help="the a")
        log(f"step {a + 1}")
        print("done", a)

    def x_l__mutmut_orig(self, q, k):
        for name, t in (("q", q), ("k", k)):
            self._cell("cell", t)
        return q

    def x_l__mutmut_1(self, q, k):
        for name, t in (("q", q), ("XXkXX", k)):
            self._cell("cell", t)
        return q

    def x_l__mutmut_2(self, q, k):
        for name, t in (("q", q), ("k", k)):
            self._cell(None, t)
        return q

    def x_l__mutmut_3(self, q, k):
        for name, t in (("q", q), ("k", q)):
            self._cell("cell", t)
        return q
    """
)


@pytest.mark.parametrize(
    "name, expected",
    [("f_1", True), ("f_2", True), ("f_3", False), ("f_4", False), ("p_1", True), ("p_2", True),
     ("p_3", True), ("p_4", False), ("p_5", False), ("l_1", True), ("l_2", True), ("l_3", False)],
)  # fmt: skip
def test_message_only_mutants_are_told_from_the_rest(tmp_path, monkeypatch, name, expected):
    """Only the wording of an error (or an input check's argument name), a help text or printed
    progress may differ; a changed comparison, returned string, default or option name is a real
    mutant."""
    mutated = tmp_path / f"m_{name}.py"
    mutated.write_text(MUTATED)
    monkeypatch.setattr(mutation, "message_helpers", lambda: {"positive_int", "_cell"})
    function, n = name.split("_")
    key = f"impl.m.x_{function}__mutmut_{n}"
    assert mutation.message_only(mutated, key) is expected
    assert mutation.diff(mutated, key).count("\n+") == 1


CANONICAL = textwrap.dedent(
    """
    def x_g__mutmut_orig(a):
        return [u + v for u, v in zip(a, a[1:], strict=False)], a.astype(float)

    def x_g__mutmut_1(a):
        return [u + v for u, v in zip(a, a[1:])], a.astype(float)

    def x_g__mutmut_2(a):
        return [u + v for u, v in zip(a, a[1:], strict=False)], a.astype(None)

    def x_g__mutmut_3(a):
        return [u + v for u, v in zip(a, a[1:], strict=True)], a.astype(float)

    def x_g__mutmut_4(a):
        return [u + v for u, v in zip(a, a[1:], strict=False)], a.astype(int)
    """
)


@pytest.mark.parametrize("n, expected", [(1, True), (2, True), (3, False), (4, False)])
def test_equivalence_by_rule(tmp_path, n, expected):
    mutated = tmp_path / f"c{n}.py"
    mutated.write_text(CANONICAL)
    assert mutation.canonically_equal(mutated, f"impl.m.x_g__mutmut_{n}") is expected
