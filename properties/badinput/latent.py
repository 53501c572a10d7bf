"""Bad-input specs: impl/diffusion/latent/ (the tiny Stable Diffusion): the autoencoder, the
synthetic data and the judge, the text encoder, the UNet, the pipeline, training, the safetensors
files and the two commands (sample.main, train.main).

The modules are built once, small, at import (no call mutates them, except the training calls,
which get a copy). Files go to a temporary directory. The commands are specced per option: the
wrong argument is the option's destination (`steps` for --steps) and `cli` runs the command with
argv built from the options; argparse's usage error (SystemExit 2, its message on stderr) becomes
a ValueError that starts with the destination of the option argparse names, so an error must name
the option that was wrong."""

import atexit
import contextlib
import copy
import io
import math
import os
import re
import shutil
import tempfile
from fractions import Fraction

import torch
from hypothesis import strategies as st
from safetensors.torch import save_file

from impl.diffusion.latent import autoencoder, data, pipeline, sample, text, train, unet
from properties.badinput import spec, wrong
from properties.badinput.wrong import (
    Maker,
    also,
    bad_choice,
    bad_int,
    empty,
    mismatched,
    not_a_number,
    not_a_tensor,
    not_callable,
    not_finite,
    outside,
    reshaped,
    values,
)

PREFIX = "impl.diffusion.latent"
TMP = tempfile.mkdtemp(prefix="badinput-latent-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)  # ~60 MB of model files


def randn(*shape, dtype=torch.float32):  # the tiny SD runs in float32
    return wrong.randn(*shape, dtype=dtype)


def retyped(*dtypes):
    """The valid tensor converted to another dtype (a float64 tensor for a float32 module, an
    integer or bool tensor where floats are expected, or floats where integers or bools are)."""
    return Maker(
        lambda kwargs, arg: st.sampled_from(dtypes).map(lambda d: kwargs[arg].to(d)),
        f"retyped{dtypes!r}",
    )


def token_ids_outside(kwargs, arg):
    """One token id outside the vocabulary [0, len(VOCAB))."""

    @st.composite
    def broken(draw):
        ids = kwargs[arg].clone()
        k = draw(st.integers(0, ids.numel() - 1))
        ids.view(-1)[k] = draw(st.sampled_from([-1, len(text.VOCAB), 10**6]))
        return ids

    return broken()


ids_outside = Maker(token_ids_outside, "ids_outside")


def no_key(kwargs, arg):
    """A key-padding mask with one row all False: that query attends to no key."""

    @st.composite
    def broken(draw):
        mask = kwargs[arg].clone()
        mask[draw(st.integers(0, mask.shape[0] - 1))] = False
        return mask

    return broken()


masked_row = Maker(no_key, "masked_row")
not_a_generator = values("seed", 3, torch.zeros(2))
not_a_mask = values("x", {"x": 1}, [[True] * 8] * 2)  # None is no padding, a valid mask
a_tensor = [not_a_tensor, not_finite]

GENERATOR = torch.Generator().manual_seed(0)
B, L, D = 2, 8, 16  # batch, text length, text width of the small modules below

torch.manual_seed(0)
AE = autoencoder.Autoencoder(channels=(8, 8, 8))
TE = text.TextEncoder(dim=D, heads=2, layers=1)
RES = unet.ResBlock(8, 16, 8)
ATT = unet.Attention(16, D, 2)
TRANS = unet.Transformer(8, D, heads=2)
UNET = unet.UNet(channels=(8, 16), context_dim=D, t_dim=8)
MODEL = train.TinySD(size=16, scale=0.7)  # the default text encoder, UNet and autoencoder
IDS, MASK = text.tokenize(["a red circle on the left", ""])
PROMPTS = ["a red circle on the left", "a blue square"]
IMAGES, CAPTIONS, PICKS = data.sample(2, 16, torch.Generator().manual_seed(0))

# --- autoencoder.py ---------------------------------------------------------------------------

spec(
    f"{PREFIX}.autoencoder.Autoencoder",
    valid=lambda: dict(channels=(8, 8, 8), latent=4),
    wrong=dict(
        channels=[values(None, 8, (8, 8), (8, 8, 8, 8), (0, 8, 8), (8, -8, 8), (8.0, 8, 8), "abc")],
        latent=[bad_int(1)],
    ),
)
spec(
    f"{PREFIX}.autoencoder.Autoencoder.encode",
    valid=lambda: dict(self=AE, x=randn(1, 3, 8, 16)),
    wrong=dict(
        x=[
            *a_tensor,
            reshaped,
            mismatched(axis=1),
            mismatched(axis=2),
            mismatched(axis=3),
            retyped(torch.float64, torch.int64),
        ]
    ),
    call=lambda self, **kw: self.encode(**kw),
)
spec(
    f"{PREFIX}.autoencoder.Autoencoder.decode",
    valid=lambda: dict(self=AE, z=randn(2, 4, 1, 2)),
    wrong=dict(z=[*a_tensor, reshaped, mismatched(axis=1), retyped(torch.float64, torch.int64)]),
    call=lambda self, **kw: self.decode(**kw),
)
spec(
    f"{PREFIX}.autoencoder.Autoencoder.sample",
    valid=lambda: dict(mean=randn(2, 4, 1, 2), log_var=randn(2, 4, 1, 2), generator=GENERATOR),
    wrong=dict(
        mean=[*a_tensor, retyped(torch.int64)],
        log_var=[*a_tensor, also("mean")(mismatched()), retyped(torch.float64, torch.int64)],
        generator=[not_a_generator],
    ),
    call=autoencoder.Autoencoder.sample,
)
spec(
    f"{PREFIX}.autoencoder.Autoencoder.kl",
    valid=lambda: dict(mean=randn(2, 4, 1, 2), log_var=randn(2, 4, 1, 2)),
    wrong=dict(
        mean=[*a_tensor, also("log_var")(reshaped), retyped(torch.int64)],
        log_var=[*a_tensor, also("mean")(mismatched()), retyped(torch.float64, torch.int64)],
    ),
    call=autoencoder.Autoencoder.kl,
)
spec(
    f"{PREFIX}.autoencoder.scale_factor",
    valid=lambda: dict(latents=randn(2, 4, 1, 2)),
    wrong=dict(latents=[*a_tensor, empty, values(torch.ones(2, 4, 1, 2), torch.zeros(1))]),
)
for name in ("to_diffusion", "from_diffusion"):
    spec(
        f"{PREFIX}.autoencoder.{name}",
        valid=lambda: dict(z=randn(2, 4, 1, 2), scale=0.18215),
        wrong=dict(
            z=[*a_tensor, retyped(torch.int64)],
            scale=[outside(0, None, lo_open=True), not_finite, not_a_number],
        ),
    )

# --- data.py, judge.py ------------------------------------------------------------------------

spec(
    f"{PREFIX}.data.caption",
    valid=lambda: dict(colour="red", shape="circle", region="left"),
    wrong=dict(
        colour=[bad_choice(*data.COLOURS)],
        shape=[bad_choice(*data.SHAPES)],
        region=[bad_choice(*data.REGIONS)],
    ),
)
spec(
    f"{PREFIX}.data.image",
    valid=lambda: dict(colour="red", shape="circle", region="left", size=16, radius=0.17),
    wrong=dict(
        colour=[bad_choice(*data.COLOURS)],
        shape=[bad_choice(*data.SHAPES)],
        region=[bad_choice(*data.REGIONS)],
        size=[bad_int(8), values(12, 30)],
        radius=[outside(0, 0.25, lo_open=True), not_finite, not_a_number],
    ),
)
spec(
    f"{PREFIX}.data.sample",
    valid=lambda: dict(n=2, size=16, generator=torch.Generator().manual_seed(0)),
    wrong=dict(n=[bad_int(1)], size=[bad_int(8), values(12, 30)], generator=[not_a_generator]),
)
spec(
    f"{PREFIX}.judge.judge",
    valid=lambda: dict(image=IMAGES[0].clone()),
    wrong=dict(image=[*a_tensor, reshaped, mismatched(axis=0), empty, retyped(torch.int64)]),
)
spec(
    f"{PREFIX}.judge.adherence",
    valid=lambda: dict(images=IMAGES.clone(), picks=list(PICKS)),
    wrong=dict(
        images=[*a_tensor, reshaped, empty, mismatched(axis=1), retyped(torch.int64)],
        picks=[
            also("images")(mismatched(axis=0)),
            values(
                None,
                "a red circle",
                [("red", "circle")] * 2,
                [("purple", "circle", "left")] * 2,
                [("red", "circle", "middle")] * 2,
                [("red", "oval", "left")] * 2,
                [3, 4],
            ),
        ],
    ),
)

# --- text.py ----------------------------------------------------------------------------------

spec(
    f"{PREFIX}.text.tokenize",
    valid=lambda: dict(prompts=list(PROMPTS), max_len=8, truncate=False),
    wrong=dict(
        prompts=[
            values(
                None,
                "a red circle",
                [3],
                ["a purple circle"],
                ["a red circle."],
                [" ".join(["a red circle"] * 3)],
                [b"a red circle"],
            )
        ],
        max_len=[bad_int(1)],
        truncate=[values(None, 1, 0, "yes", "False")],
    ),
)
spec(
    f"{PREFIX}.text.TextEncoder",
    valid=lambda: dict(dim=D, heads=2, layers=1, max_len=8),
    wrong=dict(
        dim=[bad_int(1), values(15)],
        heads=[bad_int(1), also("dim")(values(3, 32))],
        layers=[bad_int(1)],
        max_len=[bad_int(1)],
    ),
)
spec(
    f"{PREFIX}.text.TextEncoder.forward",
    valid=lambda: dict(self=TE, ids=IDS.clone(), mask=MASK.clone()),
    wrong=dict(
        ids=[
            not_a_tensor,
            reshaped,
            ids_outside,
            retyped(torch.float32),
            values(torch.zeros(2, 9, dtype=torch.int64)),
        ],
        mask=[
            not_a_mask,
            also("ids")(mismatched()),
            retyped(torch.float32, torch.int64),
            masked_row,
        ],
    ),
    call=lambda self, **kw: self(**kw),
)

# --- unet.py ----------------------------------------------------------------------------------

spec(
    f"{PREFIX}.unet.timestep_embedding",
    valid=lambda: dict(t=torch.tensor([0, 500, 999]), dim=8),
    wrong=dict(
        t=[
            not_a_tensor,
            not_finite,
            reshaped,
            empty,
            values(torch.tensor([True, False]), torch.tensor([1j, 2j]), torch.tensor([-1, 5])),
        ],
        dim=[bad_int(2), values(7)],
    ),
)
spec(
    f"{PREFIX}.unet.ResBlock",
    valid=lambda: dict(c_in=8, c_out=16, t_dim=8),
    wrong=dict(c_in=[bad_int(8), values(12)], c_out=[bad_int(8), values(12)], t_dim=[bad_int(1)]),
)
spec(
    f"{PREFIX}.unet.ResBlock.forward",
    valid=lambda: dict(self=RES, x=randn(2, 8, 2, 2), emb=randn(2, 8)),
    wrong=dict(
        x=[*a_tensor, reshaped, mismatched(axis=1), retyped(torch.float64)],
        emb=[*a_tensor, reshaped, also("x")(mismatched()), retyped(torch.float64)],
    ),
    call=lambda self, **kw: self(**kw),
)
spec(
    f"{PREFIX}.unet.Attention",
    valid=lambda: dict(dim=16, context_dim=D, heads=2),
    wrong=dict(
        dim=[bad_int(1), values(15)],
        context_dim=[bad_int(1)],
        heads=[bad_int(1), also("dim")(values(3))],
    ),
)
spec(
    f"{PREFIX}.unet.Attention.forward",
    valid=lambda: dict(self=ATT, x=randn(2, 4, 16), context=randn(2, L, D), mask=MASK.clone()),
    wrong=dict(
        x=[*a_tensor, reshaped, mismatched(axis=2), retyped(torch.float64)],
        # context None is self-attention, a valid call
        context=[
            values("x", {"x": 1}),
            not_finite,
            reshaped,
            also("x", "mask")(mismatched()),
            retyped(torch.float64),
        ],
        mask=[not_a_mask, also("context")(mismatched()), retyped(torch.float32), masked_row],
    ),
    call=lambda self, **kw: self(**kw),
)
spec(
    f"{PREFIX}.unet.Transformer",
    valid=lambda: dict(channels=8, context_dim=D, heads=2),
    wrong=dict(
        channels=[bad_int(8), values(12)],
        context_dim=[bad_int(1)],
        heads=[bad_int(1), also("channels")(values(3))],
    ),
)
spec(
    f"{PREFIX}.unet.Transformer.forward",
    valid=lambda: dict(self=TRANS, x=randn(2, 8, 2, 2), context=randn(2, L, D), mask=MASK.clone()),
    wrong=dict(
        x=[*a_tensor, reshaped, mismatched(axis=1), retyped(torch.float64)],
        context=[*a_tensor, reshaped, also("x", "mask")(mismatched()), retyped(torch.float64)],
        mask=[not_a_mask, also("context")(mismatched()), retyped(torch.float32), masked_row],
    ),
    call=lambda self, **kw: self(**kw),
)
spec(
    f"{PREFIX}.unet.UNet",
    valid=lambda: dict(latent=4, channels=(8, 16), context_dim=D, t_dim=8, heads=4, head_dim=None),
    wrong=dict(
        latent=[bad_int(1)],
        channels=[values(None, 8, (8,), (8, 16, 32), (12, 16), (0, 16), (8.0, 16), "ab")],
        context_dim=[bad_int(1)],
        t_dim=[bad_int(2), values(7)],
        heads=[bad_int(1), values(3, 16)],  # 3 divides neither channel count, 16 not 8
        head_dim=[values(0, -8, 2.5, "8", True, 3, 16)],  # None (the default) is valid
    ),
)
spec(
    f"{PREFIX}.unet.UNet.forward",
    valid=lambda: dict(
        self=UNET,
        z=randn(2, 4, 2, 2),
        t=torch.tensor([1, 999]),
        context=randn(2, L, D),
        mask=MASK.clone(),
    ),
    wrong=dict(
        z=[
            *a_tensor,
            reshaped,
            mismatched(axis=1),
            also("context")(mismatched(axis=0)),
            values(randn(2, 4, 3, 2), randn(2, 4, 2, 1)),  # odd h or w
            retyped(torch.float64),
        ],
        t=[
            not_a_tensor,
            also("z")(mismatched()),
            reshaped,
            retyped(torch.float32),
            values(torch.tensor([-1, 5]), torch.tensor([True, False])),
        ],
        context=[*a_tensor, reshaped, also("z", "mask")(mismatched()), retyped(torch.float64)],
        mask=[not_a_mask, also("context")(mismatched()), retyped(torch.float32), masked_row],
    ),
    call=lambda self, **kw: self(**kw),
)

# --- pipeline.py ------------------------------------------------------------------------------

spec(
    f"{PREFIX}.pipeline.scaled_linear_abar",
    valid=lambda: dict(dtype=torch.float32),
    wrong=dict(dtype=[values(None, "float64", torch.int64, torch.bool, torch.complex64, float)]),
)
spec(
    f"{PREFIX}.pipeline.sd_timesteps",
    valid=lambda: dict(steps=20, steps_offset=1),
    wrong=dict(steps=[bad_int(1, pipeline.T)], steps_offset=[bad_int(0, 49)]),
)


def generate_kwargs():
    g = torch.Generator().manual_seed(0)
    cond = (randn(2, 3, 4), torch.tensor([[True, True, False]] * 2))
    uncond = (randn(2, 3, 4) + 1, torch.tensor([[True, False, False]] * 2))
    return dict(
        denoise=lambda z, t, c, m: 0.1 * z, decode=lambda z: z, cond=cond, uncond=uncond,
        steps=2, guidance=3.0, latent_shape=(2, 4, 2, 2), latent_scale=0.5, generator=g,
        eta=0.5, steps_offset=1, abar=pipeline.scaled_linear_abar(), final_abar=None,
        dtype=torch.float32,
    )  # fmt: skip


def bad_pair(kwargs, arg):
    """A (context, mask) pair broken in one way: not a pair, a context of the wrong batch, ndim
    or dtype or with a nan, a mask of the wrong shape or dtype."""
    context, mask = kwargs[arg]
    return st.sampled_from([
        None, context, (context,), (context, mask, mask), ("x", mask), (context[:1], mask[:1]),
        (context[0], mask), (context.double(), mask), (context.int(), mask),
        (torch.full_like(context, math.nan), mask), (context, mask[:, :2]),
        (context, mask.float()), (context, "mask"), (context, torch.zeros_like(mask)),
    ])  # fmt: skip


def bad_abar(kwargs, arg):
    abar = kwargs[arg]
    return st.sampled_from([
        "abar", abar[:10], abar[None], abar.flip(0), abar * 2, abar - 1, abar.to(torch.int64),
        torch.cat([abar[:5], torch.tensor([math.nan]), abar[6:]]),
    ])  # fmt: skip


spec(
    f"{PREFIX}.pipeline.generate",
    valid=generate_kwargs,
    wrong=dict(
        denoise=[not_callable, values(lambda z, t, c, m: z[:1], lambda z, t, c, m: "eps")],
        decode=[not_callable],
        cond=[
            also("uncond")(Maker(bad_pair, "bad_pair"))
        ],  # a mismatch may be named on either side
        uncond=[also("cond")(Maker(bad_pair, "bad_pair"))],
        steps=[bad_int(1, pipeline.T)],
        guidance=[outside(0, None), not_finite, not_a_number],
        latent_shape=[
            also("cond")(
                values(None, 3, (2, 4, 2), (2, 4, 0, 2), (1, 4, 2, 2), (2, 4.0, 2, 2), "abc")
            )
        ],
        latent_scale=[outside(0, None, lo_open=True), not_finite, not_a_number],
        generator=[not_a_generator],
        eta=[outside(0, 1), not_finite, not_a_number],
        steps_offset=[bad_int(0, 499)],
        abar=[Maker(bad_abar, "bad_abar")],
        final_abar=[outside(0, 1, lo_open=True), not_finite, values("0.5")],
        dtype=[values("float32", torch.int64, torch.complex64, None)],
    ),
)

# --- train.py ---------------------------------------------------------------------------------

not_a_model = values(None, "model", torch.nn.Linear(2, 2))
spec(
    f"{PREFIX}.train.TinySD",
    valid=lambda: dict(size=16, scale=0.7),
    wrong=dict(
        size=[bad_int(16), values(24, 40)],
        scale=[outside(0, None, lo_open=True), not_finite, not_a_number],
    ),
)
spec(
    f"{PREFIX}.train.TinySD.encode_prompts",
    valid=lambda: dict(self=MODEL, prompts=list(PROMPTS)),
    wrong=dict(prompts=[values(None, "a red circle", [3], ["a purple circle"])]),
    call=lambda self, **kw: self.encode_prompts(**kw),
)
spec(
    f"{PREFIX}.train.TinySD.generate",
    valid=lambda: dict(
        self=MODEL,
        prompts=["a red circle"],
        guidance=3.0,
        steps=1,
        generator=torch.Generator().manual_seed(0),
        negative_prompt=None,
    ),  # fmt: skip
    wrong=dict(
        prompts=[values(None, "a red circle", [], [3], ["a purple circle"])],
        guidance=[outside(0, None), not_finite, not_a_number],
        steps=[bad_int(1, pipeline.T - 1)],
        generator=[not_a_generator],
        negative_prompt=[values(3, "a purple circle", ["a purple circle"], ["a", "red"], [3])],
    ),
    call=lambda self, **kw: self.generate(**kw),
)
spec(
    f"{PREFIX}.train.denoiser_loss",
    valid=lambda: dict(
        model=MODEL,
        images=IMAGES.clone(),
        captions=list(CAPTIONS),
        generator=torch.Generator().manual_seed(0),
        p_uncond=0.1,
    ),  # fmt: skip
    wrong=dict(
        model=[not_a_model],
        images=[
            *a_tensor,
            reshaped,
            mismatched(axis=1),
            mismatched(axis=2),
            retyped(torch.float64),
        ],
        captions=[
            also("images")(mismatched()),
            values(None, "a red circle", [3, 4], ["a purple circle"] * 2),
        ],
        generator=[not_a_generator],
        p_uncond=[outside(0, 1), not_finite, not_a_number],
    ),
)


# The training calls' own model: a valid call trains it one step further (and sets its scale),
# which leaves it a valid model; a copy per call would cost 0.2 s, 40 times per spec.
TRAIN = copy.deepcopy(MODEL)


def one_thread(f):
    """f called with torch on one thread: the valid training calls stay well within the time
    limit on a shared machine, where torch's threads would only contend."""

    def call(**kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return f(**kwargs)
        finally:
            torch.set_num_threads(threads)

    return call


spec(
    f"{PREFIX}.train.train",
    valid=lambda: dict(model=TRAIN, ae_steps=1, steps=1, batch=2, beta=1e-4, seed=0, log=str),
    wrong=dict(
        model=[not_a_model],
        ae_steps=[bad_int(0)],
        steps=[bad_int(0)],
        batch=[bad_int(1)],
        beta=[outside(0, None), not_finite, not_a_number],
        seed=[bad_int(0, 2**64 - 1)],
        log=[not_callable],
    ),
    call=one_thread(train.train),
)
spec(
    f"{PREFIX}.train.train_autoencoder",
    valid=lambda: dict(
        model=TRAIN,
        steps=1,
        batch=2,
        beta=1e-4,
        generator=torch.Generator().manual_seed(0),
        log=str,
    ),  # fmt: skip
    wrong=dict(
        model=[not_a_model],
        steps=[bad_int(0)],
        batch=[bad_int(1)],
        beta=[outside(0, None), not_finite, not_a_number],
        generator=[not_a_generator],
        log=[not_callable],
    ),
    call=one_thread(train.train_autoencoder),
)
spec(
    f"{PREFIX}.train.train_denoiser",
    valid=lambda: dict(
        model=TRAIN,
        steps=1,
        batch=2,
        generator=torch.Generator().manual_seed(0),
        log=str,
        train_text=False,
    ),  # fmt: skip
    wrong=dict(
        model=[not_a_model],
        steps=[bad_int(0)],
        batch=[bad_int(1)],
        generator=[not_a_generator],
        log=[not_callable],
        train_text=[values(None, 0, 1, "no")],
    ),
    call=one_thread(train.train_denoiser),
)
spec(
    f"{PREFIX}.train.latent_scale",
    valid=lambda: dict(ae=AE, images=IMAGES.clone()),
    wrong=dict(
        ae=[values(None, "ae", MODEL)],
        images=[
            *a_tensor,
            reshaped,
            empty,
            mismatched(axis=1),
            mismatched(axis=2),
            retyped(torch.float64),
        ],
    ),
)

SAVED = os.path.join(TMP, "tiny-sd.safetensors")
train.save(MODEL, SAVED)


def bad_file(name, tensors=None, **meta):
    """A safetensors file with the model's tensors (or these) and the model's metadata changed."""
    path = os.path.join(TMP, name)
    metadata = {"format": "tiny-sd/1", "size": "16", "scale": "0.7"} | meta
    metadata = {k: v for k, v in metadata.items() if v is not None}
    state = {k: v.contiguous() for k, v in MODEL.state_dict().items()}
    save_file(state if tensors is None else tensors, path, metadata=metadata)
    return path


corrupted = os.path.join(TMP, "corrupted.safetensors")
with open(corrupted, "wb") as f:
    f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
BAD_FILES = [
    bad_file("nan-scale.safetensors", scale="nan"),
    bad_file("inf-scale.safetensors", scale="inf"),
    bad_file("negative-scale.safetensors", scale="-1.0"),
    bad_file("word-scale.safetensors", scale="big"),
    bad_file("no-scale.safetensors", scale=None),
    bad_file("no-size.safetensors", size=None),
    bad_file("word-size.safetensors", size="large"),
    bad_file("odd-size.safetensors", size="24"),
    bad_file("other-format.safetensors", format="tiny-sd/2"),
    bad_file("other-tensors.safetensors", tensors={"w": torch.zeros(2)}),
    corrupted,
    os.path.join(TMP, "missing.safetensors"),
    TMP,
]
spec(
    f"{PREFIX}.train.load",
    valid=lambda: dict(path=SAVED),
    wrong=dict(path=[values(*BAD_FILES, None, 3)]),
)
nan_scale = copy.deepcopy(MODEL)
nan_scale.scale = math.nan
spec(
    f"{PREFIX}.train.save",
    valid=lambda: dict(model=MODEL, path=os.path.join(TMP, "saved.safetensors")),
    wrong=dict(
        model=[not_a_model, values(nan_scale)],
        path=[values(None, 3, os.path.join(TMP, "no-such-dir", "m.safetensors"), TMP)],
    ),
)

# --- accounting.py, inpainting.py (SD-06, SD-08, SD-09, SD-11, SD-17) -------------------------

not_a_rational = values(None, 2.5, "3", True, [1])
spec(
    f"{PREFIX}.accounting.total_batch",
    valid=lambda: dict(machines=32, gpus_per_machine=8, per_gpu_batch=2, accumulation=2),
    wrong=dict(
        machines=[bad_int(1)],
        gpus_per_machine=[bad_int(1)],
        per_gpu_batch=[bad_int(1)],
        accumulation=[bad_int(1)],
    ),
)
spec(
    f"{PREFIX}.accounting.as_written",
    valid=lambda: dict(number="10e-6"),
    wrong=dict(number=[values(None, 1e-5, b"10e-6", "ten", "1e-6x", "1/0", "")]),
)
spec(
    f"{PREFIX}.accounting.order_of_magnitude",
    valid=lambda: dict(x=Fraction(1, 10**5)),
    wrong=dict(x=[not_a_rational, values(0, -1, Fraction(-1, 3))]),
)
spec(
    f"{PREFIX}.accounting.parameter_count",
    valid=lambda: dict(module=ATT),
    wrong=dict(module=[values(None, "module", randn(2, 2), [ATT])]),
)
spec(
    f"{PREFIX}.accounting.components",
    valid=lambda: dict(model=MODEL),
    wrong=dict(model=[values(None, "model", UNET, AE)]),
)
spec(
    f"{PREFIX}.accounting.total",
    valid=lambda: dict(counts={"autoencoder": 84, "text encoder": 123, "unet": 860}),
    wrong=dict(
        counts=[values(None, {}, [84, 123], {"a": -1}, {"a": 2.5}, {"a": True}, {"a": "1"})]
    ),
)
spec(
    f"{PREFIX}.accounting.ratio",
    valid=lambda: dict(a=Fraction("354.03"), b=Fraction("123.65")),
    wrong=dict(a=[not_a_rational, values(0, -1)], b=[not_a_rational, values(0, -1)]),
)
spec(
    f"{PREFIX}.accounting.nearest",
    valid=lambda: dict(x=Fraction(1067), unit=1000),
    wrong=dict(x=[not_a_rational], unit=[not_a_rational, values(0, -1)]),
)
spec(
    f"{PREFIX}.inpainting.zero_init",
    valid=lambda: dict(weight=randn(8, 5, 3, 3)),
    wrong=dict(weight=[not_a_tensor, retyped(torch.int64, torch.bool)]),
)
spec(
    f"{PREFIX}.inpainting.widen_conv_in",
    valid=lambda: dict(model=UNET, extra=5),
    wrong=dict(model=[values(None, "model", AE, MODEL)], extra=[bad_int(1)]),
)

# --- the commands -----------------------------------------------------------------------------

ARGPARSE = re.compile(
    r"error: (?:argument (?P<option>--[\w-]+)|the following arguments are required: "
    r"(?P<required>--[\w-]+))"
)


def cli(main, options):
    """Run the command with `--option value` for each option that is not None. A usage error
    (SystemExit 2) becomes ValueError("<dest of the option argparse names>: <its message>")."""
    argv = []
    for dest, value in options.items():
        if value is not None:
            argv += ["--" + dest.replace("_", "-"), str(value)]
    err, threads = io.StringIO(), torch.get_num_threads()
    torch.set_num_threads(1)  # a shared machine: torch's threads would only contend
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            return main(argv)
    except SystemExit as e:
        message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
        found = ARGPARSE.search(message)
        if e.code != 2 or not found:
            raise RuntimeError(f"exit status {e.code}: {message}") from None
        option = found.group("option") or found.group("required")
        raise ValueError(f"{option[2:].replace('-', '_')}: {message}") from None
    finally:
        torch.set_num_threads(threads)


spec(
    f"{PREFIX}.sample.main",
    valid=lambda: dict(
        model=SAVED,
        prompt="a red circle",
        guidance="3",
        steps="1",
        n="1",
        seed="0",
        out=os.path.join(TMP, "samples.png"),
    ),  # fmt: skip
    wrong=dict(
        model=[values(*BAD_FILES[:4], BAD_FILES[5], corrupted, os.path.join(TMP, "missing"))],
        prompt=[values(None, "a purple circle", " ".join(["a red circle"] * 3))],
        guidance=[values("-1", "nan", "inf", "x")],
        steps=[values("0", "-1", "2.5", "x", "1000", "5000")],
        n=[values("0", "-1", "2.5", "x")],
        seed=[values("-1", "2.5", "x", str(2**64))],
        out=[values(os.path.join(TMP, "no-such-dir", "s.png"), os.path.join(TMP, "s.txt"), TMP)],
    ),
    call=lambda **options: cli(sample.main, options),
)
spec(
    f"{PREFIX}.train.main",
    valid=lambda: dict(
        out=os.path.join(TMP, "trained.safetensors"), ae_steps="0", steps="0", batch="1", seed="0"
    ),  # fmt: skip
    wrong=dict(
        out=[values(os.path.join(TMP, "no-such-dir", "m.safetensors"), TMP)],
        ae_steps=[values("-1", "2.5", "x")],
        steps=[values("-1", "2.5", "x")],
        batch=[values("0", "-1", "2.5", "x")],
        seed=[values("-1", "2.5", "x", str(2**64))],
    ),
    call=lambda **options: cli(train.main, options),
)

# --- article_pipelines.py (SD-15, SD-16) and TinySD.unconditional (SD-14) ---------------------

spec(
    f"{PREFIX}.train.TinySD.unconditional",
    valid=lambda: dict(self=MODEL, negative_prompt="a red circle", B=2),
    wrong=dict(
        negative_prompt=[values(3, "a purple circle", ["a purple circle"] * 2, ["a red"] * 3, [3])],
        B=[bad_int(1)],
    ),
    call=lambda self, **kw: self.unconditional(**kw),
)
spec(
    f"{PREFIX}.article_pipelines.get_timesteps",
    valid=lambda: dict(
        timesteps=pipeline.sd_timesteps(50, 1), num_inference_steps=50, strength=0.8
    ),  # fmt: skip
    wrong=dict(
        timesteps=[
            values(
                None,
                "x",
                [981, 961],
                pipeline.sd_timesteps(50, 1).double(),
                pipeline.sd_timesteps(20, 1),
                pipeline.sd_timesteps(50, 1).flip(0),
                pipeline.sd_timesteps(50, 1) - 5,
            )
        ],  # fmt: skip
        num_inference_steps=[bad_int(1)],
        strength=[outside(0, 1), not_finite, not_a_number, values(0.01)],
    ),
)
spec(
    f"{PREFIX}.article_pipelines.add_noise",
    valid=lambda: dict(init_latents=randn(1, 4, 2, 2), noise=randn(1, 4, 2, 2) + 1, abar_t=0.5),
    wrong=dict(
        init_latents=[
            not_a_tensor,
            not_finite,
            retyped(torch.int64),
            also("noise")(mismatched("noise")),
        ],  # fmt: skip
        noise=[
            not_a_tensor,
            not_finite,
            retyped(torch.int64),
            also("init_latents")(mismatched("init_latents")),
        ],  # fmt: skip
        abar_t=[outside(0, 1), not_finite, not_a_number],
    ),
)


def mask_image(size=16):
    m = torch.zeros(size, size)
    m[: size // 2, : size // 2] = 1.0
    return m


spec(
    f"{PREFIX}.article_pipelines.preprocess_mask",
    valid=lambda: dict(mask_image=mask_image(32), scale_factor=8),
    wrong=dict(
        mask_image=[
            not_a_tensor,
            not_finite,
            outside(0, 1),
            retyped(torch.int64, torch.bool),
            values(torch.zeros(4, 4), torch.zeros(1, 16, 16)),
        ],  # fmt: skip
        scale_factor=[bad_int(1)],
    ),
)


def img2img_kwargs():
    kwargs = generate_kwargs()
    for name in ("decode", "latent_shape", "latent_scale", "eta", "dtype"):
        del kwargs[name]
    return dict(kwargs, init_latents=randn(2, 4, 2, 2), steps=4, strength=0.5)


IMG2IMG_WRONG = dict(
    denoise=[not_callable, values(lambda z, t, c, m: z[:1], lambda z, t, c, m: "eps")],
    init_latents=[not_a_tensor, not_finite, retyped(torch.int64), values(randn(4, 2, 2))],
    cond=[also("uncond")(Maker(bad_pair, "bad_pair"))],
    uncond=[also("cond")(Maker(bad_pair, "bad_pair"))],
    steps=[bad_int(1, pipeline.T)],
    strength=[outside(0, 1), not_finite, not_a_number, values(0.1)],  # int(4 x 0.1) = 0 steps
    guidance=[outside(0, None), not_finite, not_a_number],
    generator=[not_a_generator],
    steps_offset=[bad_int(0, 249)],
    abar=[Maker(bad_abar, "bad_abar")],
    final_abar=[outside(0, 1, lo_open=True), not_finite, values("0.5")],
)
spec(f"{PREFIX}.article_pipelines.img2img", valid=img2img_kwargs, wrong=IMG2IMG_WRONG)
spec(
    f"{PREFIX}.article_pipelines.inpaint_legacy",
    valid=lambda: dict(img2img_kwargs(), mask_image=mask_image(16), callback=None),
    wrong=dict(
        IMG2IMG_WRONG,
        mask_image=[not_a_tensor, not_finite, outside(0, 1), values(mask_image(24), randn(16))],
        callback=[values(3, "f")],
    ),
)
