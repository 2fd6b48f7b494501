"""Stage 1's pristine sources: dead leaves, augmented crops, disjoint content groups."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deepfl_jax.data import mini_kadid, pristine


def test_dead_leaves_is_seeded_colour_and_multiscale():
  a = pristine.dead_leaves(3, (96, 128))
  assert a.shape == (96, 128, 3) and a.dtype == np.uint8
  assert np.array_equal(a, pristine.dead_leaves(3, (96, 128)))
  assert not np.array_equal(a, pristine.dead_leaves(4, (96, 128)))
  assert a.std() > 20                                   # not a flat image
  assert np.abs(a[..., 0].astype(int) - a[..., 2]).mean() > 3   # has colour
  # Occluding leaves of many sizes: many distinct colours, but smooth regions too.
  flat = np.mean(np.abs(a[1:].astype(int) - a[:-1]).max(-1) <= 3)
  assert 0.5 < flat < 0.99, flat
  assert len(np.unique(a.reshape(-1, 3), axis=0)) > 50


def test_augment_transform_scales_flips_and_is_seeded():
  img = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (200, 1, 3))
  tr = pristine.augment_transform((64, 96), min_scale=0.3, max_scale=1.0)
  outs = [tr({"image": img, "name": "ramp"}, np.random.default_rng(s)) for s in range(12)]
  assert all(o["image"].shape == (64, 96, 3) and o["image"].dtype == np.uint8
             and o["name"] == "ramp" for o in outs)
  again = tr({"image": img}, np.random.default_rng(5))["image"]
  assert np.array_equal(again, outs[5]["image"])
  # A horizontal ramp: the slope across the crop is the scale (sign: the flip).
  slopes = [float(np.polyfit(np.arange(96), o["image"][32, :, 0].astype(float), 1)[0])
            for o in outs]
  assert any(s > 0 for s in slopes) and any(s < 0 for s in slopes)
  mags = sorted(abs(s) for s in slopes)
  assert mags[0] > 0.9 and mags[-1] > 1.5 * mags[0] and mags[-1] < 1 / 0.3 + 0.2


def test_augment_transform_enlarges_small_images_and_matches_imresize():
  grey = (np.arange(40 * 50) % 251).astype(np.uint8).reshape(40, 50)
  out = pristine.augment_transform((64, 80), flip=False)({"image": grey},
                                                         np.random.default_rng(0))
  assert out["image"].shape == (64, 80, 3)
  assert np.array_equal(out["image"][..., 0], out["image"][..., 2])  # grey -> RGB
  # The resize is mini-KADID's MATLAB-style bicubic (same pixels).
  img = np.random.default_rng(1).integers(0, 256, (120, 160, 3)).astype(np.uint8)
  assert np.array_equal(pristine._resize(img, (60, 80)),  # pylint: disable=protected-access
                        mini_kadid.fit_to_size(img, (60, 80)))


def test_colour_jitter_colours_grey_keeps_structure_and_is_seeded():
  grey = pristine.grey_photo("camera")[::4, ::4]
  assert pristine.colour_jitter(grey, np.random.default_rng(0), 0.0) is grey
  outs = [pristine.colour_jitter(grey, np.random.default_rng(s), 0.4) for s in range(8)]
  assert np.array_equal(outs[3], pristine.colour_jitter(grey, np.random.default_rng(3),
                                                        0.4))
  chroma = [np.abs(o.astype(float) - o.mean(-1, keepdims=True)).mean() for o in outs]
  assert max(chroma) > 3 and len({round(c, 3) for c in chroma}) == 8  # grey gets colour
  for o in outs:  # the same picture: monotone per-channel curves keep its structure
    assert o.shape == grey.shape and o.dtype == np.uint8
    assert np.corrcoef(o[..., 1].ravel(), grey[..., 1].ravel())[0, 1] > 0.95
  # Through the transform (config.stage1.augment.colour), and refused out of range.
  tr = pristine.augment_transform((64, 80), colour=0.4)
  out = tr({"image": grey}, np.random.default_rng(1))["image"]
  assert np.abs(out[..., 0].astype(int) - out[..., 2]).max() > 0
  with pytest.raises(ValueError, match="colour"):
    pristine.augment_transform((64, 80), colour=2.0)


def test_stage1_source_is_disjoint_from_evaluation_and_transfer(tmp_path):
  src = pristine.stage1_source(num_dead_leaves=3)
  names = list(src.index["content"])
  assert names[:len(pristine.GREY_PHOTOS)] == list(pristine.GREY_PHOTOS)
  assert len(names) == len(pristine.GREY_PHOTOS) + 3
  assert all(src.records[i]["image"].shape[-1] == 3 for i in range(len(src)))
  Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(tmp_path / "Mine.png")
  indep = pristine.independent_photos(sklearn=False, shared_dir=None,
                                      folders=[str(tmp_path)])
  assert list(indep) == ["mine"] and indep["mine"].shape == (200, 300, 3)
  pristine.check_disjoint({"stage1": names, "stage2/3": mini_kadid.PHOTOS,
                           "transfer": list(indep)})
  with pytest.raises(ValueError, match="'camera' is in both stage1 and transfer"):
    pristine.check_disjoint({"stage1": names, "transfer": ["camera"]})
  with pytest.raises(ValueError, match="sources"):
    pristine.stage1_source(("imagenet",))
  with pytest.raises(ValueError, match="does not exist"):
    pristine.independent_photos(sklearn=False, shared_dir=None,
                                folders=[str(tmp_path / "nope")])
