"""The DDIM article's own derivation steps and code (seed article 1, full text: its sampling and
interpolation code), named as the article names them, beside the project's DDIM in ddim.py.

Derivation (abar_t = a, abar_tau = b, tau < t; lambda, k from ddim.coefficients):
(1) the ansatz x_tau = lambda x_0 + k x_t + sigma eps_tau with x_t = sqrt(a) x_0 + sqrt(1 - a) eps_t
    has, given x_0, the noise k sqrt(1 - a) eps_t + sigma eps_tau. The article merges it into
    sqrt(k^2 (1 - a) + sigma^2) eps "because eps_t and eps_tau both follow the standard normal
    distribution"; with correlation rho between eps_t and eps_tau its variance is
        Var(x_tau | x_0) = k^2 (1 - a) + sigma^2 + 2 rho k sqrt(1 - a) sigma     (ansatz_variance)
    which is 1 - b (the forward marginal's) at rho = 0 only (k, sigma > 0).

The article's sampler (class DDIM; float32 arrays, 0-based, as its code):
    betas = linspace(beta_start, beta_end, T); alphas = 1 - betas; alphas_cumprod = cumprod(alphas)
    (so alphas_cumprod[0] = 1 - beta_1 = 0.9999: index 0 is NOT the data, whose abar is 1);
    timesteps = linspace(T - 1, 0, sample_steps).long(); for (t, tau) in consecutive pairs:
    (2) sigma_t = eta sqrt((1 - alphas_cumprod[tau]) (1 - alphas[t]) / (1 - alphas_cumprod[t]))
        (the single-step alphas[t]; sigma_t = 0 when eta is 0)
    (3) first_term  = sqrt(alphas_cumprod[tau]) (x_t - sqrt(1 - alphas_cumprod[t]) eps) /
                      sqrt(alphas_cumprod[t])      (= sqrt(abar_tau) x0_hat)
        second_term = sqrt(1 - alphas_cumprod[tau] - sigma_t^2) eps
        x_tau = first_term + second_term + sigma_t epsilon,  epsilon = randn (drawn at every step)
    The last step goes to tau = 0, and the sampler returns that tensor mapped by
    (4) image = clamp(x/2 + 0.5, 0, 1)            (to_image; 8 bits: round(255 image), to_uint8)
    At eta = 0 the returned tensor is sqrt(abar[0]) x0_hat + sqrt(1 - abar[0]) eps_theta
    = x0_hat + (sqrt(0.9999) - 1) x0_hat + 0.01 eps_theta, not x0_hat.

The article's interpolation (slerp, interpolation_grid):
(5) slerp(x0, x1, alpha) = sin((1 - alpha) theta)/sin(theta) x0 + sin(alpha theta)/sin(theta) x1,
    theta = arccos(sum(x0 * x1) / (||x0|| ||x1||)) with the sum and the norms over the WHOLE tensor
    ("todo: separate each batch?"): a stack of rows shares one theta and one pair of weights.
(6) interpolation_grid(rows, cols, ...): four corners from N(0, I) (top left, top right, bottom
    left, bottom right, in that order), the first and last columns by (5) between each column's
    top and bottom corners with alpha = row/(rows - 1), then every middle column at once:
    images[col::cols] = slerp(images[0::cols], images[cols-1::cols], col/(cols - 1)).
"""

import math

import torch

from impl import _checks
from impl.diffusion import ddim
from impl.diffusion.schedules import _model_output

# (1) ------------------------------------------------------------------------------------------


def ansatz_variance(a, b, sigma, rho):
    """(1): Var(x_tau | x_0) of the ansatz with lambda, k from ddim.coefficients, when eps_t and
    eps_tau are standard normals with correlation rho in [-1, 1]; a, b, sigma as in
    ddim.coefficients."""
    _checks.scalar("rho", rho, -1, 1)
    _, k = ddim.coefficients(a, b, sigma)
    s = (1 - float(a)) ** 0.5
    return k**2 * s**2 + float(sigma) ** 2 + 2 * float(rho) * k * s * float(sigma)


def correlated_normals(rho, n, generator=None):
    """(eps_t, eps_tau): n draws (float64) of a pair of standard normals with correlation rho in
    [-1, 1]: eps_tau = rho eps_t + sqrt(1 - rho^2) w, w independent of eps_t."""
    rho = float(_checks.scalar("rho", rho, -1, 1))
    n = _checks.positive_int("n", n)
    _checks.generator("generator", generator)
    eps_t, w = torch.randn(2, n, generator=generator, dtype=torch.float64)
    return eps_t, rho * eps_t + (1 - rho**2) ** 0.5 * w


# (2)-(4): the article's sampler ---------------------------------------------------------------


def article_alphas_cumprod(alphas):
    """The article's alphas_cumprod = cumprod(alphas), 0-based: entry t is abar of timestep t + 1
    in DDPM's 1-based notation (entry 0 = 1 - beta_1). alphas: a 1-D tensor in (0, 1]."""
    _checks.tensor("alphas", alphas, ndim=1)
    if alphas.numel() == 0 or not torch.all((alphas > 0) & (alphas <= 1)):
        raise ValueError("alphas: expected a non-empty sequence of values in (0, 1]")
    return torch.cumprod(alphas, dim=0)


class DDIM:
    """The article's class DDIM, its arrays in `dtype` (the article's: float32)."""

    def __init__(self, num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, sample_steps=20,
                 dtype=torch.float32):  # fmt: skip
        T = _checks.positive_int("num_train_timesteps", num_train_timesteps)
        _checks.real("beta_start", beta_start, 0, 1, lo_open=True, hi_open=True)
        _checks.real("beta_end", beta_end, 0, 1, lo_open=True, hi_open=True)
        n = _checks.positive_int("sample_steps", sample_steps)
        if n > T:
            raise ValueError(
                f"sample_steps: {n} steps exceed the {T} timesteps (they would repeat)"
            )
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
        self.num_train_timesteps = T
        self.betas = torch.linspace(beta_start, beta_end, T, dtype=dtype)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = article_alphas_cumprod(self.alphas)
        self.timesteps = torch.linspace(T - 1, 0, n).long()  # the article's float32 linspace

    def _index(self, name, t):
        if isinstance(t, torch.Tensor) and t.ndim == 0 and not t.dtype.is_floating_point:
            t = int(t)
        return _checks.integer(name, t, 0, self.num_train_timesteps - 1)

    def sigma(self, t, tau, eta):
        """(2) on the step from timestep t to tau < t (integers); eta >= 0."""
        t, tau = self._index("t", t), self._index("tau", tau)
        if tau >= t:
            raise ValueError(f"tau: must be below t = {t}, got {tau}")
        _checks.scalar("eta", eta, 0)
        if math.isclose(eta, 0.0):
            return torch.zeros_like(self.alphas[0])
        one_minus_alpha_prod_tau = 1.0 - self.alphas_cumprod[tau]
        one_minus_alpha_prod_t = 1.0 - self.alphas_cumprod[t]
        one_minus_alpha_t = 1.0 - self.alphas[t]
        return eta * (one_minus_alpha_prod_tau * one_minus_alpha_t / one_minus_alpha_prod_t) ** 0.5

    def predicted_x0(self, images, pred_noise, t):
        """x0_hat = (x_t - sqrt(1 - alphas_cumprod[t]) eps) / sqrt(alphas_cumprod[t]): the
        article's first term without its factor sqrt(alphas_cumprod[tau])."""
        _checks.pair("images", images, "pred_noise", pred_noise)
        a = self.alphas_cumprod[self._index("t", t)]
        return (images - (1.0 - a) ** 0.5 * pred_noise) / a**0.5

    def step(self, images, pred_noise, t, tau, eta, epsilon):
        """(3): x_tau from x_t = images and the model's pred_noise (finite tensors of one shape);
        epsilon a finite tensor of that shape (the article draws it at every step; it is
        multiplied by sigma_t = 0 at eta = 0). sigma_t^2 > 1 - abar_tau (eta too large, a NaN in
        the article's code) is a ValueError naming eta."""
        _checks.pair("images", images, "pred_noise", pred_noise)
        _checks.pair("images", images, "epsilon", epsilon)
        sigma_t = self.sigma(t, tau, eta)
        alphas_cumprod_tau = self.alphas_cumprod[tau]
        if sigma_t**2 > 1.0 - alphas_cumprod_tau:
            raise ValueError(
                f"eta: {eta!r} gives sigma_t^2 = {float(sigma_t**2)!r} > 1 - abar_tau = "
                f"{float(1.0 - alphas_cumprod_tau)!r} on the step {t} -> {tau}"
            )
        # first term of x_tau
        first_term = alphas_cumprod_tau**0.5 * self.predicted_x0(images, pred_noise, t)
        # second term of x_tau
        coeff = (1.0 - alphas_cumprod_tau - sigma_t**2) ** 0.5
        second_term = coeff * pred_noise
        return first_term + second_term + sigma_t * epsilon

    def sample(self, eps_model, x_T, eta=0.0, generator=None, trace=None):
        """The article's sample() from x_T (its interpolation grid, or any finite tensor in the
        arrays' dtype), returned BEFORE its mapping to [0, 1] (to_image). eps_model(x, t) -> eps
        of x's shape, t an int; epsilon ~ N(0, I) from `generator` at every step, as the
        article's randn_like. trace: None, or a list that gets one dict per step (t, tau, x_t,
        pred_noise, x0_hat, sigma)."""
        _checks.function("eps_model", eps_model)
        _checks.tensor("x_T", x_T)
        if x_T.dtype != self.betas.dtype:
            raise TypeError(f"x_T: dtype {x_T.dtype}, the sampler's arrays are {self.betas.dtype}")
        _checks.scalar("eta", eta, 0)
        _checks.generator("generator", generator)
        if trace is not None and not isinstance(trace, list):
            raise TypeError(f"trace: expected a list or None, got {type(trace).__name__}")
        images = x_T
        ts = self.timesteps.tolist()
        for t, tau in zip(ts[:-1], ts[1:], strict=True):
            pred_noise = _model_output(eps_model(images, t), images, t)
            epsilon = torch.randn(images.shape, generator=generator, dtype=images.dtype)
            out = self.step(images, pred_noise, t, tau, eta, epsilon)
            if trace is not None:
                trace.append(dict(t=t, tau=tau, x_t=images, pred_noise=pred_noise,
                                  x0_hat=self.predicted_x0(images, pred_noise, t),
                                  sigma=float(self.sigma(t, tau, eta))))  # fmt: skip
            images = out
        return images


def to_image(images):
    """(4): the article's (images / 2 + 0.5).clamp(0, 1); images a tensor (NaN passes through,
    as in the article's code)."""
    _checks.tensor("images", images, finite=False)
    return (images / 2.0 + 0.5).clamp(0, 1)


def to_uint8(image):
    """8-bit pixel values of an image in [0, 1] as diffusers' numpy_to_pil makes them:
    round(255 image) (round half to even); image a finite tensor with values in [0, 1]."""
    _checks.tensor("image", image)
    if image.numel() and not (image.min() >= 0 and image.max() <= 1):
        raise ValueError("image: values must lie in [0, 1] (map with to_image first)")
    return (image * 255).round().to(torch.uint8)


# (5)-(6): the article's interpolation --------------------------------------------------------


def slerp(x0, x1, alpha):
    """(5), the article's code: one theta over the whole tensors. x0, x1 non-zero real tensors
    of one shape (a NaN entry passes through, as in the article's code: the grid feeds a NaN
    column back into slerp); alpha in [0, 1]. Parallel endpoints (theta = 0, or the rounded
    cosine above 1) give NaN, as the article's code does."""
    _checks.pair("x0", x0, "x1", x1, finite=False)
    _checks.real("alpha", alpha, 0, 1)
    for name, x in (("x0", x0), ("x1", x1)):
        if not torch.any(x != 0):
            raise ValueError(f"{name}: has zero norm: no direction to interpolate")
    # todo: separate each batch?  (the article's comment)
    theta = torch.acos(torch.sum(x0 * x1) / (torch.norm(x0) * torch.norm(x1)))
    w0 = torch.sin((1.0 - alpha) * theta) / torch.sin(theta)
    w1 = torch.sin(alpha * theta) / torch.sin(theta)
    return w0 * x0 + w1 * x1


def grid_from_corners(top_left, top_right, bottom_left, bottom_right, rows, cols):
    """(6) from given corners: a (rows * cols, *shape) tensor, row-major, filled by the article's
    loops with its slerp. Corners: finite non-zero tensors of one shape and dtype; rows, cols
    integers >= 2."""
    corners = (("top_left", top_left), ("top_right", top_right), ("bottom_left", bottom_left),
               ("bottom_right", bottom_right))  # fmt: skip
    for name, c in corners[1:]:
        _checks.pair("top_left", top_left, name, c)
        if c.dtype != top_left.dtype:
            raise TypeError(f"{name}: dtype {c.dtype} differs from top_left's {top_left.dtype}")
    for name, c in corners:
        if not torch.any(c != 0):
            raise ValueError(f"{name}: has zero norm: no direction to interpolate")
    rows = _checks.integer("rows", rows, 2)
    cols = _checks.integer("cols", cols, 2)
    images = torch.zeros((rows * cols, *top_left.shape), dtype=top_left.dtype)
    images[0] = top_left
    images[cols - 1] = top_right
    images[(rows - 1) * cols] = bottom_left
    images[-1] = bottom_right
    for row in range(1, rows - 1):  # interpolate left most column and right most column
        alpha = row / (rows - 1)
        images[row * cols] = slerp(images[0], images[(rows - 1) * cols], alpha)
        images[(row + 1) * cols - 1] = slerp(images[cols - 1], images[-1], alpha)
    for col in range(1, cols - 1):  # interpolate others
        alpha = col / (cols - 1)
        images[col::cols] = slerp(images[0::cols], images[cols - 1 :: cols], alpha)
    return images


def interpolation_grid(rows, cols, in_channels, sample_size, generator=None,
                       dtype=torch.float32):  # fmt: skip
    """(6): the article's interpolation_grid, its corners drawn from `generator` (None: torch's
    global generator, as the article's randn_like) in the order top left, top right, bottom
    left, bottom right; shape (rows * cols, in_channels, sample_size, sample_size) in `dtype`
    (the article's: float32). rows, cols integers >= 2; in_channels, sample_size positive."""
    _checks.integer("rows", rows, 2)
    _checks.integer("cols", cols, 2)
    shape = (_checks.positive_int("in_channels", in_channels),
             _checks.positive_int("sample_size", sample_size), sample_size)  # fmt: skip
    _checks.generator("generator", generator)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    corners = [torch.randn(shape, generator=generator, dtype=dtype) for _ in range(4)]
    return grid_from_corners(*corners, rows, cols)
