"""KADID type 10: baseline JPEG (lossy path of libjpeg / libjpeg-turbo) in JAX.

The encoder as libjpeg(-turbo) runs it with `jpeg_set_quality(q, TRUE)` and the decoder
with its defaults, without entropy coding (lossless: it does not change the decoded
pixels). `jpeg(image (H, W, 3) float in [0, 1], quality, key) -> (H, W, 3)`; quality may
be traced, the key is unused (the codec is deterministic). Shapes are static.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


# ITU T.81 Annex K standard tables (natural row-major order), the IJG base tables.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99], dtype=np.int32).reshape(8, 8)
_STD_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99], dtype=np.int32).reshape(8, 8)

# libjpeg's fixed-point colour conversion (jccolor.c / jdcolor.c): 16 fractional bits.
_SCALEBITS = 16
_ONE_HALF = 1 << (_SCALEBITS - 1)
_CBCR_OFFSET = 128 << _SCALEBITS


def _fix(x: float) -> int:
  return int(x * (1 << _SCALEBITS) + 0.5)


def ijg_quant_tables(quality) -> tuple[jnp.ndarray, jnp.ndarray]:
  """IJG `jpeg_set_quality(q, force_baseline=TRUE)`: (luma, chroma) (8, 8) int32 tables.

  quality may be a traced float: it is rounded to an integer and clamped to [1, 100] as
  IJG's integer API takes it; scale = 5000 / q (integer division) below 50, else
  200 - 2q; entry = (base * scale + 50) / 100 clamped to [1, 255].
  """
  q = jnp.clip(jnp.round(jnp.asarray(quality, jnp.float32)), 1, 100).astype(jnp.int32)
  scale = jnp.where(q < 50, 5000 // q, 200 - 2 * q)

  def table(base):
    return jnp.clip((jnp.asarray(base) * scale + 50) // 100, 1, 255)

  return table(_STD_LUMA), table(_STD_CHROMA)


def _rgb_to_ycc(rgb: jnp.ndarray) -> jnp.ndarray:
  """libjpeg rgb_ycc_convert (JFIF full range) on int32 0..255: (..., 3) -> (..., 3)."""
  r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
  y = (_fix(0.299) * r + _fix(0.587) * g + _fix(0.114) * b + _ONE_HALF) >> _SCALEBITS
  # ONE_HALF - 1 keeps the 0.5 coefficient from rounding 255 up to 256 (jccolor.c).
  off = _CBCR_OFFSET + _ONE_HALF - 1
  cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + off) >> _SCALEBITS
  cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + off) >> _SCALEBITS
  return jnp.stack([y, cb, cr], axis=-1)


def _ycc_to_rgb(ycc: jnp.ndarray) -> jnp.ndarray:
  """libjpeg ycc_rgb_convert (tables of jdcolor.c) on int32, clamped to 0..255."""
  y, cb, cr = ycc[..., 0], ycc[..., 1] - 128, ycc[..., 2] - 128
  r = y + ((_fix(1.402) * cr + _ONE_HALF) >> _SCALEBITS)
  g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _ONE_HALF) >> _SCALEBITS)
  b = y + ((_fix(1.772) * cb + _ONE_HALF) >> _SCALEBITS)
  return jnp.clip(jnp.stack([r, g, b], axis=-1), 0, 255)


def _pad_edge(x: jnp.ndarray, rows: int, cols: int) -> jnp.ndarray:
  """Replicate the last row / column of (H, W) up to (rows, cols) (expand_*_edge)."""
  h, w = x.shape
  return jnp.pad(x, ((0, rows - h), (0, cols - w)), mode="edge")


def _ceil_to(n: int, m: int) -> int:
  return -(-n // m) * m


def _downsample_h2v2(c: jnp.ndarray) -> jnp.ndarray:
  """libjpeg h2v2_downsample of an int32 (H, W) plane, with its edge padding.

  Columns are replicated up to 2 * (component width in blocks * 8) before averaging;
  rows only up to an even count (the 2-row conversion buffer), then the downsampled
  plane's last row is replicated to a whole number of blocks (jcprepct.c). Each output
  is (sum of 2x2 + bias) >> 2 with bias alternating 1, 2, 1, 2 along a row.
  """
  h, w = c.shape
  hc, wc = -(-h // 2), -(-w // 2)
  wpad = 2 * _ceil_to(wc, 8)
  x = _pad_edge(c, 2 * hc, wpad)
  s = x.reshape(hc, 2, wpad // 2, 2).sum(axis=(1, 3))
  bias = jnp.asarray(np.tile([1, 2], wpad // 4), jnp.int32)
  d = (s + bias) >> 2
  return _pad_edge(d, _ceil_to(hc, 8), wpad // 2)


def _upsample_h2v2_fancy(c: jnp.ndarray, h: int, w: int) -> jnp.ndarray:
  """libjpeg(-turbo) h2v2_fancy_upsample (the decoder default) -> (h, w) int32.

  Triangular 3/4, 1/4 filter vertically (integer column sums, edge rows replicated as
  the context rows are), then horizontally with rounding biases 8 / 7 on the left / right
  output pixel and the edge samples replicated; only the ceil(h/2) x ceil(w/2) real
  samples are used.
  """
  hc, wc = -(-h // 2), -(-w // 2)
  c = c[:hc, :wc]
  up = jnp.concatenate([c[:1], c[:-1]], axis=0)
  dn = jnp.concatenate([c[1:], c[-1:]], axis=0)
  top = 3 * c + up      # output row 2i uses the row above
  bot = 3 * c + dn      # output row 2i + 1 uses the row below
  rows = jnp.stack([top, bot], axis=1).reshape(2 * hc, wc)
  left = jnp.concatenate([rows[:, :1], rows[:, :-1]], axis=1)
  right = jnp.concatenate([rows[:, 1:], rows[:, -1:]], axis=1)
  even = (3 * rows + left + 8) >> 4
  odd = (3 * rows + right + 7) >> 4
  out = jnp.stack([even, odd], axis=2).reshape(2 * hc, 2 * wc)
  return out[:h, :w]


def _blocks(x: jnp.ndarray) -> jnp.ndarray:
  """(..., 8a, 8b) -> (..., a, b, 8, 8)."""
  *lead, h, w = x.shape
  x = x.reshape(*lead, h // 8, 8, w // 8, 8)
  return jnp.swapaxes(x, -3, -2)


def _unblocks(x: jnp.ndarray) -> jnp.ndarray:
  """(..., a, b, 8, 8) -> (..., 8a, 8b)."""
  *lead, a, b, _, _ = x.shape
  return jnp.swapaxes(x, -3, -2).reshape(*lead, 8 * a, 8 * b)


# jfdctint.c / jidctint.c ("ISLOW", libjpeg's default DCT): 13-bit fixed-point
# constants, 2 extra bits between the passes.
_CONST_BITS = 13
_PASS1_BITS = 2
_F = {k: int(round(v * (1 << _CONST_BITS))) for k, v in {
    "0_298631336": 0.298631336, "0_390180644": 0.390180644, "0_541196100": 0.541196100,
    "0_765366865": 0.765366865, "0_899976223": 0.899976223, "1_175875602": 1.175875602,
    "1_501321110": 1.501321110, "1_847759065": 1.847759065, "1_961570560": 1.961570560,
    "2_053119869": 2.053119869, "2_562915447": 2.562915447, "3_072711026": 3.072711026,
}.items()}


def _descale(x, n: int):
  """libjpeg DESCALE: x / 2^n rounded (half up), by arithmetic shift."""
  return (x + (1 << (n - 1))) >> n


def _islow_odd(t4, t5, t6, t7):
  """Odd part shared by jfdctint / jidctint (LL&M figure 8): 4 unscaled sums."""
  z1, z2, z3, z4 = t4 + t7, t5 + t6, t4 + t6, t5 + t7
  z5 = (z3 + z4) * _F["1_175875602"]
  t4, t5 = t4 * _F["0_298631336"], t5 * _F["2_053119869"]
  t6, t7 = t6 * _F["3_072711026"], t7 * _F["1_501321110"]
  z1, z2 = z1 * -_F["0_899976223"], z2 * -_F["2_562915447"]
  z3, z4 = z3 * -_F["1_961570560"] + z5, z4 * -_F["0_390180644"] + z5
  return t4 + z1 + z3, t5 + z2 + z4, t6 + z2 + z3, t7 + z1 + z4


def _fdct_islow_1d(v, first: bool):
  """One pass of jpeg_fdct_islow over a list of 8 int32 arrays -> 8 arrays."""
  t0, t7 = v[0] + v[7], v[0] - v[7]
  t1, t6 = v[1] + v[6], v[1] - v[6]
  t2, t5 = v[2] + v[5], v[2] - v[5]
  t3, t4 = v[3] + v[4], v[3] - v[4]
  t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
  n = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS
  out = [None] * 8
  if first:
    out[0], out[4] = (t10 + t11) << _PASS1_BITS, (t10 - t11) << _PASS1_BITS
  else:
    out[0], out[4] = _descale(t10 + t11, _PASS1_BITS), _descale(t10 - t11, _PASS1_BITS)
  z1 = (t12 + t13) * _F["0_541196100"]
  out[2] = _descale(z1 + t13 * _F["0_765366865"], n)
  out[6] = _descale(z1 - t12 * _F["1_847759065"], n)
  o7, o5, o3, o1 = _islow_odd(t4, t5, t6, t7)
  out[7], out[5], out[3], out[1] = (_descale(o, n) for o in (o7, o5, o3, o1))
  return out


def _idct_islow_1d(v, first: bool):
  """One pass of jpeg_idct_islow over a list of 8 int32 arrays -> 8 arrays."""
  z1 = (v[2] + v[6]) * _F["0_541196100"]
  t2 = z1 - v[6] * _F["1_847759065"]
  t3 = z1 + v[2] * _F["0_765366865"]
  t0, t1 = (v[0] + v[4]) << _CONST_BITS, (v[0] - v[4]) << _CONST_BITS
  t10, t13, t11, t12 = t0 + t3, t0 - t3, t1 + t2, t1 - t2
  o0, o1, o2, o3 = _islow_odd(v[7], v[5], v[3], v[1])
  n = _CONST_BITS - _PASS1_BITS if first else _CONST_BITS + _PASS1_BITS + 3
  return [_descale(x, n) for x in (t10 + o3, t11 + o2, t12 + o1, t13 + o0,
                                    t13 - o0, t12 - o1, t11 - o2, t10 - o3)]


def _apply_2d(fn, blk):
  """Pass 1 along block rows (last axis), pass 2 along block columns (jfdctint order);
  for the IDCT the caller swaps the block axes to run columns first."""
  rows = fn([blk[..., k] for k in range(8)], True)
  blk = jnp.stack(rows, axis=-1)
  cols = fn([blk[..., k, :] for k in range(8)], False)
  return jnp.stack(cols, axis=-2)


def _quantize_islow(coef, table):
  """libjpeg-turbo's quantize(): |c| * reciprocal of (8 q) with its rounding fix-ups.

  For the 16-bit DCTELEM of SIMD builds this equals round-half-up of |c| / (8 q) with
  the sign restored (compute_reciprocal in jcdctmgr.c, emulated exactly).
  """
  d = table * 8
  b = jnp.floor(jnp.log2(d.astype(jnp.float32))).astype(jnp.int32)
  r = 16 + b
  one = jnp.left_shift(jnp.int32(1), r)
  fq, fr = one // d, one % d
  c = d // 2
  pow2 = fr == 0
  fq = jnp.where(pow2, fq >> 1, jnp.where(fr > d // 2, fq + 1, fq))
  r = jnp.where(pow2, r - 1, r)
  c = jnp.where(pow2 | (fr > d // 2), c, c + 1)
  mag = ((jnp.abs(coef) + c) * fq) >> r
  return jnp.where(coef < 0, -mag, mag)


def _code_plane(plane: jnp.ndarray, table: jnp.ndarray) -> jnp.ndarray:
  """Level shift, ISLOW FDCT, quantise, dequantise, ISLOW IDCT, range-limit.

  plane: int32 (..., 8a, 8b) 0..255 -> int32 of the same shape, bit-exact with
  libjpeg-turbo (integer arithmetic; the intermediates fit in int32 for 8-bit data).
  """
  blk = _blocks(plane - 128)
  coef = _quantize_islow(_apply_2d(_fdct_islow_1d, blk), table)
  deq = coef * table
  rec = jnp.swapaxes(_apply_2d(_idct_islow_1d, jnp.swapaxes(deq, -1, -2)), -1, -2)
  return jnp.clip(_unblocks(rec) + 128, 0, 255)


def jpeg(image: jnp.ndarray, quality, key: jax.Array | None = None) -> jnp.ndarray:
  """KADID type 10: baseline JPEG at IJG `quality`, decoded as libjpeg-turbo does.

  image: (H, W, 3) float in [0, 1]; quality: scalar (traced float allowed; rounded to
  an integer as IJG's API takes it). Returns (H, W, 3) float in [0, 1], multiples of
  1/255. Follows MATLAB `imwrite(I, 'x.jpg', 'Quality', q)` + `imread` + `im2double`:
  uint8(255 * I) (round half away), JFIF full-range YCbCr with libjpeg's fixed-point
  conversion, 4:2:0 box-average chroma downsampling with libjpeg's alternating bias,
  replicate edge padding of partial blocks, 8x8 DCT with the IJG quality-scaled Annex K
  tables (forced baseline: entries clamped to 255), dequantise, IDCT, round and clamp to
  8 bit, "fancy" triangular chroma upsampling, libjpeg's YCbCr -> RGB.

  The DCT, quantiser and IDCT are libjpeg-turbo's integer ISLOW code paths emulated in
  int32, so the decoded pixels match libjpeg-turbo's (cjpeg -dct int / djpeg defaults,
  Pillow) bit for bit. Not differentiable (integer arithmetic).
  """
  del key
  h, w, _ = image.shape
  dtype = image.dtype if jnp.issubdtype(image.dtype, jnp.floating) else jnp.float32
  x = jnp.asarray(image, jnp.float32)
  rgb = jnp.clip(jnp.floor(255.0 * x + 0.5), 0, 255).astype(jnp.int32)
  ycc = _rgb_to_ycc(rgb)
  t_luma, t_chroma = ijg_quant_tables(quality)

  hp, wp = _ceil_to(h, 8), _ceil_to(w, 8)
  y = _code_plane(_pad_edge(ycc[..., 0], hp, wp), t_luma)[:h, :w]
  # Cb and Cr share shape and table: one batched call (half the compiled code).
  d = _code_plane(jnp.stack([_downsample_h2v2(ycc[..., k]) for k in (1, 2)]), t_chroma)
  chroma = [_upsample_h2v2_fancy(d[k], h, w) for k in (0, 1)]
  out = _ycc_to_rgb(jnp.stack([y] + chroma, axis=-1))
  return (out.astype(jnp.float32) / 255.0).astype(dtype)
