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


ADAPTERS = {"reference": Reference, "off-by-one-mean": OffByOneMean}
