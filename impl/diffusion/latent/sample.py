"""Sample images from a prompt with a trained tiny latent diffusion model.

    python -m impl.diffusion.latent.sample --model tiny-sd.safetensors \
        --prompt "a red circle on the left" --guidance 3 --n 4 --out samples.png
"""

import argparse

import torch

from impl.diffusion.latent import train


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sample images from a prompt.")
    parser.add_argument("--model", default="tiny-sd.safetensors")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="samples.png")
    args = parser.parse_args(argv)
    model = train.load(args.model)
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
