"""The grid world of Zhao's book, exactly as the book defines it (seed articles 9 and 10).

Cells are (row, col), 1-indexed as in the book, row 1 at the top. State s = (row - 1) n_cols +
(col - 1): the book's s_1, s_2, ... in row-major order, minus one. Actions, in the book's order:
a1 up, a2 right, a3 down, a4 left, a5 stay (indices 0..4; `actions` may select a subset).

Transitions are deterministic. Reward of a transition s --a--> s':
    a move off the grid leaves s' = s and gives r_boundary (this takes precedence);
    otherwise r_forbidden if s' is a forbidden cell (entering, or staying in one),
    r_target if s' is the target (entering, or staying there), 0 for every other transition.
Forbidden cells can be entered; the target is not terminal; there is no terminal state. (The
book's public helper code uses other defaults, walls and a terminal target: not this model.)

Named examples: example_5x5 (target (4,3); forbidden (2,2) (2,3) (3,3) (4,2) (4,4) (5,2);
r_boundary = r_forbidden = -1, r_target = 1, gamma = 0.9, with the variants gamma = 0.5, 0 and
r_forbidden = -10), example_2x2, example_3x3, example_1x2 (actions left, stay, right).
"""

import math
import numbers

import numpy as np

from impl import _checks
from impl.rl.mdp import MDP, _actions, _real_array, check_gamma

ACTIONS = ("up", "right", "down", "left", "stay")
MOVES = {"up": (-1, 0), "right": (0, 1), "down": (1, 0), "left": (0, -1), "stay": (0, 0)}
ARROWS = {"up": "↑", "right": "→", "down": "↓", "left": "←", "stay": "o"}


class GridWorld:
    def __init__(self, n_rows, n_cols, target, forbidden=(), *, r_boundary=-1.0, r_forbidden=-1.0,
                 r_target=1.0, gamma=0.9, actions=ACTIONS):  # fmt: skip
        """n_rows, n_cols >= 1; target a (row, col) cell of the grid (1-indexed); forbidden a
        collection of such cells, not the target; finite rewards; gamma in [0, 1); actions a
        non-empty subset of ACTIONS without repeats."""
        self.n_rows = _checks.positive_int("n_rows", n_rows)
        self.n_cols = _checks.positive_int("n_cols", n_cols)
        self.target = self._cell("target", target)
        if (
            forbidden is None
            or isinstance(forbidden, str | bytes)
            or not hasattr(forbidden, "__iter__")
        ):
            raise ValueError(
                f"forbidden: expected a collection of (row, col) cells, got {forbidden!r:.60}"
            )
        self.forbidden = tuple(self._cell("forbidden", c) for c in forbidden)
        if self.target in self.forbidden:
            raise ValueError(f"target: {self.target} is also a forbidden cell")
        for name, r in (
            ("r_boundary", r_boundary),
            ("r_forbidden", r_forbidden),
            ("r_target", r_target),
        ):
            if isinstance(r, bool) or not isinstance(r, numbers.Real) or not math.isfinite(r):
                raise ValueError(f"{name}: must be a finite real number, got {r!r:.60}")
        check_gamma(gamma)
        if actions is None or isinstance(actions, str | bytes) or not hasattr(actions, "__iter__"):
            raise ValueError(f"actions: a non-empty subset of {ACTIONS}, got {actions!r:.60}")
        actions = tuple(actions)
        unknown = [a for a in actions if not isinstance(a, str) or a not in MOVES]
        if not actions or unknown or len(set(actions)) != len(actions):
            raise ValueError(
                f"actions: a non-empty subset of {ACTIONS} without repeats, got {actions!r}"
            )
        self.actions = actions
        self.r_boundary, self.r_forbidden, self.r_target = r_boundary, r_forbidden, r_target
        self.gamma = gamma

    def __repr__(self):
        return (
            f"GridWorld({self.n_rows}, {self.n_cols}, target={self.target}, "
            f"forbidden={list(self.forbidden)}, r_boundary={self.r_boundary}, "
            f"r_forbidden={self.r_forbidden}, r_target={self.r_target}, gamma={self.gamma}, "
            f"actions={self.actions})"
        )

    def _cell(self, name, cell):
        """A (row, col) pair of integers inside the grid (1-indexed)."""
        if (
            isinstance(cell, str | bytes)
            or not hasattr(cell, "__len__")
            or len(cell) != 2
            or any(isinstance(c, bool) or not isinstance(c, int | np.integer) for c in cell)
        ):
            raise ValueError(f"{name}: expected a (row, col) pair of integers, got {cell!r:.60}")
        row, col = (int(c) for c in cell)
        if not (1 <= row <= self.n_rows and 1 <= col <= self.n_cols):
            raise ValueError(
                f"{name}: cell {(row, col)} lies outside the {self.n_rows} x {self.n_cols} grid"
            )
        return row, col

    @property
    def n_states(self):
        return self.n_rows * self.n_cols

    def state(self, cell):
        """The state of a (row, col) cell of the grid (1-indexed)."""
        row, col = self._cell("cell", cell)
        return (row - 1) * self.n_cols + (col - 1)

    def cell(self, s):
        """The (row, col) cell of state s, an integer in [0, n_states)."""
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s < self.n_states:
            raise ValueError(f"s: must be a state index in [0, {self.n_states - 1}], got {s!r:.60}")
        return divmod(int(s), self.n_cols)[0] + 1, int(s) % self.n_cols + 1

    def is_forbidden(self):
        """Boolean mask over states."""
        mask = np.zeros(self.n_states, dtype=bool)
        mask[[self.state(c) for c in self.forbidden]] = True
        return mask

    def mdp(self):
        """The grid world as an MDP with one outcome per (s, a)."""
        rows, cols = np.divmod(np.arange(self.n_states), self.n_cols)
        forbidden, target = self.is_forbidden(), self.state(self.target)
        next_state = np.empty((self.n_states, len(self.actions), 1), dtype=np.intp)
        reward = np.empty((self.n_states, len(self.actions), 1))
        for a, name in enumerate(self.actions):
            dr, dc = MOVES[name]
            r2, c2 = rows + dr, cols + dc
            off = (r2 < 0) | (r2 >= self.n_rows) | (c2 < 0) | (c2 >= self.n_cols)
            s2 = np.where(off, np.arange(self.n_states), r2 * self.n_cols + c2)
            r = np.where(forbidden[s2], self.r_forbidden, 0.0)
            r = np.where(s2 == target, self.r_target, r)
            next_state[:, a, 0] = s2
            reward[:, a, 0] = np.where(off, self.r_boundary, r)
        return MDP(next_state, np.ones_like(reward), reward, self.gamma)

    def render_values(self, v, decimals=1):
        """State values as a table of rows (forbidden cells marked with *, the target with T);
        v real, shape (n_states,) (nan and inf are shown as such); decimals in [0, 20]."""
        v = _real_array("v", v, 1, finite=False)
        if v.shape != (self.n_states,):
            raise ValueError(f"v: expected shape ({self.n_states},), got {v.shape}")
        decimals = _checks.integer("decimals", decimals, 0, 20)
        marks = {self.state(c): "*" for c in self.forbidden} | {self.state(self.target): "T"}
        cells = [f"{v[s]:.{decimals}f}{marks.get(s, '')}" for s in range(self.n_states)]
        width = max(len(c) for c in cells)
        return "\n".join(
            " ".join(c.rjust(width) for c in cells[r * self.n_cols : (r + 1) * self.n_cols])
            for r in range(self.n_rows)
        )

    def render_policy(self, actions):
        """A deterministic policy as arrows (o = stay), forbidden cells in brackets; actions
        one index into self.actions per state."""
        actions = _actions("actions", actions, self.n_states, len(self.actions))
        forbidden = self.is_forbidden()
        cells = [
            f"[{ARROWS[self.actions[a]]}]" if forbidden[s] else f" {ARROWS[self.actions[a]]} "
            for s, a in enumerate(actions)
        ]
        return "\n".join(
            "".join(cells[r * self.n_cols : (r + 1) * self.n_cols]) for r in range(self.n_rows)
        )


FORBIDDEN_5X5 = ((2, 2), (2, 3), (3, 3), (4, 2), (4, 4), (5, 2))


def example_5x5(gamma=0.9, r_forbidden=-1.0):
    """The book's 5 x 5 example (and its variants gamma = 0.5, 0 and r_forbidden = -10)."""
    return GridWorld(5, 5, (4, 3), FORBIDDEN_5X5, r_forbidden=r_forbidden, gamma=gamma)


def example_2x2(gamma=0.9):
    """Chapter 2's 2 x 2 example: s2 = (1, 2) forbidden, s4 = (2, 2) the target."""
    return GridWorld(2, 2, (2, 2), [(1, 2)], gamma=gamma)


def example_3x3(gamma=0.9):
    """The 3 x 3 example (chapters 1 and 5): target s9 = (3, 3), forbidden s6 = (2, 3), s7 = (3, 1)."""
    return GridWorld(3, 3, (3, 3), [(2, 3), (3, 1)], gamma=gamma)


def example_1x2(gamma=0.9):
    """Chapter 4's policy-iteration example: s1 = (1, 1), target s2 = (1, 2); left, stay, right."""
    return GridWorld(1, 2, (1, 2), gamma=gamma, actions=("left", "stay", "right"))
