"""A deterministic judge of prompt adherence from pixel statistics.

Pixels whose brightest channel exceeds 0 (in [-1, 1]) are the shape; the colour is the palette
colour nearest to their mean, the region the region centre nearest to their centroid. An image
with no such pixels gets (None, None). adherence(images, picks) is the fraction of images whose
judged colour and region both match their prompt's.
"""

import torch

from impl.diffusion.latent import data


def judge(image):
    """(colour, region) of one image (3, H, W)."""
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
    """Fraction of images whose (colour, region) matches the prompt's (colour, shape, region)."""
    hits = [judge(img) == (c, r) for img, (c, _, r) in zip(images, picks, strict=True)]
    return sum(hits) / len(hits)
