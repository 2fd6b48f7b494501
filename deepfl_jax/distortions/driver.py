"""`distort` and `distort_param`: the KADID `imdist_generator` driver in JAX.

out = mapmm(fn(mapmm(image), param, key)) for one image (H, W, 3) or a batch
(N, H, W, 3) with a type and a level (or parameter) per image, in one compiled call.

- Batches with several types run `lax.switch` under `vmap`. XLA then evaluates every
  branch for every image (switch under vmap becomes a select), so when the types are
  known on the host (concrete arrays, the usual case) the batch is instead split by
  type and each group runs the one type function under vmap (`strategy="group"`, the
  default "auto"). Both give the same values; "switch" is what runs inside a user's jit.
- Keys: a single key is split into N per-image keys (`jax.random.split(key, N)`); image
  i of a batch then equals `distort(image[i], t[i], l[i], keys[i])`. A batch of N keys
  may also be given. A single image uses its key as is.
- `distort_runs`: the form for compiled streams (Stage-1 synthesis, generation): no
  input checks (they would read the device), a scalar `lax.switch` per run of images
  sharing a type inside a `lax.map`, so a mixed batch runs only its own types, and
  type 22's Otsu search on the device (float64 enabled locally: MATLAB's thresholds;
  `host_otsu=True` runs the NumPy search through a host callback instead).
"""
from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from deepfl_jax.distortions._common import mapmm
from deepfl_jax.distortions.registry import (DISTORTIONS, LEVEL_TABLE, NUM_LEVELS,
                                             NUM_TYPES)
from deepfl_jax.distortions.spatial import quantization

Strategy = Literal["auto", "switch", "group"]


def _is_concrete(x) -> bool:
  return not isinstance(x, jax.core.Tracer)


_OTSU_TYPE = 22


# Types much faster with a compile-time parameter: JPEG's quantiser reciprocals and
# tables fold into constants (20 -> 7 CPU ms per 384x512 image); colour diffusion's
# Gaussian gets the level's own support instead of the largest level's. For these, a
# group of images at one KADID level in an eager `distort` runs that level's
# constant-parameter program (chosen on the host, so only it is compiled); traced or
# mixed levels, or any other parameter, take the traced one. `distort_runs` does not
# use them (no faster inside its map).
# Colour quantisation (6) would also gain (palette sized by the level: 66 -> 31 CPU ms
# at n = 8) but its five scans add 13 s to the compile of a 25-type program (21 s at
# 64x64; JPEG's and colour diffusion's levels add 4 s), so it stays traced.
_CONST_LEVEL_TYPES = (4, 10)
# In `distort_runs`, colour quantisation's dither searches only as many palette slots
# as the run needs: a scalar switch over these sizes (the smallest >= the run's
# largest n; same values as 64 slots), so levels 16 and 8 cost 16 and 8 slots.
_QUANTIZATION_TYPE = 6
_PALETTE_SLOTS = (8, 16, 32, 64)


def _branch(type_id: int, height: int, width: int, host_otsu: bool = True,
            const: float | None = None, slots: int | None = None):
  d = DISTORTIONS[type_id]
  if min(height, width) < d.min_size:
    # Never selected for valid concrete input (checked on the host); inside a user's
    # jit an impossible selection yields NaN rather than a silent pass-through.
    return lambda img, p, k: jnp.full_like(img, jnp.nan)
  fn = d.fn
  if type_id == _OTSU_TYPE and not host_otsu:
    fn = functools.partial(quantization, host=False)
  if slots is not None:
    fn = functools.partial(fn, palette_slots=slots)
  if const is not None:
    return lambda img, p, k: fn(img, const, k)
  return lambda img, p, k: fn(img, p.astype(img.dtype), k)


def _one(image, type_id_arr, param, key, *, type_id: int | None, branch_ids: tuple,
         host_otsu: bool = True, const: float | None = None, slots: int | None = None):
  x = mapmm(image)
  if type_id is not None:
    y = _branch(type_id, *image.shape[:2], host_otsu, const, slots)(x, param, key)
  else:
    # Position of each type id among the compiled branches; ids outside them select
    # an extra NaN branch.
    lookup = np.full(NUM_TYPES + 2, len(branch_ids), np.int32)
    lookup[list(branch_ids)] = np.arange(len(branch_ids))
    pos = jnp.asarray(lookup)[jnp.clip(type_id_arr, 0, NUM_TYPES + 1)]
    branches = [_branch(i, *image.shape[:2]) for i in branch_ids]
    branches.append(lambda img, p, k: jnp.full_like(img, jnp.nan))
    y = jax.lax.switch(pos, branches, x, param, key)
  return mapmm(y)


def _typed(type_id: int, host_otsu: bool = True, const: float | None = None,
           slots: int | None = None):
  """Type `type_id` over a batch: fn(images (N, H, W, 3), types (N,), params (N,),
  keys (N,)) -> (N, H, W, 3). `const`: one of the type's KADID level values compiled
  in as a constant (`_CONST_LEVEL_TYPES`; `params` are then ignored), else traced.
  `slots`: colour quantisation's palette slots searched (`_PALETTE_SLOTS`)."""
  return jax.vmap(functools.partial(_one, type_id=type_id, branch_ids=(),
                                    host_otsu=host_otsu, const=const, slots=slots))


def _typed_run(type_id: int, host_otsu: bool):
  """`_typed` for one run of `distort_runs` (called outside any vmap): colour
  quantisation picks its palette size by a scalar switch on the run's largest n."""
  if type_id != _QUANTIZATION_TYPE:
    return _typed(type_id, host_otsu)
  fns = [_typed(type_id, host_otsu, slots=m) for m in _PALETTE_SLOTS]

  def fn(x, t, p, k):
    n = jnp.max(jnp.clip(jnp.round(p.astype(jnp.float32)), 1, _PALETTE_SLOTS[-1]))
    pos = sum((n > m).astype(jnp.int32) for m in _PALETTE_SLOTS[:-1])
    return jax.lax.switch(pos, fns, x, t, p, k)
  return fn


@functools.partial(jax.jit, static_argnames=("type_id", "branch_ids", "const"))
def _run(images, type_ids, params, keys, type_id=None, branch_ids=(), const=None):
  """images (N, H, W, 3); type_ids (N,) int 1..25; params (N,); keys (N,); `const`
  with `type_id`: see `_typed`."""
  if type_id is not None:
    return _typed(type_id, const=const)(images, type_ids, params, keys)
  fn = functools.partial(_one, type_id=None, branch_ids=branch_ids)
  return jax.vmap(fn)(images, type_ids, params, keys)


def _prepare_image(image):
  x = jnp.asarray(image)
  if x.ndim not in (3, 4) or x.shape[-1] != 3:
    raise ValueError(f"distort expects an RGB image (H, W, 3) or a batch (N, H, W, 3), "
                     f"got shape {x.shape}")
  if x.dtype == jnp.uint8:
    x = x.astype(jnp.float32) / 255.0
  elif not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(f"distort expects float images in [0, 1] (or uint8), got {x.dtype}")
  if _is_concrete(x):
    with jax.ensure_compile_time_eval():   # also when called inside a user's jit
      finite = bool(jnp.all(jnp.isfinite(x)))
      lo, hi = float(jnp.min(x)), float(jnp.max(x))
    if not finite:
      raise ValueError("distort: image contains NaN or inf")
    if lo < 0.0 or hi > 1.0:
      raise ValueError(f"distort expects values in [0, 1], got range [{lo}, {hi}]")
  batched = x.ndim == 4
  return (x if batched else x[None]), batched


def _prepare_keys(key, n: int, batched: bool):
  key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
  typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
  single_ndim = 0 if typed else 1
  if key.ndim == single_ndim:
    return jax.random.split(key, n) if batched else key[None]
  if key.ndim == single_ndim + 1 and key.shape[0] == n:
    return key
  raise ValueError(f"key must be one PRNG key or a batch of {n} keys, got shape "
                   f"{key.shape}")


def _check_types(types, height: int, width: int):
  if not _is_concrete(types):
    return None
  t = np.asarray(types)
  if not np.issubdtype(t.dtype, np.integer) and not np.all(t == np.round(t)):
    raise ValueError(f"dist_type must be an integer id 1..{NUM_TYPES}, got {t}")
  bad = t[(t < 1) | (t > NUM_TYPES)]
  if bad.size:
    raise ValueError(f"unknown distortion type {bad[0]}: ids are 1..{NUM_TYPES}")
  for i in np.unique(t):
    d = DISTORTIONS[int(i)]
    if min(height, width) < d.min_size:
      raise ValueError(f"image {height}x{width} is too small for type {i} ({d.name}): "
                       f"height and width must be at least {d.min_size}")
  return t.astype(np.int32)


def _broadcast(v, n: int, batched: bool, what: str):
  a = jnp.asarray(v)
  if a.ndim == 0:
    return jnp.broadcast_to(a, (n,))
  if not batched or a.shape != (n,):
    raise ValueError(f"{what} must be a scalar or have shape ({n},) for a batch of {n}, "
                     f"got shape {a.shape}")
  return a


def _branch_ids(branches) -> tuple:
  if branches is None:
    return tuple(range(1, NUM_TYPES + 1))
  ids = tuple(sorted({int(b) for b in branches}))
  if not ids or ids[0] < 1 or ids[-1] > NUM_TYPES:
    raise ValueError(f"branches must be type ids 1..{NUM_TYPES}, got {branches}")
  return ids


def _dispatch(x, types, params, keys, strategy: Strategy, branches):
  host_types = _check_types(types, *x.shape[1:3])
  branch_ids = _branch_ids(branches)
  if host_types is not None and not set(host_types.tolist()) <= set(branch_ids):
    raise ValueError(f"dist_type {sorted(set(host_types.tolist()) - set(branch_ids))} "
                     f"not among branches {branch_ids}")
  index = jnp.asarray(types, jnp.int32)
  params = jnp.asarray(params, x.dtype)
  if strategy == "switch" or host_types is None:
    return _run(x, index, params, keys, branch_ids=branch_ids)
  host_params = np.asarray(params) if _is_concrete(params) else None
  uniq = np.unique(host_types)
  if len(uniq) == 1:
    t = int(uniq[0])
    return _run(x, index, params, keys, type_id=t, const=_level_const(t, host_params))
  out = jnp.zeros_like(x)
  for t in uniq:
    sel = np.nonzero(host_types == t)[0]
    const = None if host_params is None else _level_const(int(t), host_params[sel])
    out = out.at[sel].set(_run(x[sel], index[sel], params[sel], keys[sel],
                               type_id=int(t), const=const))
  return out


def _level_const(type_id: int, params: np.ndarray | None) -> float | None:
  """The KADID level value all `params` equal (float32 equality) for a type of
  `_CONST_LEVEL_TYPES`, chosen on the host so only that program is compiled; else None
  (traced parameters, mixed levels, or a parameter between the levels)."""
  if params is None or type_id not in _CONST_LEVEL_TYPES or params.size == 0:
    return None
  if not np.all(params == params.flat[0]):
    return None
  for v in DISTORTIONS[type_id].levels:
    if np.asarray(v, params.dtype) == params.flat[0]:
      return v
  return None


def distort(image, dist_type, level, key, *, strategy: Strategy = "auto",
            branches=None) -> jnp.ndarray:
  """KADID/KADIS distortion `dist_type` (1..25) at `level` (1..5).

  Args:
    image: (H, W, 3) or (N, H, W, 3), float in [0, 1] (uint8 is divided by 255).
    dist_type, level: ints, or (N,) int arrays for a batch (one per image).
    key: a PRNG key (split per image for a batch) or (N,) keys.
    strategy: "auto" (group by type when types are concrete), "switch" or "group".
    branches: type ids compiled into the switch (static; default all 25). Fewer
      branches compile and run faster; a traced type outside them gives NaN.

  Returns:
    The distorted image(s), same shape, float in [0, 1] (both mapmm steps applied).
  """
  x, batched = _prepare_image(image)
  n = x.shape[0]
  types = _broadcast(dist_type, n, batched, "dist_type")
  levels = _broadcast(level, n, batched, "level")
  if _is_concrete(levels):
    lv = np.asarray(levels)
    bad = lv[(lv < 1) | (lv > NUM_LEVELS) | (lv != np.round(lv))]
    if bad.size:
      raise ValueError(f"unknown level {bad[0]}: levels are 1..{NUM_LEVELS}")
  params = _level_params(types, levels, x.dtype)
  out = _dispatch(x, types, params, _prepare_keys(key, n, batched), strategy, branches)
  return out if batched else out[0]


def distort_param(image, dist_type, param, key, *, strategy: Strategy = "auto",
                  branches=None) -> jnp.ndarray:
  """As `distort`, with the type's continuous parameter instead of a level (e.g. a
  sigma between KADID's levels, for the contrastive pretext task). Kernel supports
  and draw counts are sized for the largest KADID level; larger parameters are
  truncated there (blur supports, patch and block counts)."""
  x, batched = _prepare_image(image)
  n = x.shape[0]
  types = _broadcast(dist_type, n, batched, "dist_type")
  params = _broadcast(param, n, batched, "param")
  if _is_concrete(params) and not np.all(np.isfinite(np.asarray(params))):
    raise ValueError("param must be finite")
  out = _dispatch(x, types, params, _prepare_keys(key, n, batched), strategy, branches)
  return out if batched else out[0]


def _level_params(types, levels, dtype):
  table = jnp.asarray(LEVEL_TABLE, dtype)
  return table[jnp.clip(jnp.asarray(types, jnp.int32) - 1, 0, NUM_TYPES - 1),
               jnp.clip(jnp.asarray(levels, jnp.int32) - 1, 0, NUM_LEVELS - 1)]


def distort_runs(images, dist_type, level, keys, *, run: int = 1, branches=None,
                 host_otsu: bool = False, unroll: bool = False) -> jnp.ndarray:
  """`distort` for compiled streams: traceable, no input checks, no host round trip.

  images (N, H, W, 3) float in [0, 1]; dist_type, level (N,) int; keys (N,) PRNG keys.
  The batch is cut into N / run runs of `run` consecutive images that share a type
  (the type of a run's first image is used for all of it); a `lax.map` over the runs
  selects each run's type with a scalar `lax.switch` (only that branch executes) and
  vmaps it over the run. A batch of mixed types thus costs the sum of its types,
  not all branches (`lax.switch` under `vmap` would evaluate every branch).

  branches: the type ids compiled in (static; default all 25); a run's type outside
    them gives NaN. host_otsu: type 22's threshold search on the host (a callback,
    as `distort`) instead of the device search (`otsu.py`; both float64, exact).
  unroll: a Python loop over the runs instead of `lax.map` (XLA's cost analysis
    counts a loop body once, an unrolled program per run).

  Returns (N, H, W, 3): image i equals `distort(images[i], dist_type[i], level[i],
  keys[i])` (to float32 rounding where XLA fuses differently).
  """
  n, h, w = images.shape[:3]
  if run < 1 or n % run:
    raise ValueError(f"run={run} must divide the batch of {n} images")
  branch_ids = _branch_ids(branches)
  for i in branch_ids:
    if min(h, w) < DISTORTIONS[i].min_size:
      raise ValueError(f"image {h}x{w} is too small for type {i} "
                       f"({DISTORTIONS[i].name}): height and width must be at least "
                       f"{DISTORTIONS[i].min_size}")
  # Every image of a run takes the run's type (its first image's), level table too.
  types = jnp.repeat(jnp.asarray(dist_type, jnp.int32)[::run], run)
  params = _level_params(types, level, images.dtype)
  lookup = np.full(NUM_TYPES + 2, len(branch_ids), np.int32)
  lookup[list(branch_ids)] = np.arange(len(branch_ids))
  # No per-level programs here: inside the map they measured no faster (JPEG 24.2 vs
  # 23.8 CPU ms per 384x512 image) and they lengthen the compile.
  fns = [_typed_run(i, host_otsu) for i in branch_ids]
  fns.append(lambda x, t, p, k: jnp.full_like(x, jnp.nan))

  def one_run(args):
    x, t, p, k = args
    pos = jnp.asarray(lookup)[jnp.clip(t[0], 0, NUM_TYPES + 1)]
    return jax.lax.switch(pos, fns, x, t, p, k)

  xs = tuple(a.reshape((n // run, run) + a.shape[1:])
             for a in (images, types, params, keys))
  if unroll:
    out = jnp.stack([one_run(tuple(a[r] for a in xs)) for r in range(n // run)])
  else:
    out = jax.lax.map(one_run, xs)
  return out.reshape(images.shape)
