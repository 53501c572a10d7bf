"""The denoiser eps_theta(z_t, t, tau(y)): a small UNet with cross-attention to the text (SD-02).

    ResBlock:     h = conv(SiLU(GN(x))) + W_t emb(t);  out = x' + conv(SiLU(GN(h)))
    Transformer:  h += SelfAttn(LN(h));  h += CrossAttn(LN(h), tau);  h += MLP(LN(h))
                  CrossAttn: queries from the image features (B, h w, C), keys and values from
                  the text encoding (B, L, D), softmax(Q K^T / sqrt(d)) V with the text's
                  key-padding mask (padding tokens get no weight); through impl.attention.tiled.
    UNet:         conv_in -> [ResBlock, Transformer] -> down -> [ResBlock, Transformer] (middle)
                  -> up -> [ResBlock on the concatenated skip, Transformer] -> conv_out
emb(t) is the sinusoidal embedding of the integer timestep followed by an MLP.
"""

import math

import torch

from impl import _checks
from impl.attention import tiled
from impl.diffusion.latent import _args

GROUPS = 8  # GroupNorm's groups: channel counts are multiples of 8


def timestep_embedding(t, dim):
    """(B, dim) sinusoidal embedding [cos(t f), sin(t f)] of timesteps t (B,) >= 0 (integers or
    finite floats); dim a positive even integer."""
    if not isinstance(t, torch.Tensor) or t.dtype.is_complex or t.dtype == torch.bool:
        raise TypeError(
            f"t: expected a real tensor of timesteps, got {getattr(t, 'dtype', t)!r:.60}"
        )
    if t.ndim != 1 or not t.shape[0]:
        raise ValueError(f"t: expected a non-empty (B,) tensor of timesteps, got {tuple(t.shape)}")
    if t.dtype.is_floating_point and not torch.isfinite(t).all():
        raise ValueError("t: has a non-finite entry (nan or inf)")
    if (t < 0).any():
        raise ValueError(f"t: timesteps must be >= 0, got {t.min()}")
    _args.multiple("dim", dim, 2, lo=2)
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResBlock(torch.nn.Module):
    def __init__(self, c_in, c_out, t_dim):
        """c_in, c_out: positive multiples of 8 (GroupNorm's groups); t_dim a positive integer."""
        super().__init__()
        _args.multiple("c_in", c_in, GROUPS)
        _args.multiple("c_out", c_out, GROUPS)
        _checks.integer("t_dim", t_dim, lo=1)
        self.norm1, self.norm2 = torch.nn.GroupNorm(8, c_in), torch.nn.GroupNorm(8, c_out)
        self.conv1 = torch.nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(c_out, c_out, 3, padding=1)
        self.time = torch.nn.Linear(t_dim, c_out)
        self.skip = torch.nn.Conv2d(c_in, c_out, 1) if c_in != c_out else torch.nn.Identity()

    def forward(self, x, emb):
        """x (B, c_in, H, W) and the timestep embedding emb (B, t_dim): finite, module's dtype."""
        dtype = _args.dtype_of(self)
        _args.tensor("x", x, (None, self.conv1.in_channels, None, None), dtype)
        _args.tensor("emb", emb, (x.shape[0], self.time.in_features), dtype)
        h = self.conv1(torch.nn.functional.silu(self.norm1(x))) + self.time(emb)[:, :, None, None]
        return self.skip(x) + self.conv2(torch.nn.functional.silu(self.norm2(h)))


class Attention(torch.nn.Module):
    """Multi-head attention; `context` None is self-attention, else cross-attention."""

    def __init__(self, dim, context_dim, heads):
        """dim, context_dim, heads: positive integers, dim a multiple of heads."""
        super().__init__()
        _checks.integer("dim", dim, lo=1)
        _checks.integer("context_dim", context_dim, lo=1)
        _checks.integer("heads", heads, lo=1)
        if dim % heads:
            raise ValueError(f"dim: must be a multiple of heads = {heads}, got {dim}")
        self.heads = heads
        self.q = torch.nn.Linear(dim, dim, bias=False)
        self.kv = torch.nn.Linear(context_dim, 2 * dim, bias=False)
        self.out = torch.nn.Linear(dim, dim)

    def forward(self, x, context=None, mask=None):
        """x (B, N, dim); context (B, L, context_dim), or None for self-attention; mask (B, L) bool
        (True on real tokens) or None. Finite tensors of the module's dtype."""
        _check_context(
            self,
            "x",
            x,
            (None, None, self.q.in_features),
            context,
            self.kv.in_features,
            mask,
            none=True,
        )
        context = x if context is None else context
        q = self.q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = (
            t.transpose(1, 2)
            for t in self.kv(context).unflatten(-1, (2, self.heads, -1)).unbind(-3)
        )
        o = tiled.attention(q, k, v, key_padding_mask=mask)[0]
        return self.out(o.transpose(1, 2).flatten(-2))


class Transformer(torch.nn.Module):
    def __init__(self, channels, context_dim, heads=4):
        """channels: a positive multiple of 8 (GroupNorm's groups) and of heads; context_dim,
        heads: positive integers."""
        super().__init__()
        _args.multiple("channels", channels, GROUPS)
        _checks.integer("context_dim", context_dim, lo=1)
        _checks.integer("heads", heads, lo=1)
        if channels % heads:
            raise ValueError(f"channels: must be a multiple of heads = {heads}, got {channels}")
        self.norm_in = torch.nn.GroupNorm(8, channels)
        self.ln1, self.ln2, self.ln3 = (torch.nn.LayerNorm(channels) for _ in range(3))
        self.self_attn = Attention(channels, channels, heads)
        self.cross_attn = Attention(channels, context_dim, heads)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(channels, 4 * channels), torch.nn.GELU(),
                                       torch.nn.Linear(4 * channels, channels))  # fmt: skip

    def forward(self, x, context, mask):
        """x (B, channels, H, W), context (B, L, context_dim), mask (B, L) bool or None: finite
        tensors of the module's dtype."""
        shape = (None, self.norm_in.num_channels, None, None)
        _check_context(self, "x", x, shape, context, self.cross_attn.kv.in_features, mask)
        B, C, H, W = x.shape
        h = self.norm_in(x).flatten(2).transpose(1, 2)  # (B, H W, C)
        h = h + self.self_attn(self.ln1(h))
        h = h + self.cross_attn(self.ln2(h), context, mask)
        h = h + self.mlp(self.ln3(h))
        return x + h.transpose(1, 2).reshape(B, C, H, W)


class UNet(torch.nn.Module):
    def __init__(self, latent=4, channels=(64, 128), context_dim=64, t_dim=128, heads=4,
                 head_dim=None):  # fmt: skip
        """latent, context_dim: positive integers; channels: two positive multiples of 8;
        t_dim: a positive even integer. Attention heads per stage: `heads` in every stage (SD 1.x's
        convention; a positive integer dividing both channels), or with `head_dim` (a positive
        integer dividing both channels; SD 2.0's convention) channels / head_dim heads (SD-11)."""
        super().__init__()
        _checks.integer("latent", latent, lo=1)
        c0, c1 = _args.sizes("channels", channels, 2, multiple=GROUPS)
        _checks.integer("context_dim", context_dim, lo=1)
        _args.multiple("t_dim", t_dim, 2, lo=2)
        if head_dim is None:
            _checks.integer("heads", heads, lo=1)
            if c0 % heads or c1 % heads:
                raise ValueError(f"heads: must divide both channels {channels}, got {heads}")
            h0 = h1 = heads
        else:
            _checks.integer("head_dim", head_dim, lo=1)
            if c0 % head_dim or c1 % head_dim:
                raise ValueError(f"head_dim: must divide both channels {channels}, got {head_dim}")
            h0, h1 = c0 // head_dim, c1 // head_dim
        self.t_dim, self.context_dim = t_dim, context_dim
        self.time_mlp = torch.nn.Sequential(torch.nn.Linear(t_dim, t_dim), torch.nn.SiLU(),
                                            torch.nn.Linear(t_dim, t_dim))  # fmt: skip
        self.conv_in = torch.nn.Conv2d(latent, c0, 3, padding=1)
        self.down_res = ResBlock(c0, c0, t_dim)
        self.down_attn = Transformer(c0, context_dim, h0)
        self.down = torch.nn.Conv2d(c0, c1, 3, stride=2, padding=1)
        self.mid_res, self.mid_attn = ResBlock(c1, c1, t_dim), Transformer(c1, context_dim, h1)
        self.up = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2),
                                      torch.nn.Conv2d(c1, c0, 3, padding=1))  # fmt: skip
        self.up_res, self.up_attn = ResBlock(2 * c0, c0, t_dim), Transformer(c0, context_dim, h0)
        self.conv_out = torch.nn.Sequential(torch.nn.GroupNorm(8, c0), torch.nn.SiLU(),
                                            torch.nn.Conv2d(c0, latent, 3, padding=1))  # fmt: skip

    def forward(self, z, t, context, mask):
        """eps_theta(z_t, t, tau): z (B, 4, h, w) with even h, w; t (B,) integer timesteps;
        context (B, L, context_dim) and its key-padding mask (B, L) bool or None. Finite tensors
        of the module's dtype; t non-negative integers."""
        _checks.tensor("z", z, ndim=4, finite=False)
        if z.shape[-1] % 2 or z.shape[-2] % 2:
            raise ValueError(f"z: latent height and width must be even, got {tuple(z.shape)}")
        shape, context_dim = (None, self.conv_in.in_channels, None, None), self.context_dim
        _check_context(self, "z", z, shape, context, context_dim, mask)
        if not isinstance(t, torch.Tensor) or t.dtype.is_floating_point or t.dtype.is_complex:
            raise TypeError(f"t: expected an integer tensor, got {getattr(t, 'dtype', t)!r:.60}")
        if t.dtype == torch.bool or tuple(t.shape) != (z.shape[0],):
            raise ValueError(
                f"t: expected ({z.shape[0]},) integer timesteps, got {tuple(t.shape)} {t.dtype}"
            )
        if (t < 0).any():
            raise ValueError(f"t: timesteps must be >= 0, got {t.min()}")
        emb = self.time_mlp(timestep_embedding(t, self.t_dim))
        h0 = self.down_attn(self.down_res(self.conv_in(z), emb), context, mask)
        h = self.mid_attn(self.mid_res(self.down(h0), emb), context, mask)
        h = self.up_attn(self.up_res(torch.cat([self.up(h), h0], dim=1), emb), context, mask)
        return self.conv_out(h)


def _check_context(module, x_name, x, x_shape, context, context_dim, mask, none=False):
    """x of x_shape; context (B, L, context_dim), or None if `none` (self-attention); mask (B, L)
    bool or None; tensors finite, of the module's dtype."""
    dtype = _args.dtype_of(module)
    _args.tensor(x_name, x, x_shape, dtype)
    if context is None and none:
        _args.mask("mask", mask, x.shape[:2])
        return
    _args.tensor("context", context, (x.shape[0], None, context_dim), dtype)
    _args.mask("mask", mask, context.shape[:2])
