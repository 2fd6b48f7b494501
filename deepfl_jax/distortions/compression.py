"""Compression distortions of KADID-10k: JPEG (type 10) and JPEG 2000 (type 9).

Both are the lossy paths of the codecs written in JAX (no entropy coding: it is lossless
and does not change the decoded pixels). Signature of both:
`fn(image (H, W, 3) float in [0, 1], param, key) -> (H, W, 3)`; `param` may be traced,
the key is unused (both codecs are deterministic). Shapes are static.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST

# ---------------------------------------------------------------------------------------
# JPEG (baseline, as libjpeg / libjpeg-turbo encode with jpeg_set_quality(q, TRUE)).
# ---------------------------------------------------------------------------------------

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


def _dct_matrix(n: int = 8) -> np.ndarray:
  """Orthonormal DCT-II matrix C (rows = frequencies): JPEG's FDCT is C X C^T."""
  k = np.arange(n)[:, None]
  i = np.arange(n)[None, :]
  c = np.cos((2 * i + 1) * k * np.pi / (2 * n)) * np.sqrt(2.0 / n)
  c[0] /= np.sqrt(2.0)
  return c


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
  """(8a, 8b) -> (a, b, 8, 8)."""
  h, w = x.shape
  return x.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


def _unblocks(x: jnp.ndarray) -> jnp.ndarray:
  a, b = x.shape[:2]
  return x.transpose(0, 2, 1, 3).reshape(8 * a, 8 * b)


def _code_plane(plane: jnp.ndarray, table: jnp.ndarray) -> jnp.ndarray:
  """Level shift, FDCT, quantise (round half away), dequantise, IDCT, round, clamp.

  plane: int32 (8a, 8b) 0..255 -> int32 of the same shape, as the decoder outputs it.
  """
  c = jnp.asarray(_dct_matrix(), jnp.float32)
  blk = _blocks(plane.astype(jnp.float32) - 128.0)
  coef = jnp.einsum("ui,abij,vj->abuv", c, blk, c, precision=_HI)
  t = table.astype(jnp.float32)
  q = coef / t
  q = jnp.sign(q) * jnp.floor(jnp.abs(q) + 0.5)
  rec = jnp.einsum("ui,abuv,vj->abij", c, q * t, c, precision=_HI)
  return jnp.clip(jnp.floor(_unblocks(rec) + 128.0 + 0.5), 0, 255).astype(jnp.int32)


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

  Differences from the real codec: the DCT / IDCT are exact (float32 matrix products)
  instead of libjpeg's 13-bit fixed-point ISLOW approximations, so an occasional
  coefficient on a rounding boundary, and hence a few pixels, differ by one level.
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
  chroma = []
  for k in (1, 2):
    d = _code_plane(_downsample_h2v2(ycc[..., k]), t_chroma)
    chroma.append(_upsample_h2v2_fancy(d, h, w))
  out = _ycc_to_rgb(jnp.stack([y] + chroma, axis=-1))
  return (out.astype(jnp.float32) / 255.0).astype(dtype)


# ---------------------------------------------------------------------------------------
# JPEG 2000 (Part 1, irreversible path: ICT + CDF 9/7).
# ---------------------------------------------------------------------------------------

# T.800 Annex F lifting coefficients of the irreversible 9/7 filter.
_ALPHA = -1.586134342059924
_BETA = -0.052980118572961
_GAMMA = 0.882911075530934
_DELTA = 0.443506852043971
_K = 1.230174104914001
# Irreversible colour transform (T.800 Annex G.3): rows Y, Cb, Cr of RGB.
_ICT = np.array([[0.299, 0.587, 0.114],
                 [-0.16875, -0.33126, 0.5],
                 [0.5, -0.41869, -0.08131]])
_JP2_LEVELS = 5


def _next(v, n: int, xp):
  """v[i + 1] for i < n, with whole-sample symmetric extension at the right end."""
  ext = xp.concatenate([v[..., 1:], v[..., -1:]], axis=-1)
  return ext[..., :n]


def _prev(v, n: int, xp):
  """v[i - 1] for i < n (v[-1] mirrored to v[0]), padded by v's last at the right end."""
  ext = xp.concatenate([v[..., :1], v, v[..., -1:]], axis=-1)
  return ext[..., :n]


def _dwt97_1d(x, xp=jnp):
  """One analysis level of the 9/7 lifting along the last axis (length n >= 2).

  Returns (low (ceil(n/2)), high (floor(n/2))), symmetric (whole-sample) extension,
  scaled to JPEG 2000's normalisation (low-pass DC gain 1, high-pass Nyquist gain 2).
  """
  s, d = x[..., 0::2], x[..., 1::2]
  ns, nd = s.shape[-1], d.shape[-1]
  d = d + _ALPHA * (s[..., :nd] + _next(s, nd, xp))
  s = s + _BETA * (_prev(d, ns, xp) + xp.concatenate([d, d[..., -1:]], -1)[..., :ns])
  d = d + _GAMMA * (s[..., :nd] + _next(s, nd, xp))
  s = s + _DELTA * (_prev(d, ns, xp) + xp.concatenate([d, d[..., -1:]], -1)[..., :ns])
  return s / _K, d * (_K / 2.0)


def _idwt97_1d(s, d, xp=jnp):
  """Inverse of `_dwt97_1d`: (low, high) -> interleaved signal along the last axis."""
  ns, nd = s.shape[-1], d.shape[-1]
  s, d = s * _K, d * (2.0 / _K)
  s = s - _DELTA * (_prev(d, ns, xp) + xp.concatenate([d, d[..., -1:]], -1)[..., :ns])
  d = d - _GAMMA * (s[..., :nd] + _next(s, nd, xp))
  s = s - _BETA * (_prev(d, ns, xp) + xp.concatenate([d, d[..., -1:]], -1)[..., :ns])
  d = d - _ALPHA * (s[..., :nd] + _next(s, nd, xp))
  if ns > nd:
    d = xp.concatenate([d, xp.zeros_like(s[..., :1])], axis=-1)
  out = xp.stack([s, d], axis=-1).reshape(s.shape[:-1] + (2 * ns,))
  return out[..., :ns + nd]


def _analysis_matrix(n: int) -> np.ndarray:
  """(n, n) float64 matrix of one 9/7 analysis level: rows = [low; high] outputs."""
  lo, hi = _dwt97_1d(np.eye(n), np)
  return np.concatenate([lo, hi], axis=-1).T


def _synthesis_matrix(n: int) -> np.ndarray:
  """(n, n) inverse of `_analysis_matrix(n)`, from the inverse lifting steps."""
  ns = -(-n // 2)
  eye = np.eye(n)
  return _idwt97_1d(eye[:, :ns], eye[:, ns:], np).T


def _dwt97_2d(x, levels: int, xp=jnp):
  """Mallat decomposition of (..., H, W): [LL_L, (HL, LH, HH)_L, ..., (HL, LH, HH)_1].

  HL is high-pass along W (columns), LH along H. In JAX each level is two matrix
  products with the trace-time analysis matrices (the lifting steps written with
  slices made XLA's CPU compile time explode; the matrices are banded but small).
  """
  details = []
  ll = x
  for _ in range(levels):
    h, w = ll.shape[-2:]
    if xp is jnp:
      ah = jnp.asarray(_analysis_matrix(h), ll.dtype)
      aw = jnp.asarray(_analysis_matrix(w), ll.dtype)
      y = jnp.einsum("ih,...hw,jw->...ij", ah, ll, aw, precision=_HI)
    else:
      y = _analysis_matrix(h) @ ll @ _analysis_matrix(w).T
    hl_, wl = -(-h // 2), -(-w // 2)
    ll = y[..., :hl_, :wl]
    details.append((y[..., :hl_, wl:], y[..., hl_:, :wl], y[..., hl_:, wl:]))
  return [ll] + [b for lev in details[::-1] for b in lev]


def _idwt97_2d(bands, levels: int, xp=jnp):
  """Inverse of `_dwt97_2d` (inverse lifting, as matrices in JAX)."""
  ll = bands[0]
  for j in range(levels):
    hl, lh, hh = bands[1 + 3 * j: 4 + 3 * j]
    y = xp.concatenate([xp.concatenate([ll, hl], axis=-1),
                        xp.concatenate([lh, hh], axis=-1)], axis=-2)
    h, w = y.shape[-2:]
    sh, sw = _synthesis_matrix(h), _synthesis_matrix(w)
    if xp is jnp:
      ll = jnp.einsum("hi,...ij,wj->...hw", jnp.asarray(sh, y.dtype), y,
                      jnp.asarray(sw, y.dtype), precision=_HI)
    else:
      ll = sh @ y @ sw.T
  return ll


@functools.lru_cache(maxsize=None)
def _synthesis_norms(levels: int) -> np.ndarray:
  """L2 norm of one synthesis basis image per subband (order of `_dwt97_2d`).

  The 2-D basis images are outer products of 1-D ones, so the norms are products of
  1-D norms, computed at trace time by inverting a unit impulse placed mid-band on a
  long (boundary-free) signal. These are the weights OpenJPEG's rate allocation uses
  (its dwt_norms_real table); a common pixel-domain step Delta gives every subband the
  step Delta / norm.
  """
  n = 2 ** (levels + 6)

  def norm_1d(j: int, high: bool) -> float:
    m = n >> j                                   # band length at level j
    band = np.zeros(m)
    band[m // 2] = 1.0
    s, d = (np.zeros(m), band) if high else (band, np.zeros(m))
    x = _idwt97_1d(s, d, np)
    for _ in range(j - 1):
      x = _idwt97_1d(x, np.zeros_like(x), np)
    return float(np.linalg.norm(x))

  low = {j: norm_1d(j, False) for j in range(1, levels + 1)}
  high = {j: norm_1d(j, True) for j in range(1, levels + 1)}
  norms = [low[levels] ** 2]
  for j in range(levels, 0, -1):
    norms += [high[j] * low[j], low[j] * high[j], high[j] ** 2]
  return np.array(norms)


_N_CTX = 5     # number of significant causal neighbours (W, NW, N, NE): 0..4
_N_SYM = 31 + 40


def _symbols_and_contexts(qb: jnp.ndarray):
  """(3, h, w) integer band -> flat symbol and context ids, both (3 h w,) int32.

  Symbols: the exact value for |q| < 16; above, sign and octave (|q| in [2^k, 2^k+1))
  whose k raw bits are counted separately (as Exp-Golomb / JPEG categories). The
  context is the number of non-zero causal neighbours, a crude stand-in for EBCOT's
  significance contexts (zeros next to zeros are cheap).
  """
  a = jnp.abs(qb)
  small = a < 16
  k = jnp.floor(jnp.log2(jnp.maximum(a, 1.0)))
  big_sym = 31 + 2 * jnp.clip(k - 4, 0, 19) + (qb < 0)
  sym = jnp.where(small, qb + 15, big_sym).astype(jnp.int32)
  nz = jnp.pad((a > 0).astype(jnp.int32), ((0, 0), (1, 0), (1, 1)))
  h, w = qb.shape[1:]
  ctx = (nz[:, 1:, :w] + nz[:, :h, :w] + nz[:, :h, 1:w + 1] + nz[:, :h, 2:])
  raw = jnp.sum(jnp.where(small, 0.0, k))
  return sym.ravel(), ctx.ravel(), raw


def _code_length_bits(q_bands, n_bands: int) -> jnp.ndarray:
  """Context-conditioned first-order entropy estimate (bits) of the quantised bands.

  q_bands: list of (3, h, w) integer-valued arrays; each (band, component) pair has its
  own adaptive statistics, as EBCOT's coder restarts per code-block.
  """
  idx, raw = [], 0.0
  for i, qb in enumerate(q_bands):
    sym, ctx, r = _symbols_and_contexts(qb)
    comp = np.repeat(np.arange(3), qb.shape[1] * qb.shape[2])
    idx.append(((i * 3 + comp) * _N_CTX + ctx) * _N_SYM + sym)
    raw = raw + r
  counts = jnp.bincount(jnp.concatenate(idx), length=n_bands * _N_CTX * _N_SYM)
  counts = counts.reshape(n_bands * _N_CTX, _N_SYM).astype(jnp.float32)
  p = counts / jnp.maximum(jnp.sum(counts, axis=1, keepdims=True), 1.0)
  ent = -jnp.sum(jnp.where(counts > 0, counts * jnp.log2(jnp.where(p > 0, p, 1.0)), 0.0))
  return ent + raw


def jpeg2000(image: jnp.ndarray, ratio, key: jax.Array | None = None, *,
             levels: int = _JP2_LEVELS, bisection_steps: int = 24,
             rate_scale: float = 1.0, header_bytes: float = 250.0) -> jnp.ndarray:
  """KADID type 9: JPEG 2000 at compression `ratio` (uncompressed 24 bpp / coded bpp).

  image: (H, W, 3) float in [0, 1]; ratio: scalar > 1 (traced allowed). Returns
  (H, W, 3) float in [0, 1], multiples of 1/255 (the decoder's 8-bit output). MATLAB
  `imwrite(I, 'x.jp2', 'CompressionRatio', r)`: uint8(255 I), DC level shift, ICT,
  5-level CDF 9/7 lifting DWT (symmetric extension), deadzone scalar quantisation,
  decode with mid-point reconstruction (r = 0.5), inverse DWT / ICT, round, clamp.

  Rate control (how this differs from the real codecs): Kakadu / OpenJPEG code the
  bit planes of 64x64 code-blocks with EBCOT (context-adaptive arithmetic coding) and
  truncate the coding passes by post-compression rate-distortion optimisation (PCRD) to
  meet the byte budget. Here ONE pixel-domain step Delta serves all subbands and
  components (subband step Delta / (synthesis norm x inverse-ICT column norm): equal
  distortion slopes, which PCRD approaches at high rate), and Delta is found by
  `bisection_steps` bisections on log2(Delta) so that the estimated code length meets
  the budget 24 H W / ratio bits minus `header_bytes` of headers. The estimate is the
  first-order entropy of the quantised coefficients per (subband, component,
  context), the context being the number (0..4) of non-zero causal neighbours, a crude
  stand-in for EBCOT's significance contexts; `rate_scale` multiplies it. So: no
  code-block granularity or fractional bit-plane passes, mid-point reconstruction of
  every coefficient, and an entropy estimate instead of the MQ coder's real length.
  The defaults (rate_scale 1, 250 header bytes, about what OpenJPEG spends on the JP2
  boxes, main/tile headers and packet headers of a 512x384 image) were checked against
  OpenJPEG 2.5 (Pillow, irreversible=True, mct=1) on four 384x512 images: PSNR within
  +-0.6 dB at ratios 16 to 400. The error pattern (ringing, blurred fine detail,
  colour bleeding at high ratios) is the codec's.
  """
  del key
  h, w, _ = image.shape
  levels = int(min(levels, max(0, int(np.floor(np.log2(min(h, w)))))))
  dtype = image.dtype if jnp.issubdtype(image.dtype, jnp.floating) else jnp.float32
  x = jnp.clip(jnp.floor(255.0 * jnp.asarray(image, jnp.float32) + 0.5), 0, 255)
  ycc = jnp.einsum("hwc,kc->khw", x - 128.0, jnp.asarray(_ICT, jnp.float32),
                   precision=_HI)
  bands = _dwt97_2d(ycc, levels)                      # each (3, h_b, w_b)
  inv_ict = np.linalg.inv(_ICT)
  comp_norm = np.linalg.norm(inv_ict, axis=0)         # RGB error of a unit Y/Cb/Cr error
  wnorm = np.outer(comp_norm, _synthesis_norms(levels))  # (3, n_bands)
  n_bands = 3 * len(bands)
  # Coefficients in pixel-error units: a unit step here costs the same RGB MSE anywhere.
  weights = [jnp.asarray(wnorm[:, i], jnp.float32)[:, None, None]
             for i in range(len(bands))]
  scaled = [b * wt for b, wt in zip(bands, weights)]

  def quantise(log_step):
    return [jnp.trunc(b / jnp.exp2(log_step)) for b in scaled]

  budget = 24.0 * h * w / jnp.asarray(ratio, jnp.float32) - 8.0 * header_bytes
  budget = jnp.maximum(budget, 0.0)

  def step(_, lohi):
    lo, hi = lohi
    mid = 0.5 * (lo + hi)
    bits = rate_scale * _code_length_bits(quantise(mid), n_bands)
    too_big = bits > budget
    return jnp.where(too_big, mid, lo), jnp.where(too_big, hi, mid)

  lo, hi = jax.lax.fori_loop(0, bisection_steps, step,
                             (jnp.float32(-4.0), jnp.float32(14.0)))
  log_step = hi   # the finer end may overshoot the budget; the coarser end meets it
  out_bands = []
  for qb, wt in zip(quantise(log_step), weights):
    rec = jnp.where(qb == 0, 0.0, (qb + 0.5 * jnp.sign(qb)) * jnp.exp2(log_step))
    out_bands.append(rec / wt)
  ycc_hat = _idwt97_2d(out_bands, levels)
  rgb = jnp.einsum("khw,ck->hwc", ycc_hat, jnp.asarray(inv_ict, jnp.float32),
                   precision=_HI) + 128.0
  out = jnp.clip(jnp.floor(rgb + 0.5), 0, 255)
  return (out / 255.0).astype(dtype)
