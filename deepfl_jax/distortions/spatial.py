"""Spatial types (KADID ids 19-23): jitter, non-eccentricity patches, pixelate,
multi-level Otsu quantisation, colour blocks. Images (H, W, 3) float in [0, 1].

Stochastic types expose `<name>_draws(key, shape)` and `<name>_apply(image, param,
draws)`; counts (patches, blocks) may be traced: the draws are sized for the largest
KADID level and the unused ones are masked.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from deepfl_jax.distortions import _rng
from deepfl_jax.distortions.otsu import multithresh
from deepfl_jax.ops.matlab import round_half_away

JITTER_ITERATIONS = 5
PATCH = 16           # non-eccentricity block size
BLOCK = 32           # colour block size


# ----------------------------------------------------------------------------- jitter
def _keys_axis(coord, n_pad, pad, n):
  """MATLAB interp2 'cubic' (Keys, a = -0.5) taps along one axis.

  coord: 1-based sample positions on a replicate-padded axis of length n_pad (the
  original axis, length n, sits at pad+1..pad+n). Taps beyond the padded ends use
  MATLAB's cubic-convolution boundary rule f(0) = 3f(1) - 3f(2) + f(3) (and the mirror
  at the far end); the padded position k reads original index clamp(k - pad, 1, n).
  Returns 0-based original indices (4, ...) and weights (4, ...).
  """
  i = jnp.clip(jnp.floor(coord), 1, n_pad - 1)
  t = coord - i
  w = [((-0.5 * t + 1) * t - 0.5) * t,
       (1.5 * t - 2.5) * t * t + 1,
       ((-1.5 * t + 2) * t + 0.5) * t,
       (0.5 * t - 0.5) * t * t]
  lo = i <= 1          # tap i - 1 is position 0
  hi = i + 2 > n_pad   # tap i + 2 is position n_pad + 1
  w0, w1, w2, w3 = w
  w = [jnp.where(lo, 0.0, jnp.where(hi, w0 + w3, w0)),
       jnp.where(lo, w1 + 3 * w0, jnp.where(hi, w1 - 3 * w3, w1)),
       jnp.where(lo, w2 - 3 * w0, jnp.where(hi, w2 + 3 * w3, w2)),
       jnp.where(lo, w3 + w0, jnp.where(hi, 0.0, w3))]
  taps = [jnp.clip(i + d, 1, n_pad) for d in (-1, 0, 1, 2)]
  idx = [jnp.clip(k - pad, 1, n).astype(jnp.int32) - 1 for k in taps]
  return jnp.stack(idx), jnp.stack(w)


def _warp_once(image, sy, sx):
  """KADID `imwarpmap(I, [sy sx], 'bicubic', true)`: interp2(J, X - sx, Y - sy,
  'bicubic') on the replicate-padded image (rows padded by ceil(max|sx|), columns by
  ceil(max|sy|), x/y swapped as in the original), cropped back."""
  h, w = image.shape[:2]
  pr = jnp.ceil(jnp.max(jnp.abs(sx)))
  pc = jnp.ceil(jnp.max(jnp.abs(sy)))
  rows = jnp.arange(1, h + 1, dtype=image.dtype)[:, None] + pr - sy
  cols = jnp.arange(1, w + 1, dtype=image.dtype)[None, :] + pc - sx
  ir, wr = _keys_axis(rows, h + 2 * pr, pr, h)
  ic, wc = _keys_axis(cols, w + 2 * pc, pc, w)
  # Gathers of pixel rows by flat index: XLA:CPU runs them 1.3x faster than the
  # two-index gather image[ir, ic] (same values).
  flat = image.reshape(h * w, image.shape[-1])
  out = jnp.zeros_like(image)
  for a in range(4):
    for b in range(4):
      g = jnp.take(flat, (ir[a] * w + ic[b]).ravel(), axis=0, mode="clip")
      out = out + (wr[a] * wc[b])[..., None] * g.reshape(image.shape)
  return out


def jitter_draws(key, shape, dtype=jnp.float32):
  """randn(h, w, 2) per iteration: (5, H, W, 2), channel 0 = row shift, 1 = column."""
  h, w = shape[:2]
  return {"n": _rng.normal(key, (JITTER_ITERATIONS, h, w, 2), dtype)}   # = jax.random.normal


def jitter_apply(image, std, draws):
  """Type 19, `imjitter` -> imscatter(I, [], std, 5): five bicubic warps by
  per-pixel displacements N(0, std^2)."""
  def body(k, img):
    d = draws["n"][k] * std
    return _warp_once(img, d[..., 0], d[..., 1])
  return jax.lax.fori_loop(0, JITTER_ITERATIONS, body, image)


def jitter(image, std, key):
  return jitter_apply(image, std, jitter_draws(key, image.shape, image.dtype))


# ------------------------------------------------------------ non-eccentricity patch
def non_eccentricity_draws(key, shape=None, dtype=jnp.float32, *, max_patches: int = 100):
  """Four uniforms per patch: (w_start, h_start, dst-col jitter, dst-row jitter)."""
  del shape
  return {"u": jax.random.uniform(key, (max_patches, 4), dtype)}


def non_eccentricity_positions(u, height, width):
  """1-based (src_row, src_col, dst_row, dst_col) per patch, (P, 4) int32."""
  src_c = round_half_away(u[:, 0] * (width - 48)) + PATCH
  src_r = round_half_away(u[:, 1] * (height - 48)) + PATCH
  dst_c = src_c + round_half_away((u[:, 2] - 0.5) * PATCH)
  dst_r = src_r + round_half_away((u[:, 3] - 0.5) * PATCH)
  return jnp.stack([src_r, src_c, dst_r, dst_c], -1).astype(jnp.int32)


def non_eccentricity_patch_apply(image, n_patches, draws):
  """Type 20, `imnoneccentricity`: n 16x16 blocks, each copied from a random source
  (start round(rand (W - 48)) + 16) to a destination offset by round((rand - 0.5) 16),
  in place and in order (a later block may copy moved pixels). Needs H, W > 48."""
  h, w = image.shape[:2]
  pos = non_eccentricity_positions(draws["u"], h, w) - 1
  n = jnp.round(jnp.asarray(n_patches))
  def body(k, img):
    sr, sc, dr, dc = pos[k, 0], pos[k, 1], pos[k, 2], pos[k, 3]
    block = jax.lax.dynamic_slice(img, (sr, sc, 0), (PATCH, PATCH, 3))
    # Masking the 16x16 block (not the whole image) keeps the update in place.
    old = jax.lax.dynamic_slice(img, (dr, dc, 0), (PATCH, PATCH, 3))
    return jax.lax.dynamic_update_slice(img, jnp.where(k < n, block, old), (dr, dc, 0))
  return jax.lax.fori_loop(0, pos.shape[0], body, image)


def non_eccentricity_patch(image, n_patches, key):
  return non_eccentricity_patch_apply(
      image, n_patches, non_eccentricity_draws(key, image.shape, image.dtype))


# ------------------------------------------------------------------------ pixelate
def _nearest_index(n, scale_z):
  """0-based source index per output pixel of imresize(imresize(x, z, 'nearest'),
  [n], 'nearest') along one axis of length n (low-res length m = ceil(z n))."""
  m = jnp.ceil(scale_z * n)
  r = jnp.arange(1, n + 1, dtype=jnp.float32)
  # Up-scaling by n / m: source u = floor((2r - 1) m / (2n)) + 1, exact in integers.
  u = jnp.floor((2 * r - 1) * m / (2 * n)) + 1
  u = jnp.clip(u, 1, m)
  # Down-scaling by z (MATLAB maps with the scalar z): j = floor((u - 0.5)/z + 1).
  j = jnp.floor((u - 0.5) / scale_z + 1)
  return jnp.clip(j, 1, n).astype(jnp.int32) - 1


def pixelate(image, strength, key=None):
  """Type 21, `impixelate`: z = 0.95 - strength^0.6; nearest-neighbour downscale by z
  (output ceil(z size)), then nearest-neighbour upscale back to H x W."""
  del key
  h, w = image.shape[:2]
  z = 0.95 - jnp.asarray(strength, jnp.float32) ** 0.6
  return image[_nearest_index(h, z)][:, _nearest_index(w, z)]


# ---------------------------------------------------------------------- colour block
def color_block_draws(key, shape=None, dtype=jnp.float32, *, max_blocks: int = 10):
  """Five uniforms per block: (r, g, b, x, y)."""
  del shape
  return {"u": jax.random.uniform(key, (max_blocks, 5), dtype)}


def color_block_apply(image, n_blocks, draws):
  """Type 23, `imcolorblock`: n opaque 32x32 squares of random colour, top-left
  x = rand (W - 32), y = rand (H - 32) rounded half away (int32 cast), 1-based, clipped
  to the image; painted in order. Needs H, W > 32."""
  h, w = image.shape[:2]
  u = draws["u"]
  n = jnp.round(jnp.asarray(n_blocks))
  unused = jnp.arange(u.shape[0]) >= n
  # Unused blocks are moved off the image, which keeps the per-pixel masks free of
  # per-image scalars (much faster under vmap).
  xi = jnp.where(unused, -4 * BLOCK, round_half_away(u[:, 3] * (w - BLOCK)))  # 1-based
  yi = jnp.where(unused, -4 * BLOCK, round_half_away(u[:, 4] * (h - BLOCK)))
  rr = jnp.arange(1, h + 1, dtype=u.dtype)
  cc = jnp.arange(1, w + 1, dtype=u.dtype)
  out = image
  for k in range(u.shape[0]):
    in_rows = (rr >= yi[k]) & (rr < yi[k] + BLOCK)
    in_cols = (cc >= xi[k]) & (cc < xi[k] + BLOCK)
    inside = in_rows[:, None, None] & in_cols[None, :, None]
    out = jnp.where(inside, u[k, :3].astype(image.dtype), out)
  return out


def color_block(image, n_blocks, key):
  return color_block_apply(image, n_blocks, color_block_draws(key, image.shape, image.dtype))




# -------------------------------------------------------------------- quantization
def quantization(image, n_thresholds, key=None, *, max_thresholds: int = 20,
                 host: bool = True, search_dtype=jnp.float64):
  """Type 22, `imnoisequantize`: th = multithresh(I, N) over all pixels and channels
  together (see `otsu.py`), then imquantize(I, th, [0, th(2:end), 1]): I <= th(1) -> 0,
  th(k-1) < I <= th(k) -> th(k), I > th(N) -> 1. N is clamped to [3, max_thresholds].
  host / search_dtype: where and in which precision the Otsu search runs (otsu.py)."""
  del key
  n = jnp.clip(jnp.round(jnp.asarray(n_thresholds)), 3, max_thresholds).astype(jnp.int32)
  th = multithresh(image, n, max_thresholds=max_thresholds, host=host,
                   search_dtype=search_dtype)                            # inf beyond n
  cls = jnp.sum(image[..., None] > th, axis=-1)                           # 0..n
  values = jnp.concatenate([jnp.zeros((1,), image.dtype), th[1:],
                            jnp.ones((1,), image.dtype)])
  return jnp.where(cls >= n, 1.0, values[jnp.minimum(cls, max_thresholds)])
