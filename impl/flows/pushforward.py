"""Push-forward densities: the flow-matching article's definition beside the change of variables.

(1) the article's push-forward   [phi]_* p_0(x) = p_0(phi^{-1}(x)) det[d phi^{-1}/dx (x)]
    (as written: no absolute value around the determinant)
(2) change of variables         p(x) = pi(f^{-1}(x)) |det J_{f^{-1}}(x)|
    For an orientation-preserving map (an ODE's flow map: det > 0) (1) equals (2); for an
    orientation-reversing one (a reflection; an affine coupling y2 = c x2 + h(x1) with c < 0) the
    determinant is negative and (1) is -(2): negative, integrating to -1.
(3) maps used to audit (1): the reflection x -> (-x_1, x_2, ..., x_d) (its own inverse) and the
    inverse of a 2-D affine coupling with a constant scale c != 0 and shift h(x1) = sin(x1):
    forward y = (x1, c x2 + sin(x1)), inverse x = (y1, (y2 - sin(y1)) / c).

Batches x are finite float64 tensors (n, d), n, d >= 1; `inverse` maps such a batch to one of the
same shape row by row (each output row depends only on its input row); `log_p0` maps a batch to
one log-density per row.
"""

import torch

from impl import _checks
from impl.flows.coupling import _batch


def jacobian_det(inverse, x):
    """det[d inverse/dx (x)] per row of x, by autograd (d columns, one backward pass each)."""
    _checks.function("inverse", inverse)
    _batch("x", x)
    x = x.detach().requires_grad_(True)
    y = inverse(x)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise ValueError(f"inverse: must return a tensor of x's shape {tuple(x.shape)}")
    rows = [torch.autograd.grad(y[:, i].sum(), x, retain_graph=True)[0] for i in range(x.shape[1])]
    return torch.linalg.det(torch.stack(rows, dim=1)).detach()  # (n, d, d): J[n, i, j] = dy_i/dx_j


def _log_p0(log_p0, z):
    _checks.function("log_p0", log_p0)
    out = log_p0(z)
    if not isinstance(out, torch.Tensor) or out.shape != z.shape[:1]:
        raise ValueError("log_p0: must return one log-density per row, a tensor of shape (n,)")
    return out.detach()


def push_forward_as_written(log_p0, inverse, x):
    """(1): p_0(phi^{-1}(x)) det[d phi^{-1}/dx (x)] per row of x, without an absolute value."""
    det = jacobian_det(inverse, x)  # checks inverse and x
    return torch.exp(_log_p0(log_p0, inverse(x).detach())) * det


def change_of_variables(log_p0, inverse, x):
    """(2): p_0(f^{-1}(x)) |det J_{f^{-1}}(x)| per row of x."""
    det = jacobian_det(inverse, x)  # checks inverse and x
    return torch.exp(_log_p0(log_p0, inverse(x).detach())) * det.abs()


def reflection(x):
    """(3): x with its first coordinate negated (its own inverse); x a batch (n, d)."""
    _batch("x", x)
    return torch.cat([-x[:, :1], x[:, 1:]], dim=1)


def coupling_inverse(y, scale):
    """(3): the inverse (y1, (y2 - sin(y1)) / scale) of the 2-D affine coupling with constant
    scale (a finite number != 0) and shift sin(x1); y a batch (n, 2)."""
    _batch("y", y, 2)
    _checks.scalar("scale", scale)
    if scale == 0:
        raise ValueError("scale: must be != 0 (the coupling would not be invertible)")
    return torch.stack([y[:, 0], (y[:, 1] - torch.sin(y[:, 0])) / scale], dim=1)
