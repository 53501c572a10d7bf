"""Rejected variants of FLOW-10..FLOW-15 (the flow-matching article's full text): misreadings of
Theorems 1-3, of the push-forward and of the three Gaussian paths, patched into
impl/flows/marginal.py and impl/flows/pushforward.py. For a part expected to fail, the variant
is one under which its counterexample disappears (the verdict turns to `holds`)."""

import torch

from impl.flows import marginal, pushforward
from properties.variants import variant


@variant(
    "FLOW-10.chain",
    "FLOW-10.must-take",
    "FLOW-11",
    "FLOW-15.marginal-straight",
    "FLOW-15.endpoint-ot-1d",
    "FLOW-15.endpoint-ot-2d",
    name="fulltext-marginal-field-prior-weighted",
    why="the marginal field averages the conditional fields with prior weights q(x1) instead of "
    "the posterior p_t(x|x1) q(x1) / p_t(x): E[x1] in place of E[x1 | x_t = x]",
)
def _(mp):
    def posterior_mean(path, data, x, t):
        return (data.weights[:, None] * data.means).sum(0).expand_as(x)

    mp.setattr(marginal, "posterior_mean", posterior_mean)


@variant(
    "FLOW-10.chain",
    "FLOW-12.result",
    "FLOW-15.conditional-straight",
    name="fulltext-conditional-field-wrong-sign",
    why="u_t(y|x1) = -sigma'_t/sigma_t (y - mu_t) + mu'_t: the sign of the contraction flipped",
)
def _(mp):
    def conditional_field(path, y, x1, t):
        a, s = path.coefficients(t)
        da, ds = path.derivatives(t)
        return -ds / s * (y - a * x1) + da * x1

    mp.setattr(marginal, "conditional_field", conditional_field)


@variant(
    "FLOW-12.result",
    name="fulltext-vp-derivative-without-half",
    why="d/dt alpha_{1-t} = beta(1-t) alpha_{1-t}: the 1/2 of alpha_s = exp(-B(s)/2) dropped "
    "in the derivative",
)
def _(mp):
    def derivatives(self, t):
        a = self.alpha(1 - t)
        da = self.sde.beta(1 - t) * a
        return da, -a * da / torch.sqrt(1 - a**2)

    mp.setattr(marginal.VP, "derivatives", derivatives)


@variant(
    "FLOW-14.vp-is-ddpm",
    "FLOW-12.result",
    name="fulltext-vp-alpha-without-half",
    why="alpha_s = exp(-B(s)) instead of exp(-B(s)/2): alpha^2 would be exp(-2B), not DDPM's abar",
)
def _(mp):
    mp.setattr(marginal.VP, "alpha", lambda self, s: torch.exp(-self.sde.integral(s)))


@variant(
    "FLOW-12.middle-step",
    name="fulltext-middle-member-corrected",
    why="the middle member silently evaluated at psi_t^{-1}(y) (the proof's intent) instead of "
    "at sigma'_t y + mu'_t as written: the audit would no longer see the slip",
)
def _(mp):
    def middle(path, y, x1, t):
        return marginal.psi_dot(path, marginal.psi_inverse(path, y, x1, t), x1, t)

    mp.setattr(marginal, "middle_member_as_written", middle)


@variant(
    "FLOW-13.orientation-reversing",
    name="fulltext-push-forward-with-abs",
    why="the push-forward computed with |det| (the change of variables) instead of the article's "
    "det without absolute value",
)
def _(mp):
    mp.setattr(pushforward, "push_forward_as_written", pushforward.change_of_variables)


@variant(
    "FLOW-13.ode-flow",
    name="fulltext-push-forward-divides-by-det",
    why="p_0(phi^-1(x)) / det[d phi^-1/dx]: the Jacobian of the forward map's side used",
)
def _(mp):
    def push(log_p0, inverse, x):
        det = pushforward.jacobian_det(inverse, x)
        return torch.exp(log_p0(inverse(x).detach())) / det

    mp.setattr(pushforward, "push_forward_as_written", push)


@variant(
    "FLOW-14.ot",
    "FLOW-15.conditional-straight",
    name="fulltext-ot-sigma-ignores-sigma-min",
    why="sigma_t = 1 - t in the OT path, sigma_min left out (sigma_1 = 0, not sigma_min)",
)
def _(mp):
    def coefficients(self, t):
        t = marginal._time(t)
        return t, 1 - t

    mp.setattr(marginal.OT, "coefficients", coefficients)


def _ot_coefficients(self, t):
    t = marginal._time(t)
    return t, 1 - t


@variant(
    "FLOW-14.ve",
    name="fulltext-ve-path-is-the-ot-path",
    why="a VE path object that silently returns the OT path's coefficients (sigma_min = 0): the "
    "requirements check must read VE's own mean and std",
)
def _(mp):
    mp.setattr(marginal.VE, "coefficients", _ot_coefficients)


@variant(
    "FLOW-14.vp",
    name="fulltext-vp-path-is-the-ot-path",
    why="a VP path object that silently returns the OT path's coefficients (sigma_min = 0): the "
    "requirements check must read VP's own mean and std",
)
def _(mp):
    mp.setattr(marginal.VP, "coefficients", _ot_coefficients)
