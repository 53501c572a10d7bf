"""SD-06..SD-11 and SD-17, claims of the Stable Diffusion article's full text about the model:
the training batch, the latent's shape, the KL weight, the parameter counts, the text encoding,
the attention heads and the inpainting UNet's widened first convolution. The article's arithmetic
runs in exact rationals (impl/diffusion/latent/accounting.py); the model claims run on the tiny
latent diffusion model (impl/diffusion/latent), untrained: they are about shapes, counts and the
computation, not about learning."""

import copy
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from impl.diffusion.latent import accounting, text, train
from properties.catalogue import claim
from properties.evidence import ClaimNotRefuted, current, refute
from properties.strategies import seeds

pytestmark = pytest.mark.usefixtures("one_torch_thread")

F32 = torch.float32
U32 = 2.0**-24  # float32's unit round-off


# --- SD-06: the training batch -----------------------------------------------------------------


@claim(refutes="SD-06.article-product")
def test_the_articles_four_factors_multiply_to_1024_not_2048():
    """The total batch is the product of its factors (accounting.total_batch): the article's
    32 machines x 8 GPUs x per-GPU batch 2 x accumulation 2, against its stated 2048."""
    stated = 2048
    product = accounting.total_batch(32, 8, 2, 2)
    current().record(article_product=product, article_stated=stated,
                     model_card_product=accounting.total_batch(32, 8, 4, 2))  # fmt: skip
    if product == stated:
        raise ClaimNotRefuted("SD-06.article-product: 32 x 8 x 2 x 2 equals the stated 2048")
    current().discrepancy(
        what="total batch 32 x 8 x 2 x 2 (machines x GPUs x per-GPU batch x accumulation)",
        article=stated,
        computed=product,
        case="the article's own four factors; the model cards' 32 x 8 x 2 x 4 = 2048 has "
        "per-GPU batch 4",
    )
    current().counterexample = f"32 x 8 x 2 x 2 = {product} != {stated}"
    current().summary = (
        f"32 x 8 x 2 x 2 = {product}, not {stated}: a factor 2 is missing; the model cards' "
        f"32 x 8 x 2 x 4 (2 accumulations, per-GPU batch 4) gives {stated}"
    )


@claim("SD-06.model-card")
def test_the_model_cards_factors_multiply_to_2048():
    """The SD v1 model cards: "Gradient Accumulations: 2", "Batch: 32 x 8 x 2 x 4 = 2048", i.e.
    32 machines x 8 GPUs x accumulation 2 x per-GPU batch 4."""
    product = accounting.total_batch(32, 8, 4, 2)
    current().record(model_card_product=product)
    assert product == 2048, f"32 x 8 x 4 x 2 = {product}, not the model cards' 2048"


# --- SD-07: the latent's shape -----------------------------------------------------------------


def _latent_shape(ae, H, W, B=1, seed=0):
    x = torch.rand(B, 3, H, W, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        mean, log_var = ae.encode(x)
    assert mean.shape == log_var.shape
    return tuple(mean.shape)


@claim("SD-07.factor")
@given(h=st.integers(1, 6), w=st.integers(1, 6), B=st.integers(1, 2))
@example(h=1, w=2, B=1)  # non-square: H != W tells f = H/h = W/w from a transposed latent
@example(h=3, w=1, B=2)
def test_encoder_downsamples_height_and_width_by_the_same_factor_8(latent, h, w, B):
    """The project's encoder accepts H and W multiples of 8 (it refuses others: three stride-2
    convolutions). For an H x W input (H = 8 h, W = 8 w, square or not) the latent is h x w, so
    f = H / h = W / w = 8."""
    torch.manual_seed(0)
    ae = latent.autoencoder()
    H, W = 8 * h, 8 * w
    shape = _latent_shape(ae, H, W, B)
    current().record(**{f"latent_of_{H}x{W}": f"{shape[2]}x{shape[3]}x{shape[1]}"})
    assert shape[0] == B and shape[2:] == (h, w), (
        f"an {H} x {W} input gives a {shape[2]} x {shape[3]} latent, not {h} x {w} (f = 8)"
    )
    assert (Fraction(H, shape[2]), Fraction(W, shape[3])) == (8, 8)


@claim(refutes="SD-07.channels")
def test_the_latent_has_4_channels_not_3(latent):
    """The article's sentence says the latent is h x w x 3; the project's KL autoencoder, like
    SD's (c = 4), gives 4 channels. The minimal counterexample is the smallest input, 8 x 8."""
    torch.manual_seed(0)
    ae = latent.autoencoder()

    def three_channels(hw):
        return _latent_shape(ae, 8 * hw[0], 8 * hw[1])[1] == 3

    h, w = refute(
        st.tuples(st.integers(1, 4), st.integers(1, 4)),
        three_channels,
        claim="SD-07.channels",
        describe=lambda hw: f"an {8 * hw[0]} x {8 * hw[1]} x 3 input",
    )
    c = _latent_shape(ae, 8 * h, 8 * w)[1]
    current().record(latent_channels=c, smallest_input=f"{8 * h}x{8 * w}x3")
    current().discrepancy(
        what="latent channels (h x w x c)",
        article=3,
        computed=c,
        case=f"an {8 * h} x {8 * w} x 3 input gives a {h} x {w} x {c} latent",
    )
    current().summary = (
        f"h x w x {c}, not h x w x 3: SD's KL-f8 (and the project's encoder) has c = 4; c = 3 is "
        "latent-diffusion's KL-f4 (configs/autoencoder/autoencoder_kl_64x64x3.yaml)"
    )


@claim("SD-07.sd-latent")
def test_a_512_image_gives_a_64_by_64_by_4_latent(latent):
    """The article's case itself, run on the project's encoder (f = 8, c = 4; about 0.1 s per
    512 x 512 image on one core): 512 x 512 x 3 -> 64 x 64 x 4, and the non-square 512 x 768 x 3
    -> 64 x 96 x 4 (H x W x 3 -> H/8 x W/8 x 4)."""
    torch.manual_seed(0)
    ae = latent.autoencoder()
    for H, W in ((512, 512), (512, 768)):
        shape = _latent_shape(ae, H, W)
        current().record(**{f"latent_of_{H}x{W}x3": f"{shape[2]}x{shape[3]}x{shape[1]}"})
        assert shape == (1, 4, H // 8, W // 8), (
            f"{H} x {W} x 3 gives {shape[2]} x {shape[3]} x {shape[1]}, not {H // 8} x {W // 8} x 4"
        )
    current().summary = "512x512x3 -> 64x64x4 and 512x768x3 -> 64x96x4 on the project's encoder"


# --- SD-08: the KL weight ----------------------------------------------------------------------


@claim(refutes="SD-08")
def test_10e_6_as_written_is_ten_times_the_configs_kl_weight():
    """Rule for "~x": two positive values agree when they have the same order of magnitude, the
    integer nearest their log10 (accounting.order_of_magnitude, exact). "10e-6" as written is
    10 x 10^-6 = 1e-5 (exact decimal); the latent-diffusion KL autoencoders use kl_weight: 0.000001
    = 1e-6 (CompVis/latent-diffusion configs/autoencoder/autoencoder_kl_64x64x3.yaml and
    autoencoder_kl_8x8x64.yaml): orders -5 and -6 differ, the written value is 10x too large.
    The project's own autoencoder trains with beta = train.BETA (recorded)."""
    written = accounting.as_written("10e-6")
    config = accounting.LDM_KL_WEIGHT
    k_written, k_config = (accounting.order_of_magnitude(v) for v in (written, config))
    current().record(as_written=str(written), as_written_float=float(written),
                     config_kl_weight=float(config), ratio=str(written / config),
                     orders_of_magnitude=(k_written, k_config), project_beta=train.BETA)  # fmt: skip
    if k_written == k_config:
        raise ClaimNotRefuted(f"SD-08: 10e-6 = {written} has the configs' order 10^{k_config}")
    current().discrepancy(
        what="KL weight of the KL-reg autoencoder",
        article="~10e-6 (as written: 1e-5)",
        computed=f"{float(config):g} (kl_weight of the latent-diffusion KL-autoencoder configs)",
        case=f'"10e-6" = {written} = {float(written):g}, {written / config}x the configs\' value',
    )
    current().counterexample = f"10e-6 = {float(written):g} vs kl_weight {float(config):g}"
    current().summary = (
        f"10e-6 as written is {float(written):g}, {written / config}x the configs' "
        f"kl_weight {float(config):g} (the article means 1e-6); the project's beta is {train.BETA}"
    )


# --- SD-09: parameter counts -------------------------------------------------------------------


@claim("SD-09.sum")
def test_84_plus_123_plus_860_million_is_about_a_billion(latent):
    """Rule for "about 1B": the exact sum rounded to the nearest billion (ties to even) is 1B.
    84M + 123M + 860M = 1067M -> 1B. The project's scaled-down model counted the same way: each
    component's distinct parameters, the three components partitioning the model's parameters
    (their sum is the whole model's count)."""
    counts = {"autoencoder": 84, "text encoder": 123, "unet": 860}  # millions
    s = accounting.total(counts)
    rounded = accounting.nearest(s, 1000)
    torch.manual_seed(0)
    model = latent.tiny_sd()
    ours = accounting.components(model)
    whole = accounting.parameter_count(model)
    current().record(article_sum_millions=int(s), nearest_billion=int(rounded // 1000),
                     project_components=ours, project_total=whole,
                     project_unet_share=round(ours["unet"] / whole, 3),
                     article_unet_share=round(860 / float(s), 3))  # fmt: skip
    assert accounting.total(ours) == whole, (
        f"the components {ours} sum to {accounting.total(ours)}, not the model's {whole}"
    )
    assert rounded == 1000, f"84 + 123 + 860 = {s}M rounds to {rounded}M, not 1B"
    current().summary = (
        f"84 + 123 + 860 = {s}M -> 1B; the project's model: {ours} = {whole} parameters"
    )


@claim("SD-09.ratio")
def test_openclip_over_clip_is_about_3():
    """Rule for "about 3 times": the exact ratio rounded to the nearest integer is 3.
    354.03 / 123.65 = 35403 / 12365 = 2.863... -> 3."""
    r = accounting.ratio(accounting.as_written("354.03"), accounting.as_written("123.65"))
    current().record(ratio=str(r), ratio_float=round(float(r), 4),
                     nearest_integer=int(accounting.nearest(r)))  # fmt: skip
    assert accounting.nearest(r) == 3, f"354.03 / 123.65 = {float(r):.4f} is not about 3"


# --- SD-10: text encoding ----------------------------------------------------------------------

WORDS = text.VOCAB[2:]  # every word the tokenizer reads
words = st.lists(st.sampled_from(WORDS), max_size=20)


def _encoder(latent, seed=0):
    torch.manual_seed(seed)
    return latent.text_encoder()


def _encode(latent, enc, prompt):
    ids, mask = latent.tokenize([prompt], len(enc.pos), truncate=True)
    with torch.no_grad():
        return enc(ids, mask), mask


@claim("SD-10.shape")
@given(ws=words)
@example(ws=[])  # the empty prompt
@example(ws=["red"] * 20)  # beyond the maximum length
def test_text_of_any_length_gives_max_len_by_width_features(latent, ws):
    """The project's encoder: max_len = 8, width 64 (SD's CLIP: 77 x 768). Any prompt, empty,
    short or beyond max_len (truncated with tokenize(truncate=True), SD's convention), gives
    (max_len, width) features, its first min(n, max_len) tokens real and the rest padding (the
    empty prompt: one <null> token). The project's default, truncate=False, refuses a prompt of
    more than max_len words (recorded)."""
    enc = _encoder(latent)
    max_len, width = len(enc.pos), enc.norm.normalized_shape[0]
    prompt = " ".join(ws)
    features, mask = _encode(latent, enc, prompt)
    current().record(max_len=max_len, width=width)
    assert tuple(features.shape) == (1, max_len, width), (
        f"{len(ws)} words give features {tuple(features.shape)}, not (1, {max_len}, {width})"
    )
    assert int(mask.sum()) == max(1, min(len(ws), max_len))
    if len(ws) > max_len:
        try:
            latent.tokenize([prompt], max_len)
            refused = False
        except ValueError:
            refused = True
        current().record(default_refuses_longer_prompts=refused)


@claim("SD-10.truncation")
@given(
    head=st.lists(st.sampled_from(WORDS), min_size=8, max_size=8),
    tails=st.tuples(words, words),
    upper=st.booleans(),
)
@example(head=["a"] * 8, tails=([], ["red"]), upper=False)
def test_prompts_that_agree_up_to_max_len_give_equal_features(latent, head, tails, upper):
    """Two prompts whose first max_len = 8 words agree (up to case), whatever follows: their
    truncated tokenizations are equal, so their features are bit-equal."""
    enc = _encoder(latent)
    assert len(head) == len(enc.pos)
    first = " ".join(head + tails[0])
    second = " ".join(head + tails[1])
    second = second.upper() if upper else second
    f1, _ = _encode(latent, enc, first)
    f2, _ = _encode(latent, enc, second)
    assert torch.equal(f1, f2), (
        f"{first!r} and {second!r} agree on their first 8 words, but their features differ by "
        f"{float((f1 - f2).abs().max()):.3g}"
    )


def _one_denoiser_step(latent, train_text=None):
    """(text parameters before, model after) for one training step of a fresh TinySD (16 x 16
    images, batch 2), with train.train_denoiser's default or the given train_text."""
    torch.manual_seed(0)
    model = latent.tiny_sd(size=16)
    before = copy.deepcopy(model)
    kwargs = {} if train_text is None else dict(train_text=train_text)
    latent.train_denoiser(model, 1, 2, torch.Generator().manual_seed(0), log=str, **kwargs)
    return before, model


def _changed(before, after):
    return [n for (n, p), q in zip(before.named_parameters(), after.parameters(), strict=True)
            if not torch.equal(p, q)]  # fmt: skip


@claim("SD-10.frozen")
def test_a_frozen_text_encoder_gets_no_gradient_and_stays_unchanged(latent):
    """One denoiser training step with the text encoder frozen (train_denoiser(train_text=False),
    SD's convention): every text-encoder parameter keeps grad None and its exact value, while the
    UNet's parameters move (so the step did train)."""
    before, model = _one_denoiser_step(latent, train_text=False)
    grads = [n for n, p in model.text.named_parameters() if p.grad is not None]
    text_changed = _changed(before.text, model.text)
    unet_changed = _changed(before.unet, model.unet)
    current().record(text_params_with_grad=len(grads), text_params_changed=len(text_changed),
                     unet_params_changed=len(unet_changed))  # fmt: skip
    assert not grads, f"gradients reached the frozen text encoder: {grads[:3]}"
    assert not text_changed, f"the frozen text encoder changed: {text_changed[:3]}"
    assert unet_changed, "the UNet did not move: the step trained nothing"


@claim(refutes="SD-10.project-training")
def test_the_projects_default_training_updates_its_text_encoder(latent):
    """The project's train_denoiser, by default, trains the text encoder with the UNet (its text
    encoder starts untrained, unlike SD's pretrained CLIP): one step moves its parameters. A
    finding about the project's model against the article, not about the article."""
    before, model = _one_denoiser_step(latent)
    changed = _changed(before.text, model.text)
    total = len(list(model.text.parameters()))
    current().record(text_params_changed=len(changed), text_params=total)
    if not changed:
        raise ClaimNotRefuted("SD-10.project-training: the default step left the text encoder")
    current().counterexample = (
        f"one default train_denoiser step changes {len(changed)} of the text encoder's {total} "
        f"parameter tensors (e.g. {changed[0]})"
    )


# --- SD-11: attention heads --------------------------------------------------------------------


def _count(build):
    with torch.device("meta"):  # counts need shapes only: no memory, no initialisation cost
        return accounting.parameter_count(build())


def _divisors(n):
    return [h for h in range(1, n + 1) if n % h == 0]


@claim("SD-11")
@given(d=st.integers(1, 48).map(lambda k: 8 * k), c=st.integers(1, 1024))
@example(d=320, c=768)  # SD 1.x's first stage (8 heads of 40) against SD 2.0's 5 heads of 64
@example(d=1280, c=1024)  # SD 2.0's last stage: 20 heads of 64
def test_attention_parameters_do_not_depend_on_the_split_into_heads(latent, d, c):
    """For every split of d_model = heads x head_dim: the parameter count of the attention
    module (self: context c = d; cross: context width c) and of the whole transformer block is
    the same, 2 d^2 + 2 d c + d for an attention module (q, k, v without bias, out with bias)."""
    for context in (d, c):
        counts = {
            h: _count(lambda h=h, cd=context: latent.attention(d, cd, h)) for h in _divisors(d)
        }
        assert set(counts.values()) == {2 * d * d + 2 * d * context + d}, (
            f"d_model {d}, context {context}: counts by heads {counts}"
        )
    blocks = {h: _count(lambda h=h: latent.transformer(d, c, h)) for h in _divisors(d)}
    assert len(set(blocks.values())) == 1, f"d_model {d}: block counts by heads {blocks}"
    if (d, c) == (320, 768):
        current().record(
            sd_first_stage_block_8_heads=blocks[8], sd_first_stage_block_5_heads=blocks[5]
        )
        current().summary = (
            "attention and transformer-block counts equal for every split heads x head_dim "
            f"(SD's first stage, d = 320, context 768: {blocks[8]} at 8 heads and at 5)"
        )


@claim("SD-11")
def test_the_unet_has_equal_counts_under_both_head_conventions(latent):
    """The project's UNet (channels 64, 128) with a fixed number of heads (SD 1.x: 4 in every
    stage) and with a fixed head dimension (SD 2.0: head_dim 16 or 8, i.e. 4 and 8, or 8 and 16
    heads): different head counts, equal parameter counts."""
    conventions = {"heads=4": dict(heads=4), "heads=8": dict(heads=8),
                   "head_dim=16": dict(head_dim=16), "head_dim=8": dict(head_dim=8)}  # fmt: skip
    counts, heads = {}, {}
    for name, kw in conventions.items():
        with torch.device("meta"):
            net = latent.unet(**kw)
        counts[name] = accounting.parameter_count(net)
        heads[name] = (net.down_attn.self_attn.heads, net.mid_attn.self_attn.heads)
    current().record(unet_parameters=counts, heads_per_stage=heads)
    assert len(set(heads.values())) == len(heads), f"the conventions do not differ: {heads}"
    assert len(set(counts.values())) == 1, f"counts differ across conventions: {counts}"


# --- SD-17: the inpainting UNet's widened first convolution ------------------------------------


@claim("SD-17")
@given(
    seed=seeds,
    B=st.integers(1, 2),
    h=st.integers(1, 3),
    w=st.integers(1, 3),
    magnitude=st.integers(-3, 30),
    t=st.integers(0, 999),
)
def test_zero_initialised_extra_channels_leave_the_unet_unchanged(
    latent, seed, B, h, w, magnitude, t
):
    """widen_conv_in adds 5 input channels (masked-image latent 4 + mask 1) to conv_in,
    zero-initialised. With z (B, 4, 2h, 2w) and any finite extras e (B, 5, 2h, 2w) of magnitude
    10^magnitude (up to 1e30):
    - the 9-channel UNet's other parameters are the original's, bit for bit (so after conv_in
      both compute the same function g);
    - conv_in: the exact sums agree (the extra terms are 0 x e = 0), so each computed sum is
      within gamma_n (|W| * |z| + |b|) of it, n = 4*9+1 = 37 and 9*9+1 = 82 terms in float32:
      |conv9 - conv4| <= (gamma_37 + gamma_82) (|W| * |z| + |b|);
    - the whole output: with the first layer bit-equal (here: the 4 channels' terms are a prefix
      of the 9 channels' in the convolution's sum, and s + 0 = s), g gives bit-equal outputs;
    - any extras: the output for e equals the output for e = 0 bit for bit (the same shapes
      run the same summation order; the extra terms are +-0, which leave every sum unchanged)."""
    g = seed.torch()
    torch.manual_seed(int(seed))
    net = latent.unet()
    wide = latent.widen_conv_in(net)
    assert wide.conv_in.in_channels == 4 + 5 == 9
    sd, sd_wide = net.state_dict(), wide.state_dict()
    assert sd.keys() == sd_wide.keys()
    assert all(torch.equal(sd[k], sd_wide[k]) for k in sd if k != "conv_in.weight")

    z = torch.randn(B, 4, 2 * h, 2 * w, generator=g)
    extra = torch.randn(B, 5, 2 * h, 2 * w, generator=g) * 10.0**magnitude
    ctx = torch.randn(B, 8, 64, generator=g)
    tt = torch.full((B,), t)
    with torch.no_grad():
        first4 = net.conv_in(z)
        first9 = wide.conv_in(torch.cat([z, extra], 1))
        out4 = net(z, tt, ctx, None)
        out9 = wide(torch.cat([z, extra], 1), tt, ctx, None)
        out9_zero = wide(torch.cat([z, torch.zeros_like(extra)], 1), tt, ctx, None)
    W, b = net.conv_in.weight.detach().double(), net.conv_in.bias.detach().double()
    scale = torch.nn.functional.conv2d(z.double().abs(), W.abs(), b.abs(), padding=1)
    gamma = lambda n: n * U32 / (1 - n * U32)  # noqa: E731
    budget = (gamma(37) + gamma(82)) * scale
    gap = (first9.double() - first4.double()).abs()
    current().worst("first_layer_gap_over_budget", float((gap / budget).max()))
    current().record(first_layer_bit_equal=bool(torch.equal(first4, first9)))
    assert bool((gap <= budget).all()), (
        f"conv_in with zero extra weights moved by {float(gap.max()):.3g}, beyond the rounding "
        f"budget {float(budget.max()):.3g}"
    )
    assert torch.equal(out9, out9_zero), (
        f"the extras (magnitude 1e{magnitude}) change the output by "
        f"{float((out9 - out9_zero).abs().max()):.3g}"
    )
    if torch.equal(first4, first9):
        assert torch.equal(out9, out4), "bit-equal first layers, different outputs"
    assert math.isfinite(float(out9.abs().max()))
    current().summary = (
        "conv_in widened 4 -> 9 channels, extra weights zero: the UNet's output is independent "
        "of the extras (bit-equal, up to 1e30) and equals the 4-channel UNet's"
    )
