"""Synthetic captioned images, generated on the fly (nothing is downloaded).

An image is a black square of side `size` with one filled shape (circle, square or triangle) of
one colour (red, green, blue, yellow) in one region (left, right, top, bottom, center); its
caption is "a <colour> <shape> on the <region>" ("in the center"). Pixel values are in [-1, 1].
"""

import torch

from impl import _checks

COLOURS = {"red": (1.0, -1.0, -1.0), "green": (-1.0, 1.0, -1.0), "blue": (-1.0, -1.0, 1.0),
           "yellow": (1.0, 1.0, -1.0)}  # fmt: skip
SHAPES = ("circle", "square", "triangle")
REGIONS = {"left": (0.5, 0.25), "right": (0.5, 0.75), "top": (0.25, 0.5), "bottom": (0.75, 0.5),
           "center": (0.5, 0.5)}  # fmt: skip


def caption(colour, shape, region):
    """The caption of an image: colour in COLOURS, shape in SHAPES, region in REGIONS."""
    _picks(colour, shape, region)
    where = "in the center" if region == "center" else f"on the {region}"
    return f"a {colour} {shape} {where}"


def image(colour, shape, region, size=32, radius=0.17):
    """(3, size, size) in [-1, 1]: size a positive multiple of 8 (the autoencoder's factor),
    radius in (0, 0.25] (the shape's size as a fraction of the side, so that it stays within its
    region of the image)."""
    _picks(colour, shape, region)
    _checks.integer("size", size, lo=1)
    if size % 8:
        raise ValueError(f"size: must be divisible by 8 (the autoencoder's factor), got {size}")
    _checks.scalar("radius", radius, lo=0, hi=0.25, lo_open=True)
    cy, cx = REGIONS[region]
    y, x = torch.meshgrid((torch.arange(size) + 0.5) / size, (torch.arange(size) + 0.5) / size,
                          indexing="ij")  # fmt: skip
    dy, dx = y - cy, x - cx
    if shape == "circle":
        inside = dy**2 + dx**2 <= radius**2
    elif shape == "square":
        inside = (dy.abs() <= radius * 0.85) & (dx.abs() <= radius * 0.85)
    else:  # triangle pointing up
        inside = (dy <= radius * 0.8) & (dy >= -radius) & (dx.abs() <= (dy + radius) * 0.6)
    colour_values = torch.tensor(COLOURS[colour])[:, None, None]
    return torch.where(inside, colour_values, torch.full_like(colour_values, -1.0))


def sample(n, size=32, generator=None):
    """n random (image, caption, (colour, shape, region)) triples: images (n, 3, size, size);
    n >= 1, size a positive multiple of 8, generator a torch.Generator or None."""
    _checks.integer("n", n, lo=1)
    _checks.integer("size", size, lo=1)
    if size % 8:
        raise ValueError(f"size: must be divisible by 8 (the autoencoder's factor), got {size}")
    _checks.generator("generator", generator)
    g = generator
    picks = [
        (list(COLOURS)[int(torch.randint(len(COLOURS), (), generator=g))],
         SHAPES[int(torch.randint(len(SHAPES), (), generator=g))],
         list(REGIONS)[int(torch.randint(len(REGIONS), (), generator=g))])
        for _ in range(n)
    ]  # fmt: skip
    images = torch.stack([image(*p, size=size) for p in picks])
    return images, [caption(*p) for p in picks], picks


def _picks(colour, shape, region):
    _checks.choice("colour", colour, COLOURS)
    _checks.choice("shape", shape, SHAPES)
    _checks.choice("region", region, REGIONS)
