"""SD-14..SD-16 (full text): the negative prompt on the project's tiny pipeline (TinySD.generate),
and the article's own img2img and legacy inpainting loops (impl/diffusion/latent/
article_pipelines.py) measured with the tiny untrained UNet or an exact oracle denoiser."""

import functools
from types import SimpleNamespace

import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

from impl.diffusion import ddim
from impl.diffusion.latent import article_pipelines as ap
from impl.diffusion.latent import data, pipeline, train
from properties.adapters.latent import Reference
from properties.catalogue import claim, finding
from properties.evidence import current, figure, refute
from properties.profiles import costly
from properties.strategies import Seed, seeds
from properties.test_sd_latent import tiny_diffusers  # SD-04's tiny diffusers UNet and scheduler

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F32, F64 = torch.float32, torch.float64
U32, U64 = 2.0**-24, 2.0**-53
# prompts of the tiny model's vocabulary (impl/diffusion/latent/text.py)
PROMPTS = ["a red circle on the left", "a blue square", "green triangle at the top",
           "a yellow square in the center", "red", "the bottom right"]  # fmt: skip
PROMPTS = [p for p in PROMPTS if all(w in train.text.IDS for w in p.split())]
ABAR = pipeline.scaled_linear_abar()  # float64
REFERENCE_CALLS = {
    "test_negative_prompt_takes_the_unconditional_branch": "the written-out loop with "
    "eps(x, n) + s (eps(x, y) - eps(x, n)) is the reference",
}


@functools.cache
def tiny_model(latent=Reference):
    """An untrained TinySD of `latent` at 16 x 16 (latents 4 x 2 x 2): the claims are about the
    loops."""
    torch.manual_seed(0)
    return latent.tiny_sd(size=16).eval()


# --- SD-14: the negative prompt --------------------------------------------------------------


@claim("SD-14")
@costly()  # two 2-step generations of the tiny model per example
@given(seed=seeds, s=st.floats(0, 10), prompt=st.sampled_from(PROMPTS))
def test_negative_prompt_none_and_empty_give_bit_equal_images(latent, seed, s, prompt):
    """negative_prompt None and "" with the same seed: bit-equal images (2 DDIM steps)."""
    model = tiny_model(latent)
    images = [
        model.generate([prompt], guidance=s, steps=2, generator=seed.torch(), negative_prompt=n)
        for n in (None, "")
    ]
    gap = float((images[0] - images[1]).abs().max())
    current().worst("max |image(None) - image('')|", gap)
    assert torch.equal(images[0], images[1]), f"None and '' differ by {gap:.3g}"


@claim("SD-14")
def test_null_prompt_is_the_training_null_prompt(latent):
    """Condition dropout trains the unconditional branch on the empty caption "": the loss with
    every caption dropped (p_uncond = 1) is bit-equal to the loss on captions "" (same
    generator), and the pipeline's unconditional branch for negative_prompt None is that empty
    prompt's context and mask, bit for bit."""
    model = tiny_model(latent)
    images, captions, _ = data.sample(3, 16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        dropped, _ = latent.denoiser_loss(model, images, captions, torch.Generator().manual_seed(1),
                                         p_uncond=1.0)  # fmt: skip
        empty, _ = latent.denoiser_loss(model, images, [""] * 3, torch.Generator().manual_seed(1),
                                       p_uncond=0.0)  # fmt: skip
        assert torch.equal(dropped, empty), (float(dropped), float(empty))
        (c_none, m_none), (c_empty, m_empty) = (model.unconditional(n, 3) for n in (None, ""))
        assert torch.equal(m_none, m_empty) and torch.equal(c_none, c_empty)
        gap = float((model.unconditional("a red circle", 3)[0] - c_empty).abs().max())
        assert gap > 0  # a negative prompt is another context
    current().record(loss_dropped=float(dropped), loss_empty_captions=float(empty))


class SpyDenoiser(torch.nn.Module):
    """eps(z, t, context) = tanh(z) / 2 + (mean of the context over its real tokens)[:4] + t/1000:
    rowwise, cheap, and moved by the text by O(0.1..1) (the untrained UNet moves little)."""

    def forward(self, z, t, context, mask):
        w = (context * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.tanh(z) / 2 + w[:, :4, None, None] + t[:, None, None, None] / 1000


@functools.cache
def spy_model(latent=Reference):
    """A TinySD of `latent` whose UNet is the spy and whose decoder catches the final latents."""
    model, caught = latent.tiny_sd(size=16), []
    model.unet = SpyDenoiser()
    model.ae.decode = lambda z: caught.append(z) or torch.zeros(z.shape[0], 3, 16, 16)
    return model, caught


@claim("SD-14")
@given(seed=seeds, s=st.floats(0, 10), y=st.sampled_from(PROMPTS), n=st.sampled_from(PROMPTS),
       steps=st.integers(1, 3))  # fmt: skip
def test_negative_prompt_takes_the_unconditional_branch(latent, seed, s, y, n, steps):
    """With a negative prompt n, TinySD.generate's latents (caught at the decoder) equal a loop
    whose guided prediction is eps(x, n) + s (eps(x, y) - eps(x, n)), each eps computed alone,
    with the same start and DDIM steps. Budget (float32, u = 2^-24): the two differ only in
    batching (rowwise ops; reductions may reorder) and in how the guided sum rounds: per step
    <= 8 u (1 + 2 s) max|eps| on the prediction, and the DDIM step (coefficients <= 4 at these
    timesteps) adds <= 8 u max|z|; over `steps` steps and amplification 4^steps:
    tol = 64 u 4^steps (1 + 2 s) (1 + max|z| + max|eps|). An unconditional branch that is not
    eps(x, n) moves the prediction by |eps(x, n) - eps(x, other)| = O(0.1)."""
    model, caught = spy_model(latent)
    model.generate([y], guidance=s, steps=steps, generator=seed.torch(), negative_prompt=n)
    with torch.no_grad():
        cy, cn = model.encode_prompts([y]), model.encode_prompts([n])
        z = torch.randn(1, 4, 2, 2, generator=seed.torch())
        ts = pipeline.sd_timesteps(steps, 1).tolist()
        big = 0.0
        for i, t in enumerate(ts):
            tt = torch.tensor([t])
            eps_n, eps_y = model.unet(z, tt, *cn), model.unet(z, tt, *cy)
            eps = eps_n + s * (eps_y - eps_n)
            b = float(ABAR[ts[i + 1]]) if i + 1 < len(ts) else float(ABAR[0])
            big = max(big, float(z.abs().max()), float(eps_n.abs().max() + eps_y.abs().max()))
            z = ddim.step(z, eps, float(ABAR[t]), b, 0.0, None)
        big = max(big, float(z.abs().max()))
    tol = 64 * U32 * 4**steps * (1 + 2 * s) * (1 + 2 * big)
    err = float((caught[-1] - z).abs().max())
    current().worst("max |generate - eps(x,n) + s (eps(x,y) - eps(x,n)) loop| / tol", err / tol)
    assert err <= tol, f"generate's latents differ from the negative-prompt CFG loop by {err:.3g}"
    current().summary = (
        "negative_prompt None = '' bit for bit; with n the guided eps is "
        "eps(x, n) + s (eps(x, y) - eps(x, n)) (spy denoiser); the training drops text to ''"
    )


# --- SD-15: img2img ---------------------------------------------------------------------------

ARTICLE_STEPS = {0.5: 25, 0.8: 40, 1.0: 50}  # int(50 strength)


@claim("SD-15.steps")
def test_img2img_steps_for_50_steps(latent):
    """For 50 steps and strength 0.5, 0.8, 1: int(50 strength) = 25, 40, 50 denoising steps from
    timesteps[50 - that] = 480, 780, 980 (+ steps_offset), the init latent noised to that first
    timestep; sqrt(abar) at the start recorded."""
    table = {}
    for offset in (0, 1):
        schedule = latent.sd_timesteps(50, offset)
        for strength, n in ARTICLE_STEPS.items():
            timesteps, init_timestep = latent.get_timesteps(schedule, 50, strength)
            assert init_timestep == len(timesteps) == n
            assert int(timesteps[0]) == int(schedule[50 - n]) == 20 * n - 20 + offset
            table[f"offset {offset}, strength {strength}"] = (
                f"{n} steps from t = {int(timesteps[0])}, sqrt(abar) = "
                f"{float(ABAR[int(timesteps[0])]) ** 0.5:.4f}"
            )
    current().record(**table)
    current().summary = (
        "50 steps, strength 0.5/0.8/1: 25/40/50 denoising steps from t = 480/780/980 (481/781/981 "
        "with steps_offset 1), the init latent noised to that first timestep; = diffusers"
    )


@claim("SD-15.steps")
def test_img2img_steps_equal_diffusers(latent):
    """Cross-check with diffusers: DDIMScheduler (the article's: steps_offset 0 by default; and
    1, the released model's config) set to 50 steps, and StableDiffusionImg2ImgPipeline's own
    get_timesteps: the same timesteps and counts as ours; its alphas_cumprod (float32) gives
    sqrt(abar) at the start within 1e-6 of our float64 schedule (the float32 finding of SD-04)."""
    diffusers = pytest.importorskip("diffusers")
    for offset in (0, 1):
        scheduler = diffusers.DDIMScheduler(beta_start=0.00085, beta_end=0.012,
                                            beta_schedule="scaled_linear", clip_sample=False,
                                            set_alpha_to_one=False, steps_offset=offset)  # fmt: skip
        scheduler.set_timesteps(50)
        ours = latent.sd_timesteps(50, offset)
        assert ours.tolist() == scheduler.timesteps.tolist()
        for strength, n in ARTICLE_STEPS.items():
            theirs, count = diffusers.StableDiffusionImg2ImgPipeline.get_timesteps(
                SimpleNamespace(scheduler=scheduler), 50, strength, "cpu"
            )
            timesteps, init_timestep = latent.get_timesteps(ours, 50, strength)
            assert timesteps.tolist() == theirs.tolist() and init_timestep == count == n
            t = int(timesteps[0])
            gap = abs(float(scheduler.alphas_cumprod[t]) ** 0.5 - float(ABAR[t]) ** 0.5)
            assert gap < 1e-6


@claim("SD-15.steps")
@given(seed=seeds, steps=st.integers(1, 200), strength=st.floats(0, 1),
       offset=st.integers(0, 1))  # fmt: skip
def test_img2img_denoises_as_many_steps_as_noise_was_added(latent, seed, steps, strength, offset):
    """img2img's denoiser sees exactly the timesteps schedule[steps - int(steps strength):], so
    int(steps strength) of them, the first being the level the init latent was noised to:
    its first input is sqrt(abar_t0) x + sqrt(1 - abar_t0) noise (float64, to 4 ulps; the
    float64 schedule passed in: the schedule's own precision is SD-04's)."""
    assume(int(steps * strength) >= 1)
    seen = []

    def denoise(z, t, context, mask):
        seen.append((int(t[0]), z[:1].clone()))
        return torch.zeros_like(z)

    g = seed.torch()
    x = torch.randn(1, 4, 2, 2, generator=g, dtype=F64)
    ctx = (torch.zeros(1, 1, 1, dtype=F64), None)
    latent.img2img(denoise, x, ctx, ctx, steps=steps, strength=strength, guidance=1.0,
               generator=torch.Generator().manual_seed(int(seed)), steps_offset=offset,
               abar=ABAR)  # fmt: skip
    n = int(steps * strength)
    schedule = latent.sd_timesteps(steps, offset).tolist()
    assert [t for t, _ in seen] == schedule[steps - n :], (len(seen), n)
    noise = torch.randn(1, 4, 2, 2, generator=torch.Generator().manual_seed(int(seed)), dtype=F64)
    a = float(ABAR[seen[0][0]])
    start = a**0.5 * x + (1 - a) ** 0.5 * noise
    assert torch.allclose(seen[0][1], start, rtol=0, atol=4 * U64 * float(1 + start.abs().max()))


@claim("SD-15.steps")
@costly()  # a diffusers pipeline run and ours per example
@given(seed=seeds, steps=st.integers(1, 4), strength=st.floats(0.25, 1),
       s=st.sampled_from([1.5, 3.0, 7.5]))  # fmt: skip
def test_img2img_equals_diffusers_img2img_pipeline(latent, seed, steps, strength, s):
    """Our img2img = diffusers' StableDiffusionImg2ImgPipeline (init latents passed as a
    4-channel image, output_type "latent") on the tiny random UNet2DConditionModel of SD-04,
    its DDIMScheduler (steps_offset 1) and alphas_cumprod, the same seed, in float64. Budget as
    SD-04: diffusers forms the DDIM coefficients from float32 scalars (relative error <= 4 x
    2^-24 each), so each step moves the latents by <= 8 x 2^-24 (|z| + |eps|) < 1e-5 (|z|,
    |eps| < 20 here); everything else is float64."""
    assume(int(steps * strength) >= 1)
    diffusers, net, vae, scheduler = tiny_diffusers()
    g = seed.torch()
    cond, uncond = (torch.randn(1, 5, 32, generator=g, dtype=F64) for _ in range(2))
    x = torch.randn(1, 4, 8, 8, generator=g, dtype=F64)
    pipe = diffusers.StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=None, tokenizer=None, unet=net, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    with torch.no_grad():
        theirs = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, image=x,
                      strength=strength, guidance_scale=s, num_inference_steps=steps,
                      output_type="latent", generator=torch.Generator().manual_seed(int(seed)),
                      ).images  # fmt: skip
        ours = latent.img2img(
            lambda z, t, c, m: net(z, t, encoder_hidden_states=c).sample, x, (cond, None),
            (uncond, None), steps=steps, strength=strength, guidance=s,
            generator=torch.Generator().manual_seed(int(seed)), abar=scheduler.alphas_cumprod,
        )  # fmt: skip
    err, tol = float((ours - theirs).abs().max()), 1e-5 * steps
    current().worst("max |ours - diffusers img2img| / budget", err / tol)
    assert err <= tol, err


def img2img_tiny(latent, init_latents, steps=50, strength=1.0, offset=0):
    """The article's img2img (`latent`'s) on the untrained tiny model: prompt "a red circle on
    the left", guidance 7.5, noise from seed 0, float32 latents (1, 4, 2, 2)."""
    model = tiny_model(latent)
    with torch.no_grad():
        cond, uncond = (
            model.encode_prompts(["a red circle on the left"]),
            model.unconditional(None, 1),
        )
        return latent.img2img(
            lambda z, t, c, m: model.unet(z, t, c, m), init_latents, cond, uncond, steps=steps,
            strength=strength, guidance=7.5, generator=torch.Generator().manual_seed(0),
            steps_offset=offset,
        )  # fmt: skip


@claim(refutes="SD-15.strength-1-is-noise")
def test_img2img_at_strength_1_depends_on_the_init_latent(latent):
    """At strength 1 (50 steps, steps_offset 0 as the article's scheduler) the init latent x is
    noised to t = 980, sqrt(abar) = 0.076: with the same noise, two init latents (0 and c
    everywhere) give different outputs. If the start were pure noise the two runs would be the
    same computation, bit for bit; the minimal c is found."""
    runs = {}  # init constant -> output (this test's own cache: one run per constant)

    def run(c):
        if c not in runs:
            runs[c] = img2img_tiny(latent, torch.full((1, 4, 2, 2), c))
        return runs[c]

    zero = run(0.0)

    def same_output(c):
        return torch.equal(run(c), zero)

    # the smallest integer constants: 0 (the reference itself) and 1; a float search costs
    # ~40 runs of 50 UNet steps for no more information
    c = refute(st.sampled_from([0.0, 1.0]), same_output, claim="SD-15.strength-1-is-noise")
    out = run(c)
    start = {o: float(ABAR[int(latent.sd_timesteps(50, o)[0])]) ** 0.5 for o in (0, 1)}
    model = tiny_model(latent)
    with torch.no_grad():
        text_to_image = latent.generate(
            lambda z, t, cc, m: model.unet(z, t, cc, m), lambda z: z,
            model.encode_prompts(["a red circle on the left"]), model.unconditional(None, 1),
            steps=50, guidance=7.5, latent_shape=(1, 4, 2, 2), latent_scale=1.0,
            generator=torch.Generator().manual_seed(0), steps_offset=0,
        )  # fmt: skip
    current().record(
        minimal_init_constant=c,
        sqrt_abar_start_offset_0=start[0],
        sqrt_abar_start_offset_1=start[1],
        max_abs_output_change=float((out - zero).abs().max()),
        relative_output_change=float((out - zero).norm() / zero.norm()),
        max_abs_vs_text_to_image_same_noise=float((zero - text_to_image).abs().max()),
    )
    current().discrepancy(
        what="weight sqrt(abar) of the init latent in img2img's start at strength 1 (50 steps)",
        article="random noise (weight 0): equivalent to text-to-image",
        computed=f"{start[0]:.4f} at t = 980 (steps_offset 0), {start[1]:.4f} at t = 981 (1)",
        case=f"init latents 0 and {c} everywhere, same noise: outputs differ",
    )
    assert start[0] > 0.07 and start[1] > 0.07
    current().summary = (
        f"strength 1 starts at t = 980 with sqrt(abar) = {start[0]:.3f} of the init latent, not "
        f"noise: init 0 vs {c:g} changes the output by {current().numbers['relative_output_change']:.1%}"
    )


# --- SD-16: legacy inpainting -----------------------------------------------------------------

H = W = 4  # latents (1, 4, 4, 4); the mask image 32 x 32 repaints its top-left quarter
MASK_IMAGE = torch.zeros(8 * H, 8 * W)
MASK_IMAGE[:16, :16] = 1.0
KEEP = ap.preprocess_mask(MASK_IMAGE)[0].bool()  # (4, H, W), True = keep


def oracle(x0):
    """The exact eps of data concentrated at x0 (float64): eps = (z - sqrt(abar_t) x0) /
    sqrt(1 - abar_t); a DDIM step with it moves sqrt(a) x0 + sqrt(1 - a) n to
    sqrt(b) x0 + sqrt(1 - b) n exactly, so the stepped latents have a measurable level."""

    def denoise(z, t, context, mask):
        a = ABAR[t].to(z.dtype)[:, None, None, None]
        return (z - a.sqrt() * x0) / (1 - a).sqrt()

    return denoise


def level(z, x0, noise, region):
    """(alpha, sigma) of z = alpha x0 + sigma noise on the region's entries (least squares)."""
    A = torch.stack([x0[0][region], noise[0][region]], 1)
    return torch.linalg.lstsq(A, z[0][region][:, None]).solution[:, 0].tolist()


def inpaint_levels(latent, steps, offset, seed=0):
    """`latent`'s legacy loop on the oracle at strength 1 (the float64 schedule ABAR passed in):
    per step (t, alpha of the stepped latents on the repainted region, alpha of the replacement
    on the kept region), and the final latents."""
    x0 = torch.randn(1, 4, H, W, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    noise = torch.randn(1, 4, H, W, generator=torch.Generator().manual_seed(seed), dtype=F64)
    ctx = (torch.zeros(1, 1, 1, dtype=F64), None)
    rows = []

    def callback(i, t, latents, proper):
        rows.append((t, level(latents, x0, noise, ~KEEP)[0], level(proper, x0, noise, KEEP)[0]))

    out = latent.inpaint_legacy(oracle(x0), x0, MASK_IMAGE, ctx, ctx, steps=steps, strength=1.0,
                            guidance=7.5, generator=torch.Generator().manual_seed(seed),
                            steps_offset=offset, callback=callback, abar=ABAR)  # fmt: skip
    return rows, out, x0, noise


# Budget: float64, <= 50 oracle steps of relative rounding <= 16 u each on values <= 5, the 2 x 2
# least squares on >= 16 random entries (condition number < 100): < 50 x 16 x 5 x 100 u < 1e-10.
LEVEL_TOL = 1e-9


def timestep_of(alpha):
    """The timestep whose abar is nearest alpha^2."""
    return int((ABAR - alpha**2).abs().argmin())


@claim(refutes="SD-16.noise-level")
def test_legacy_inpainting_replaces_at_another_noise_level(latent):
    """At every step the replacement add_noise(orig, noise, t) should be at the level of the
    stepped latents (the article: "at the same level"); those are at the next timestep. The
    minimal (steps, steps_offset) with a step where the two levels differ is found; the 50-step
    tables for steps_offset 0 and 1 are recorded."""

    def same_levels(case):
        rows = inpaint_levels(latent, *case)[0]
        return all(abs(a_step - a_proper) <= LEVEL_TOL for _, a_step, a_proper in rows)

    case = refute(st.tuples(st.integers(1, 50), st.integers(0, 1)), same_levels,
                  claim="SD-16.noise-level", describe=lambda c: f"steps={c[0]}, steps_offset={c[1]}")  # fmt: skip
    tables = {o: inpaint_levels(latent, 50, o)[0] for o in (0, 1)}
    for o, rows in tables.items():
        ts = latent.sd_timesteps(50, o).tolist()
        for i, (t, a_step, a_proper) in enumerate(rows):  # where each level sits
            assert abs(a_proper - float(ABAR[t]) ** 0.5) <= LEVEL_TOL
            b = float(ABAR[ts[i + 1]]) if i + 1 < len(ts) else float(ABAR[0])
            assert abs(a_step - b**0.5) <= LEVEL_TOL
    differ = {o: sum(abs(a - p) > LEVEL_TOL for _, a, p in rows) for o, rows in tables.items()}
    first = tables[0][0]
    current().record(
        steps_with_different_levels_offset_0=f"{differ[0]} of 50",
        steps_with_different_levels_offset_1=f"{differ[1]} of 50",
        first_step_offset_0=(
            f"t = {first[0]}: replacement at t = {timestep_of(first[2])}, "
            f"stepped latents at t = {timestep_of(first[1])}"
        ),  # fmt: skip
    )
    current().discrepancy(
        what="noise level of the replacement vs the stepped latents, per step (50 steps)",
        article="the same level",
        computed=(
            f"the replacement at t, the stepped latents at the next timestep (t - 20): "
            f"{differ[0]} of 50 steps differ (steps_offset 0), {differ[1]} of 50 (1)"
        ),  # fmt: skip
        case=f"steps={case[0]}, steps_offset={case[1]}",
    )

    def draw(fig):
        ax = fig.subplots()
        for o, style in ((0, "-"), (1, ":")):
            rows = tables[o]
            ax.plot(range(50), [(1 - a**2) ** 0.5 for _, a, _ in rows], style, color="C0",
                    label=f"stepped latents (repaint), offset {o}")  # fmt: skip
            ax.plot(range(50), [(1 - p**2) ** 0.5 for _, _, p in rows], style, color="C1",
                    label=f"replacement (kept), offset {o}")  # fmt: skip
        ax.set(xlabel="step", ylabel="noise std sqrt(1 - abar)", yscale="log",
               title="legacy inpainting: the kept region is one step noisier")  # fmt: skip
        ax.legend(fontsize=7)

    figure("sd16_noise_levels", draw)
    current().summary = (
        f"the replacement is at t, the stepped latents at the next timestep: {differ[0]}/50 steps "
        f"differ (steps_offset 0), {differ[1]}/50 (1)"
    )


@claim(refutes="SD-16.kept-region")
def test_legacy_inpainting_leaves_the_kept_region_noisy(latent):
    """After the last step the kept region should be the clean original latent; it is
    add_noise(orig, noise, t_last): (sqrt(abar) - 1) x0 + sqrt(1 - abar) noise away from it,
    checked to LEVEL_TOL. Minimal (steps, steps_offset) found; 50 steps recorded."""

    def kept_unchanged(case):
        _, out, x0, _ = inpaint_levels(latent, *case)
        return float((out - x0)[0][KEEP].abs().max()) <= LEVEL_TOL

    case = refute(st.tuples(st.integers(1, 50), st.integers(0, 1)), kept_unchanged,
                  claim="SD-16.kept-region", describe=lambda c: f"steps={c[0]}, steps_offset={c[1]}")  # fmt: skip
    numbers = {}
    for o in (0, 1):
        _, out, x0, noise = inpaint_levels(latent, 50, o)
        a = float(ABAR[int(latent.sd_timesteps(50, o)[-1])])
        exact = (a**0.5 - 1) * x0 + (1 - a) ** 0.5 * noise
        assert torch.allclose((out - x0)[0][KEEP], exact[0][KEEP], rtol=0, atol=LEVEL_TOL)
        numbers[o] = ((1 - a) ** 0.5, float((out - x0)[0][KEEP].norm() / x0[0][KEEP].norm()))
    current().record(
        noise_std_left_offset_0=numbers[0][0], relative_distance_offset_0=numbers[0][1],
        noise_std_left_offset_1=numbers[1][0], relative_distance_offset_1=numbers[1][1],
    )  # fmt: skip
    current().discrepancy(
        what="the kept region after the last step (50 steps)",
        article="unchanged (the original latent)",
        computed=(
            f"add_noise(orig, noise, t_last): noise std {numbers[0][0]:.4f} at t = 0 "
            f"(steps_offset 0), {numbers[1][0]:.4f} at t = 1 (1); relative distance "
            f"{numbers[0][1]:.3f} / {numbers[1][1]:.3f}"
        ),  # fmt: skip
        case=f"steps={case[0]}, steps_offset={case[1]}",
    )
    current().summary = (
        f"after 50 steps the kept region is add_noise(orig, noise, t_last): noise std "
        f"{numbers[0][0]:.3f} (steps_offset 0), {numbers[1][0]:.3f} (1) left"
    )


@given(H8=st.integers(1, 6), W8=st.integers(1, 6), extra=st.integers(0, 7), seed=seeds)
@example(H8=6, W8=1, extra=4, seed=Seed(3))  # 52 -> 6 rows: Pillow samples row 38, not 39
def test_preprocess_mask_is_pillows_nearest_resize_inverted(H8, W8, extra, seed):
    """preprocess_mask = the code's PIL path: L image, resize to (W // 8, H // 8) by NEAREST,
    / 255, tiled over 4 channels, 1 - mask (a mask image of 0 and 255 values)."""
    Image = pytest.importorskip("PIL.Image")
    np = pytest.importorskip("numpy")
    g = seed.torch()
    mask = (torch.rand(8 * H8 + extra, 8 * W8 + extra, generator=g) < 0.5).float()
    pil = Image.fromarray((mask.numpy() * 255).astype(np.uint8), mode="L")
    w, h = pil.size
    small = np.array(pil.resize((w // 8, h // 8), resample=Image.NEAREST)).astype(np.float32)
    expected = torch.from_numpy(1 - np.tile(small / 255.0, (4, 1, 1)))[None]
    assert torch.equal(ap.preprocess_mask(mask), expected)


@finding("SD-16")
@pytest.mark.filterwarnings(
    "ignore:The class .*InpaintPipelineLegacy.* is deprecated:FutureWarning"
)
def test_finding_diffusers_legacy_pipeline_pastes_the_original_after_the_loop():
    """diffusers' later StableDiffusionInpaintPipelineLegacy (deprecated; PIL mask, tensor image,
    the tiny UNet of SD-04 and an 8x tiny AutoencoderKL, float64, output_type "latent") equals
    the article's loop (ours) followed by latents = init_latents_orig * mask + latents *
    (1 - mask): it keeps the in-loop replacement at t and pastes the clean latents after the
    loop (budget as SD-04: < 1e-5 per step), while the article's loop alone differs on the kept
    region. Its current StableDiffusionInpaintPipeline (4-channel UNet) re-noises to the next
    timestep, and uses the clean latents at the last step (read from the installed source)."""
    import inspect

    np = pytest.importorskip("numpy")
    Image = pytest.importorskip("PIL.Image")
    from diffusers.pipelines.deprecated.stable_diffusion_variants import (
        pipeline_stable_diffusion_inpaint_legacy as legacy,
    )

    diffusers, net, _, scheduler = tiny_diffusers()
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8,) * 4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4,
    ).to(F64).eval()  # fmt: skip
    g = torch.Generator().manual_seed(0)
    cond, uncond = (torch.randn(1, 5, 32, generator=g, dtype=F64) for _ in range(2))
    image = torch.rand(1, 3, 32, 32, generator=g, dtype=F64) * 2 - 1
    mask = torch.zeros(32, 32)
    mask[:16, :16] = 1.0
    pil = Image.fromarray((mask.numpy() * 255).astype(np.uint8), mode="L")
    pipe = legacy.StableDiffusionInpaintPipelineLegacy(
        vae=vae, text_encoder=None, tokenizer=None, unet=net, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    steps = 5
    with torch.no_grad():
        theirs = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, image=image,
                      mask_image=pil, strength=0.8, guidance_scale=3.0, num_inference_steps=steps,
                      output_type="latent", generator=torch.Generator().manual_seed(1)).images  # fmt: skip
        gen = torch.Generator().manual_seed(1)  # the latent sample, then the noise, as theirs
        x = vae.config.scaling_factor * vae.encode(image).latent_dist.sample(generator=gen)
        ours = ap.inpaint_legacy(
            lambda z, t, c, m: net(z, t, encoder_hidden_states=c).sample, x, mask, (cond, None),
            (uncond, None), steps=steps, strength=0.8, guidance=3.0, generator=gen,
            abar=scheduler.alphas_cumprod,
        )  # fmt: skip
    keep = ap.preprocess_mask(mask).to(F64)
    pasted_gap = float((x * keep + ours * (1 - keep) - theirs).abs().max())
    article_gap = float((ours - theirs).abs().max())
    assert pasted_gap <= 1e-5 * steps < article_gap
    src = inspect.getsource(diffusers.StableDiffusionInpaintPipeline.__call__)
    assert "noise_timestep = timesteps[i + 1]" in src
    current().record(diffusers=diffusers.__version__, max_gap_after_paste=pasted_gap,
                     max_gap_article_loop=article_gap)  # fmt: skip
    current().summary = (
        "diffusers' later legacy inpainting = the article's loop + the clean latents pasted "
        "after it; its current pipeline re-noises to the next timestep"
    )


# --- the `latent` family's diffusers peer (properties/adapters/latent_diffusers.py) -----------


@pytest.mark.filterwarnings(
    "ignore:The class .*InpaintPipelineLegacy.* is deprecated:FutureWarning"
)
def test_diffusers_adapter_smoke():
    """Each function the diffusers peer overrides against the reference on one input (its claims'
    properties run in `tox -e peers`): the same timesteps and img2img start; its float32
    schedule within 1e-6 (the SD-04 finding); its img2img and legacy inpainting equal ours in
    float64 on a rowwise denoiser with a text mask (5 steps, float64 rounding: 1e-12), except
    on the kept region after the legacy loop, where it pastes the clean latents (SD-16 finding)."""
    pytest.importorskip("diffusers")
    from properties.adapters import resolve

    ours, theirs = Reference, resolve("latent", "diffusers")
    for offset in (0, 1):
        assert theirs.sd_timesteps(50, offset).tolist() == ours.sd_timesteps(50, offset).tolist()
    assert float((theirs.scaled_linear_abar() - ABAR).abs().max()) < 1e-6
    ts = ours.sd_timesteps(50, 1)
    for strength in (0.3, 1.0):
        (a, n), (b, m) = (
            theirs.get_timesteps(ts, 50, strength),
            ours.get_timesteps(ts, 50, strength),
        )
        assert a.tolist() == b.tolist() and n == m
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 4, 4, generator=g, dtype=F64)
    cond = (torch.randn(1, 3, 8, generator=g, dtype=F64), torch.tensor([[1, 1, 0]]).bool())
    uncond = (torch.randn(1, 3, 8, generator=g, dtype=F64), torch.tensor([[1, 0, 0]]).bool())

    def denoise(z, t, context, mask):
        w = (context * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.tanh(z) / 2 + w[:, :4, None, None] + t[:, None, None, None] / 1000

    kw = dict(steps=5, strength=0.8, guidance=3.0, steps_offset=0, abar=ABAR)
    got, want = (a.img2img(denoise, x, cond, uncond, generator=torch.Generator().manual_seed(1),
                           **kw) for a in (theirs, ours))  # fmt: skip
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    keep = ap.preprocess_mask(MASK_IMAGE).to(F64)
    got, want = (a.inpaint_legacy(denoise, x, MASK_IMAGE, cond, uncond,
                                  generator=torch.Generator().manual_seed(1), **kw)
                 for a in (theirs, ours))  # fmt: skip
    assert torch.allclose(got, x * keep + want * (1 - keep), rtol=0, atol=1e-12)
