"""Family `sa` (stochastic approximation): the functions its properties call.

Interface (see impl/rl/approximation for the equations and argument conventions):
    incremental_mean(x, w1)          iterates w_1..w_{n+1} of w_{k+1} = w_k - (w_k - x_k)/k
    weighted_iterate(x, a, w1)       iterates of w_{k+1} = w_k - a_k (w_k - x_k)
    streaming_mean(chunks)           (mean, count) of a stream of sample chunks
    robbins_monro(g_tilde, w1, a, keep)
    dvoretzky(delta1, alpha, beta, eta, keep)
    bgd(x, w1, n_iter, alpha, grad), mbgd(x, w1, batches, alpha, grad), sgd(x, w1, alpha, grad)
    relative_gradient_error(w, x, mean)
Inputs that hold Fractions (dtype object) must be computed exactly.
"""

import numpy as np

from impl.rl.approximation import dvoretzky, gradient_descent, mean, robbins_monro


class Reference:
    """The project's implementation, impl/rl/approximation."""

    incremental_mean = staticmethod(mean.incremental_mean)
    weighted_iterate = staticmethod(mean.weighted_iterate)
    streaming_mean = staticmethod(mean.streaming_mean)
    robbins_monro = staticmethod(robbins_monro.robbins_monro)
    dvoretzky = staticmethod(dvoretzky.dvoretzky)
    bgd = staticmethod(gradient_descent.bgd)
    mbgd = staticmethod(gradient_descent.mbgd)
    sgd = staticmethod(gradient_descent.sgd)
    relative_gradient_error = staticmethod(gradient_descent.relative_gradient_error)


class OffByOneMean(Reference):
    """Deliberately wrong: the incremental mean with step 1/(k+1) in place of 1/k, the classic
    indexing slip (it treats w_1 as a first sample). The SA-01 properties must reject it."""

    @staticmethod
    def incremental_mean(x, w1=None):
        x = np.asarray(x)
        w = np.asarray(0 if w1 is None else w1)[()]
        iterates = [w]
        for k in range(1, x.shape[0] + 1):
            w = w - (w - x[k - 1]) / (k + 1)
            iterates.append(w)
        return np.stack([np.asarray(i) for i in iterates])


# impl code the properties use that no adapter replaces: step sizes and noisy observations fed
# in, the exact laws and bounds the iterates are compared with (properties/bypass.py)
_RM = "impl.rl.approximation.robbins_monro"
TOOLS = {
    f"{_RM}.power_steps": "step sizes a_k = a / k^p fed in (checked by "
    "test_power_steps_are_a_over_k_to_the_p_and_default_to_one_over_k)",
    f"{_RM}.constant_steps": "constant step sizes fed in (SA-02's negative control)",
    f"{_RM}.noisy_oracle": "the noisy observation g~(w) = g(w) + eta fed to robbins_monro (its "
    "noise law: test_noisy_oracle_noise_law)",
    f"{_RM}.NOISES": "the names of noisy_oracle's noise laws",
    f"{_RM}.mean_square_bound": "the bound on E (w_k - w*)^2 of the RM recursion the iterates "
    "are compared with",
    f"{_RM}.linear_gaussian_law": "the exact law of the RM iterates for linear g and Gaussian "
    "noise, which the iterates are compared with",
    "impl.rl.approximation.dvoretzky.second_moment": "the exact second-moment recursion the "
    "iterates' mean squares are compared with",
    "impl.rl.approximation.conditions": "measures the RM conditions on the inputs (partial sums "
    "of a_k and a_k^2, extremes of g') and builds the steps c_k / k: SA-09 and SA-11 are facts "
    "of step sizes and of g, not of an algorithm",
    "impl.rl.approximation.gradient_descent.mean_objective_grad": "the gradient w - x of the "
    "mean objective 1/2 |w - x|^2, the objective the descent methods run on",
    "impl.rl.approximation.gradient_descent.sample_batches": "draws the mini-batch indices fed to "
    "mbgd",
}

ADAPTERS = {"reference": Reference, "off-by-one-mean": OffByOneMean}
