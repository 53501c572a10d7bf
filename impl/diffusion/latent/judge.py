"""A deterministic judge of prompt adherence from pixel statistics.

Pixels whose brightest channel exceeds 0 (in [-1, 1]) are the shape; the colour is the palette
colour nearest to their mean, the region the region centre nearest to their centroid. An image
with no such pixels gets (None, None). adherence(images, picks) is the fraction of images whose
judged colour and region both match their prompt's.
"""

import torch

from impl import _checks
from impl.diffusion.latent import _args, data


def judge(image):
    """(colour, region) of one image (3, H, W), finite, H and W >= 1."""
    _checks.tensor("image", image, ndim=3, finite=False)
    if image.shape[0] != 3 or not image.shape[1] or not image.shape[2]:
        raise ValueError(f"image: expected (3, H, W) with H, W >= 1, got {tuple(image.shape)}")
    _args.tensor("image", image, (3, None, None))
    on = image.max(dim=0).values > 0
    if not on.any():
        return None, None
    mean = image[:, on].mean(dim=1)
    colour = min(data.COLOURS, key=lambda c: float((torch.tensor(data.COLOURS[c]) - mean).norm()))
    H, W = on.shape
    ys, xs = torch.nonzero(on, as_tuple=True)
    cy, cx = (ys.float().mean() + 0.5) / H, (xs.float().mean() + 0.5) / W
    region = min(
        data.REGIONS, key=lambda r: (data.REGIONS[r][0] - cy) ** 2 + (data.REGIONS[r][1] - cx) ** 2
    )
    return colour, region


def adherence(images, picks):
    """Fraction of images whose (colour, region) matches the prompt's (colour, shape, region).
    images (B, 3, H, W), finite, B >= 1; picks: B (colour, shape, region) triples of data's names."""
    _checks.tensor("images", images, ndim=4, finite=False)
    if not images.shape[0] or images.shape[1] != 3 or not images.shape[2] or not images.shape[3]:
        raise ValueError(f"images: expected (B, 3, H, W), all >= 1, got {tuple(images.shape)}")
    _args.tensor("images", images, (None, 3, None, None))
    if not isinstance(picks, (list, tuple)):
        raise TypeError(f"picks: expected a list of (colour, shape, region), got {picks!r:.60}")
    if len(picks) != len(images):
        raise ValueError(f"picks: {len(picks)} prompts for {len(images)} images")
    for k, pick in enumerate(picks):
        if not isinstance(pick, (list, tuple)) or len(pick) != 3:
            raise ValueError(f"picks[{k}]: expected (colour, shape, region), got {pick!r:.60}")
        for value, names in zip(pick, (data.COLOURS, data.SHAPES, data.REGIONS), strict=True):
            if not isinstance(value, str) or value not in names:
                raise ValueError(f"picks[{k}]: {value!r} is not one of {tuple(names)}")
    hits = [judge(img) == (c, r) for img, (c, _, r) in zip(images, picks, strict=True)]
    return sum(hits) / len(hits)
