"""KADID type 9: JPEG 2000 (T.800 Part 1, irreversible path: ICT + CDF 9/7) in JAX.

The lossy path of the codec (colour transform, wavelet, deadzone quantiser, rate
control by an entropy estimate) without the EBCOT coder itself.
`jpeg2000(image (H, W, 3) float in [0, 1], ratio, key) -> (H, W, 3)`; ratio may be
traced, the key is unused (the codec is deterministic). Shapes are static.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

_HI = jax.lax.Precision.HIGHEST


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


def _next(v: np.ndarray, n: int) -> np.ndarray:
  """v[i + 1] for i < n, with whole-sample symmetric extension at the right end."""
  ext = np.concatenate([v[..., 1:], v[..., -1:]], axis=-1)
  return ext[..., :n]


def _prev(v: np.ndarray, n: int) -> np.ndarray:
  """v[i - 1] for i < n (v[-1] mirrored to v[0]), padded by v's last at the right end."""
  ext = np.concatenate([v[..., :1], v, v[..., -1:]], axis=-1)
  return ext[..., :n]


def _dwt97_1d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """One analysis level of the 9/7 lifting along the last axis (length n >= 2), NumPy.

  Returns (low (ceil(n/2)), high (floor(n/2))), symmetric (whole-sample) extension,
  scaled to JPEG 2000's normalisation (low-pass DC gain 1, high-pass Nyquist gain 2).
  """
  s, d = x[..., 0::2], x[..., 1::2]
  ns, nd = s.shape[-1], d.shape[-1]
  d = d + _ALPHA * (s[..., :nd] + _next(s, nd))
  s = s + _BETA * (_prev(d, ns) + np.concatenate([d, d[..., -1:]], -1)[..., :ns])
  d = d + _GAMMA * (s[..., :nd] + _next(s, nd))
  s = s + _DELTA * (_prev(d, ns) + np.concatenate([d, d[..., -1:]], -1)[..., :ns])
  return s / _K, d * (_K / 2.0)


def _idwt97_1d(s: np.ndarray, d: np.ndarray) -> np.ndarray:
  """Inverse of `_dwt97_1d`: (low, high) -> interleaved signal along the last axis."""
  ns, nd = s.shape[-1], d.shape[-1]
  s, d = s * _K, d * (2.0 / _K)
  s = s - _DELTA * (_prev(d, ns) + np.concatenate([d, d[..., -1:]], -1)[..., :ns])
  d = d - _GAMMA * (s[..., :nd] + _next(s, nd))
  s = s - _BETA * (_prev(d, ns) + np.concatenate([d, d[..., -1:]], -1)[..., :ns])
  d = d - _ALPHA * (s[..., :nd] + _next(s, nd))
  if ns > nd:
    d = np.concatenate([d, np.zeros_like(s[..., :1])], axis=-1)
  out = np.stack([s, d], axis=-1).reshape(s.shape[:-1] + (2 * ns,))
  return out[..., :ns + nd]


@functools.lru_cache(maxsize=None)
def _analysis_matrix(n: int) -> np.ndarray:
  """(n, n) float64 matrix of one 9/7 analysis level: rows = [low; high] outputs."""
  lo, hi = _dwt97_1d(np.eye(n))
  return np.concatenate([lo, hi], axis=-1).T


@functools.lru_cache(maxsize=None)
def _synthesis_matrix(n: int) -> np.ndarray:
  """(n, n) inverse of `_analysis_matrix(n)`, from the inverse lifting steps."""
  ns = -(-n // 2)
  eye = np.eye(n)
  return _idwt97_1d(eye[:, :ns], eye[:, ns:]).T


def _dwt97_2d(x: jnp.ndarray, levels: int) -> list[jnp.ndarray]:
  """Mallat decomposition of (..., H, W): [LL_L, (HL, LH, HH)_L, ..., (HL, LH, HH)_1].

  HL is high-pass along W (columns), LH along H. In JAX each level is two matrix
  products with the trace-time analysis matrices (the lifting steps written with
  slices made XLA's CPU compile time explode; the matrices are banded but small).
  """
  details = []
  ll = x
  for _ in range(levels):
    h, w = ll.shape[-2:]
    ah = jnp.asarray(_analysis_matrix(h), ll.dtype)
    aw = jnp.asarray(_analysis_matrix(w), ll.dtype)
    y = jnp.einsum("ih,...hw,jw->...ij", ah, ll, aw, precision=_HI)
    hl_, wl = -(-h // 2), -(-w // 2)
    ll = y[..., :hl_, :wl]
    details.append((y[..., :hl_, wl:], y[..., hl_:, :wl], y[..., hl_:, wl:]))
  return [ll] + [b for lev in details[::-1] for b in lev]


def _idwt97_2d(bands: list[jnp.ndarray], levels: int) -> jnp.ndarray:
  """Inverse of `_dwt97_2d` (inverse lifting, as matrices in JAX)."""
  ll = bands[0]
  for j in range(levels):
    hl, lh, hh = bands[1 + 3 * j: 4 + 3 * j]
    y = jnp.concatenate([jnp.concatenate([ll, hl], axis=-1),
                         jnp.concatenate([lh, hh], axis=-1)], axis=-2)
    h, w = y.shape[-2:]
    sh, sw = _synthesis_matrix(h), _synthesis_matrix(w)
    ll = jnp.einsum("hi,...ij,wj->...hw", jnp.asarray(sh, y.dtype), y,
                    jnp.asarray(sw, y.dtype), precision=_HI)
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
    x = _idwt97_1d(s, d)
    for _ in range(j - 1):
      x = _idwt97_1d(x, np.zeros_like(x))
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


def _illinois(bits, budget, lo, hi, steps: int):
  """Bracket [lo, hi] of log2(step) with bits(lo) > budget >= bits(hi), shrunk by the
  Illinois variant of regula falsi on f = log2(1 + bits) - log2(1 + budget) (nearly
  linear in log2(step)), 2 + `steps` evaluations of `bits`. The decisions use
  bits > budget itself, so hi always meets the budget; each new point lies at least
  1/32 of the bracket inside it (no stalling on a flat end).
  """
  target = jnp.log2(1.0 + budget)

  def f(s):
    b = bits(s)
    return jnp.log2(1.0 + b) - target, b > budget

  flo, big_lo = f(lo)
  fhi, big_hi = f(hi)
  # Degenerate brackets: everything meets the budget (take lo) or nothing does (hi).
  hi = jnp.where(big_lo, hi, lo)
  lo = jnp.where(big_hi, hi, lo)

  def step(_, state):
    lo, flo, hi, fhi, side = state
    width = hi - lo
    den = jnp.where(flo - fhi > 0, flo - fhi, 1.0)
    s = lo + width * jnp.where(flo - fhi > 0, flo / den, 0.5)
    s = jnp.clip(s, lo + width / 32, hi - width / 32)
    fs, big = f(s)
    # Illinois: halve the retained end's value when the same end moves twice.
    new_lo, new_flo = jnp.where(big, s, lo), jnp.where(big, fs, flo)
    new_hi, new_fhi = jnp.where(big, hi, s), jnp.where(big, fhi, fs)
    new_fhi = jnp.where(big & (side == 1), 0.5 * new_fhi, new_fhi)
    new_flo = jnp.where(~big & (side == -1), 0.5 * new_flo, new_flo)
    return new_lo, new_flo, new_hi, new_fhi, jnp.where(big, 1, -1)

  lo, _, hi, _, _ = jax.lax.fori_loop(
      0, steps, step, (lo, jnp.maximum(flo, 0.0), hi, jnp.minimum(fhi, 0.0), 0))
  return lo, hi


def jpeg2000(image: jnp.ndarray, ratio, key: jax.Array | None = None, *,
             levels: int = _JP2_LEVELS, rate_search: str = "illinois",
             search_steps: int | None = None, rate_scale: float = 1.0,
             header_bpp: float = 250 * 8 / (512 * 384)) -> jnp.ndarray:
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
  distortion slopes, which PCRD approaches at high rate), and Delta is the coarser end
  of a bracket on log2(Delta) in [-4, 14] such that the estimated code length meets
  the budget 24 H W / ratio bits minus `header_bpp` H W bits of headers. The bracket
  is shrunk by `search_steps` Illinois (regula falsi) steps, default 8 (10 code-length
  evaluations; 49 vs 92 CPU ms per 384x512 image), or by bisection
  (`rate_search="bisection"`, default 24 steps, the earlier rule). The two agree to
  0.016 dB PSNR on three 384x512 photographs and 0.05 dB on a 157x233 crop (the 5
  KADID ratios). The estimate
  is the first-order entropy of the quantised coefficients per (subband, component,
  context), the context being the number (0..4) of non-zero causal neighbours, a crude
  stand-in for EBCOT's significance contexts; `rate_scale` multiplies it. So: no
  code-block granularity or fractional bit-plane passes, mid-point reconstruction of
  every coefficient, and an entropy estimate instead of the MQ coder's real length.
  The defaults (rate_scale 1; headers of 250 bytes at 512x384, about what OpenJPEG
  spends on the JP2 boxes, main/tile and packet headers there) were checked against
  OpenJPEG 2.5 (Pillow, irreversible=True, mct=1) on four 384x512 images: PSNR within
  +-0.6 dB at ratios 16 to 400. The header allowance scales with the image area
  (real headers are nearly fixed in size), so a small crop gets the bits per pixel of
  a KADID-size image instead of a budget eaten by headers. The error pattern
  (ringing, blurred fine detail, colour bleeding at high ratios) is the codec's.
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

  budget = h * w * (24.0 / jnp.asarray(ratio, jnp.float32) - header_bpp)
  budget = jnp.maximum(budget, 0.0)

  def bits(log_step):
    return rate_scale * _code_length_bits(quantise(log_step), n_bands)

  if rate_search not in ("illinois", "bisection"):
    raise ValueError(f"rate_search must be 'illinois' or 'bisection', got {rate_search!r}")
  if search_steps is None:
    search_steps = 8 if rate_search == "illinois" else 24
  if rate_search == "bisection":
    def step(_, lohi):
      lo, hi = lohi
      mid = 0.5 * (lo + hi)
      too_big = bits(mid) > budget
      return jnp.where(too_big, mid, lo), jnp.where(too_big, hi, mid)

    lo, hi = jax.lax.fori_loop(0, search_steps, step,
                               (jnp.float32(-4.0), jnp.float32(14.0)))
  else:
    lo, hi = _illinois(bits, budget, jnp.float32(-4.0), jnp.float32(14.0), search_steps)
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
