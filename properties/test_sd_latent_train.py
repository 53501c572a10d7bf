"""Training, saving and sampling the tiny latent diffusion model from Python and from the command
line (impl/diffusion/latent/train.py, sample.py): each training stage is its written-out objective
under Adam, the stages compose into train(), and the two commands pass their options through."""

import copy

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from impl.diffusion.latent import autoencoder, data, pipeline, sample, train
from properties.adapters.latent import Reference
from properties.catalogue import claim

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 16  # the smallest image the autoencoder (8) and the UNet (2) accept


def tiny_model(seed=0, scale=0.7, latent=Reference):
    """A fresh TinySD of `latent` (the reference's unless a property passes its fixture)."""
    torch.manual_seed(seed)
    return latent.tiny_sd(size=SIZE, scale=scale)


def assert_same_parameters(got, want, what):
    """Two copies that took the same Adam steps on the same objective, perhaps with its float32
    operations in another order: rounding moves each gradient by ~1e-7 relative, each Adam step
    (lr <= 2e-3) by at most lr x that, so 1e-6 absolute separates them from any other step."""
    for (k, a), (k2, b) in zip(got.state_dict().items(), want.state_dict().items(), strict=True):
        assert k == k2
        assert torch.allclose(a, b, rtol=0, atol=1e-6), f"{what}: {k} differs"


@claim("SD-01.shapes")
def test_autoencoder_stage_is_reconstruction_plus_beta_kl_under_adam(latent):
    """Each step: x from data.sample, (mean, log var) = encode(x), z = mean + exp(log var / 2) eps,
    loss = mean (decode(z) - x)^2 + beta mean_i KL_i, Adam at lr 2e-3; then scale = 1 / std of the
    posterior means of 512 fresh images. Progress: one line at step 1, every 250 and the last."""
    model, beta, steps, batch = tiny_model(latent=latent), 0.5, 3, 2
    ref = copy.deepcopy(model)
    lines = []
    latent.train_autoencoder(
        model, steps, batch, beta, torch.Generator().manual_seed(5), lines.append
    )
    g = torch.Generator().manual_seed(5)
    opt = torch.optim.Adam(ref.ae.parameters(), lr=2e-3)
    for _ in range(steps):
        x = data.sample(batch, SIZE, g)[0]
        mean, log_var = ref.ae.encode(x)
        z = mean + torch.exp(log_var / 2) * torch.randn(mean.shape, generator=g)
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).flatten(1).sum(1)
        loss = ((ref.ae.decode(z) - x) ** 2).mean() + beta * kl.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert_same_parameters(model, ref, "autoencoder after 3 steps")
    with torch.no_grad():
        latents = ref.ae.encode(data.sample(512, SIZE, g)[0])[0]
    assert model.scale == pytest.approx(1 / latents.std().item(), rel=1e-5)
    assert [line.split(":")[0] for line in lines[:-1]] == ["autoencoder 1/3", "autoencoder 3/3"]
    assert lines[-1].startswith("latent scale factor")


def test_progress_lines_at_the_first_every_250th_and_the_last_step():
    lines = []
    ae = autoencoder.Autoencoder(channels=(1, 1, 1))
    model = type("Tiny", (), {"ae": ae, "size": 8, "scale": 1.0})()
    train.train_autoencoder(model, 252, 1, 0.0, torch.Generator().manual_seed(0), lines.append)
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "autoencoder 1/252", "autoencoder 251/252", "autoencoder 252/252"
    ]  # fmt: skip


@claim("SD-03")
def test_denoiser_loss_written_out(latent):
    """z_0 = scale mean(x), drop ~ Bernoulli(p_uncond) (the caption becomes ""), t uniform in
    [0, 1000), z_t = sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps (scaled-linear abar, float32),
    loss = mean (eps_theta(z_t, t, tau(prompt)) - eps)^2."""
    model = tiny_model(scale=0.7, latent=latent)
    images, captions, _ = data.sample(6, SIZE, torch.Generator().manual_seed(1))
    with torch.no_grad():
        loss, drop = latent.denoiser_loss(
            model, images, captions, torch.Generator().manual_seed(2), p_uncond=0.5
        )
        g = torch.Generator().manual_seed(2)
        z0 = model.ae.encode(images)[0] * 0.7
        want_drop = torch.rand(6, generator=g) < 0.5
        prompts = ["" if d else c for c, d in zip(captions, want_drop.tolist(), strict=True)]
        context, mask = model.encode_prompts(prompts)
        t = torch.randint(0, 1000, (6,), generator=g)
        eps = torch.randn(z0.shape, generator=g)
        a = latent.scaled_linear_abar(torch.float32)[t][:, None, None, None]
        z_t = a.sqrt() * z0 + (1 - a).sqrt() * eps
        want = ((model.unet(z_t, t, context, mask) - eps) ** 2).mean()
    assert torch.equal(drop, want_drop) and 0 < int(drop.sum()) < 6
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)


@claim("SD-03")
def test_denoiser_stage_trains_the_unet_and_the_text_encoder_under_adam(latent):
    """Each step: images and captions from data.sample, denoiser_loss, one Adam step (lr 1e-3) on
    the UNet and the text encoder together; the autoencoder stays as it is."""
    model = tiny_model(latent=latent)
    ref = copy.deepcopy(model)
    latent.train_denoiser(model, 2, 3, torch.Generator().manual_seed(3), lambda _: None)
    g = torch.Generator().manual_seed(3)
    opt = torch.optim.Adam([*ref.unet.parameters(), *ref.text.parameters()], lr=1e-3)
    for _ in range(2):
        images, captions, _ = data.sample(3, SIZE, g)
        loss, _ = latent.denoiser_loss(ref, images, captions, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert_same_parameters(model, ref, "denoiser after 2 steps")
    untouched = tiny_model(latent=latent)
    assert_same_parameters(model.ae, untouched.ae, "autoencoder")


def test_train_is_the_two_stages_on_one_generator(capsys):
    """train() runs the autoencoder stage, then the denoiser stage, on one generator seeded
    `seed` (0 by default) with beta = BETA by default; progress goes to `log` only."""
    model, ref = tiny_model(), tiny_model()
    train.train(model, ae_steps=1, steps=2, batch=2, beta=0.3, seed=4, log=lambda _: None)
    g = torch.Generator().manual_seed(4)
    train.train_autoencoder(ref, 1, 2, 0.3, g, lambda _: None)
    train.train_denoiser(ref, 2, 2, g, lambda _: None)
    assert_same_parameters(model, ref, "train() against its stages")
    assert model.scale == ref.scale
    model, ref, lines = tiny_model(), tiny_model(), []
    train.train(model, 1, 1, 2, log=lines.append)
    g = torch.Generator().manual_seed(0)
    train.train_autoencoder(ref, 1, 2, train.BETA, g, lambda _: None)
    train.train_denoiser(ref, 1, 2, g, lambda _: None)
    assert_same_parameters(model, ref, "train() with its defaults")
    assert len(lines) == 3 and capsys.readouterr().out == ""


def test_train_command_trains_and_saves(tmp_path, capsys):
    """`python -m impl.diffusion.latent.train` with its options: the saved model is the one
    train() gives after torch.manual_seed(seed)."""
    out = tmp_path / "m.safetensors"
    train.main(["--out", str(out), "--ae-steps", "1", "--steps", "1", "--batch", "2",
                "--seed", "3"])  # fmt: skip
    assert capsys.readouterr().out.strip().endswith(f"saved {out}")
    torch.manual_seed(3)
    want = train.train(train.TinySD(), 1, 1, 2, seed=3, log=lambda _: None)
    got = train.load(out)
    assert_same_parameters(got, want, "the command's model")
    assert got.scale == want.scale and got.size == 32


def test_train_command_defaults(monkeypatch):
    calls = {}
    monkeypatch.setattr(train, "train", lambda m, *a, **k: calls.setdefault("train", (a, k)) and m)
    monkeypatch.setattr(train, "save", lambda m, path: calls.setdefault("save", path))
    train.main([])
    assert (
        calls["train"] == ((1500, 4000, 64), {"seed": 0}) and calls["save"] == "tiny-sd.safetensors"
    )


def test_sample_command_writes_the_generated_row(tmp_path, capsys):
    """`python -m impl.diffusion.latent.sample`: n images of the prompt from the loaded model, with
    the given guidance, steps and seed, side by side in one PNG (pixels (x + 1) / 2, 8 bits)."""
    path, png = tmp_path / "m.safetensors", tmp_path / "row.png"
    train.save(tiny_model(), path)
    prompt = "a red circle on the left"
    sample.main(["--model", str(path), "--prompt", prompt, "--guidance", "1.5", "--steps", "2",
                 "--n", "2", "--seed", "7", "--out", str(png)])  # fmt: skip
    assert str(png) in capsys.readouterr().out
    images = train.load(path).generate([prompt] * 2, 1.5, 2, torch.Generator().manual_seed(7))
    want = torch.cat(list(images), dim=2).permute(1, 2, 0).div(2).add(0.5).clamp(0, 1).numpy()
    got = plt.imread(png)
    assert got.shape == (SIZE, 2 * SIZE, 4)
    assert np.abs(got[..., :3] - want).max() <= 1 / 255  # imsave keeps 8 bits (truncated)


def test_sample_command_defaults(tmp_path, monkeypatch):
    seen = {}

    class Model:
        def generate(self, prompts, guidance, steps, generator):
            seen.update(prompts=prompts, guidance=guidance, steps=steps,
                        first=torch.rand(1, generator=generator))  # fmt: skip
            return torch.zeros(len(prompts), 3, 8, 8)

    monkeypatch.setattr(train, "load", lambda p: seen.setdefault("path", p) and Model())
    monkeypatch.chdir(tmp_path)
    sample.main(["--prompt", "a red circle"])  # a prompt of the vocabulary: main checks it
    assert (tmp_path / "samples.png").exists()
    assert seen["path"] == "tiny-sd.safetensors" and seen["prompts"] == ["a red circle"] * 4
    assert seen["guidance"] == 3.0 and seen["steps"] == 20
    assert torch.equal(seen["first"], torch.rand(1, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(SystemExit):
        sample.main(["--out", str(tmp_path / "s.png")])  # --prompt is required


def usage_error(main, argv, capsys):
    """argparse's usage error of the command: (exit status, the message's last line)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err.strip().splitlines()[-1]


def test_issue_16_commands_refuse_wrong_options_by_name(tmp_path, capsys):
    """Issue 16: a wrong option of either command is argparse's usage error (exit status 2) that
    names the option, found before the model is loaded or trained: a wrong type (argparse), a
    value out of range, an unknown prompt word, a model file that does not load (a NaN scale), an
    output path that cannot be written."""
    path = tmp_path / "m.safetensors"
    train.save(tiny_model(), path)
    nan_file = tmp_path / "nan.safetensors"
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in tiny_model().state_dict().items()}
    save_file(state, str(nan_file), metadata={"format": "tiny-sd/1", "size": "16", "scale": "nan"})
    ok = {"--model": str(path), "--prompt": "a red circle", "--steps": "1", "--n": "1",
          "--out": str(tmp_path / "s.png")}  # fmt: skip
    for option, value in [("--steps", "x"), ("--steps", "0"), ("--steps", "1000"),
                          ("--n", "0"), ("--guidance", "nan"), ("--guidance", "-1"),
                          ("--seed", "-1"), ("--prompt", "a purple circle"),
                          ("--model", str(nan_file)), ("--model", str(tmp_path / "missing")),
                          ("--out", str(tmp_path / "no-dir" / "s.png")),
                          ("--out", str(tmp_path / "s.txt"))]:  # fmt: skip
        argv = [w for k, v in (ok | {option: value}).items() for w in (k, v)]
        status, message = usage_error(sample.main, argv, capsys)
        assert status == 2 and f"error: argument {option}: " in message, (option, value, message)
    assert not (tmp_path / "s.png").exists()
    out = tmp_path / "t.safetensors"
    for option, value in [("--ae-steps", "-1"), ("--steps", "2.5"), ("--batch", "0"),
                          ("--seed", str(2**64)), ("--out", str(tmp_path / "no-dir" / "m.st")),
                          ("--out", str(tmp_path))]:  # fmt: skip
        argv = ["--out", str(out), "--ae-steps", "0", "--steps", "0", "--batch", "1", option, value]
        status, message = usage_error(train.main, argv, capsys)
        assert status == 2 and f"error: argument {option}: " in message, (option, value, message)
    assert not out.exists()


def test_command_help_describes_every_option_and_its_default(capsys):
    """--help: every option has a description with its default; sample's says it writes
    samples.png."""
    helps = {}
    for main, options in [
        (sample.main, ["--model", "--prompt", "--guidance", "--steps", "--n", "--seed", "--out"]),
        (train.main, ["--out", "--ae-steps", "--steps", "--batch", "--seed"]),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["--help"])
        assert e.value.code == 0
        helps[main] = usage = " ".join(capsys.readouterr().out.split())
        for option in options:
            described = usage.split(f" {option} ")[-1].split(" --")[0]
            assert "(default: " in described or "(required)" in described, (option, described)
    description = helps[sample.main].split(" options: ")[0]
    assert "samples.png" in description and "PNG" in description


def test_numpy_integer_counts_are_accepted_like_python_ones():
    """Issue 16: counts (steps, batch, seed, size) may be numpy integers; the result is the one of
    the same Python integers."""
    i = np.int64
    model, ref = tiny_model(), tiny_model()
    train.train(model, i(1), i(1), i(2), seed=i(3), log=lambda _: None)
    train.train(ref, 1, 1, 2, seed=3, log=lambda _: None)
    assert_same_parameters(model, ref, "numpy counts against Python ones")
    assert train.TinySD(size=i(16)).size == 16
    assert torch.equal(pipeline.sd_timesteps(i(20), i(1)), pipeline.sd_timesteps(20, 1))
