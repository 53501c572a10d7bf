"""Sample images from a prompt with a trained tiny latent diffusion model.

    python -m impl.diffusion.latent.sample --model tiny-sd.safetensors \
        --prompt "a red circle on the left" --guidance 3 --n 4 --out samples.png
"""

import argparse
import os

import torch

from impl import _checks
from impl.diffusion.latent import _args, pipeline, text, train


def main(argv=None):
    """The command: argv (None: sys.argv[1:]) as --help describes. A wrong option is a usage
    error naming it (argparse's SystemExit 2), before the model is loaded."""
    parser = argparse.ArgumentParser(
        description="Sample n images of one prompt from a trained tiny latent diffusion model and "
        "write them side by side to one PNG file (samples.png by default)."
    )
    parser.add_argument("--model", default="tiny-sd.safetensors",
                        help="the model file written by impl.diffusion.latent.train "
                        "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--prompt", required=True,
                        help='the prompt, words of the training captions, e.g. "a red circle on '
                        'the left" (required)')  # fmt: skip
    parser.add_argument("--guidance", type=float, default=3.0,
                        help="the classifier-free guidance scale s >= 0 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=20,
                        help=f"DDIM steps, in [1, {pipeline.T - 1}] (default: %(default)s)")  # fmt: skip
    parser.add_argument("--n", type=int, default=4,
                        help="the number of images, >= 1 (default: %(default)s)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0,
                        help="the seed of the sampling noise, in [0, 2**64) (default: %(default)s)")  # fmt: skip
    parser.add_argument("--out", default="samples.png",
                        help="the PNG file to write, in an existing directory (default: "
                        "%(default)s)")  # fmt: skip
    args = parser.parse_args(argv)

    def check(option, rule, *a, **k):
        try:
            rule(*a, **k)
        except (ValueError, TypeError) as e:
            parser.error(f"argument {option}: {e}")

    check("--prompt", text.tokenize, [args.prompt])
    check("--guidance", _checks.scalar, "guidance", args.guidance, lo=0)
    check("--steps", _checks.integer, "steps", args.steps, lo=1, hi=pipeline.T - 1)
    check("--n", _checks.integer, "n", args.n, lo=1)
    check("--seed", _args.seed, "seed", args.seed)
    check("--out", _args.path, "out", args.out, existing=False)
    if not os.fspath(args.out).lower().endswith(".png"):
        parser.error(f"argument --out: {args.out} is not a .png file name")
    try:
        model = train.load(args.model)
    except (ValueError, TypeError) as e:
        parser.error(f"argument --model: {e}")
    images = model.generate([args.prompt] * args.n, args.guidance, args.steps,
                            torch.Generator().manual_seed(args.seed))  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    row = torch.cat(list(images), dim=2).permute(1, 2, 0).div(2).add(0.5).clamp(0, 1)
    plt.imsave(args.out, row.numpy())
    print(f"wrote {args.out}: {args.n} samples of {args.prompt!r} at guidance {args.guidance}")


if __name__ == "__main__":
    main()
