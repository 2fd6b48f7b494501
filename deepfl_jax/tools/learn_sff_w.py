"""Learns the SFF feature detector W (8 x 192) by the procedure of SFF's TrainW.m.

TrainW.m of the SFF package (Chang, Yang, Gan, Wang, TIP 2013; docs/matlab_parity.md
section 5), with the project's own images and RNG:
  1. Images: colour photographs shipped inside scikit-image (`skimage.data`, no
     download): astronaut, coffee, chelsea, rocket, motorcycle_left. Each is resized
     (bicubic, antialiased) to `--width` columns (default 384, the width of the authors'
     data1 JPEGs, so that an 8x8 patch covers a similar part of a scene) and kept on
     the 0..255 scale (SFF's C = 0.08 assumes whitened units of 0..255 pixels).
  2. Sampling: `--patches` (default 18000, as TrainW(18000, 8, 8)) random p x p x 3
     patches split evenly over the images (the last takes the remainder); top-left
     corners x = floor(u (width - p - 2)), y = floor(u (height - p - 1)) (0-based),
     u uniform from NumPy's PCG64 seeded with `--seed`; each patch vectorised
     column-major over (row, col, channel) as SFF.m reads blocks.
  3. DC removal: subtract each patch's own mean.
  4. PCA whitening: Sigma = X X^T / n; eigenvalues descending; V = diag(d^-1/2) E^T,
     first `--dims` (8) rows; Z = V X.
  5. Symmetric FastICA with g = tanh from W0 = orth(randn), orth(M) = (M M^T)^-1/2 M:
     W <- orth(G Z^T / n - diag(mean(1 - G^2)) W), G = tanh(W Z), until
     || |W Wold^T| - I ||_F < 1e-8 * dims (at most 2000 iterations).
  6. W_final = W V (dims x 3 p^2).
The result differs from the authors' W.mat (other images, other RNG), see
`metrics/sff.py`. Writes `--out` (.npy) and a JSON record beside it (same stem).

Usage: python -m deepfl_jax.tools.learn_sff_w --out deepfl_jax/metrics/data/sff_w.npy
"""
from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import skimage.data
import skimage.transform

IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")


def load_images(names=IMAGES, width: int | None = 384) -> list[np.ndarray]:
  """(H, W, 3) float64 0..255 photographs from skimage.data, resized to `width` cols."""
  out = []
  for name in names:
    if name == "motorcycle_left":
      img = skimage.data.stereo_motorcycle()[0]
    else:
      img = getattr(skimage.data, name)()
    img = np.asarray(img, np.float64)[..., :3]
    if width is not None and img.shape[1] != width:
      rows = int(round(img.shape[0] * width / img.shape[1]))
      img = skimage.transform.resize(img, (rows, width), order=3, anti_aliasing=True,
                                     preserve_range=True, mode="symmetric")
    out.append(img)
  return out


def sample_patches(images, n: int, p: int, rng: np.random.Generator) -> np.ndarray:
  """(3 p^2, n) patches, column-major over (row, col, channel) like SFF.m."""
  per = n // len(images)
  cols = []
  for i, img in enumerate(images):
    m = per if i < len(images) - 1 else n - per * (len(images) - 1)
    h, w = img.shape[:2]
    xs = np.floor(rng.random(m) * (w - p - 2)).astype(int)
    ys = np.floor(rng.random(m) * (h - p - 1)).astype(int)
    r = ys[:, None, None] + np.arange(p)[None, :, None]           # (m, i, 1)
    c = xs[:, None, None] + np.arange(p)[None, None, :]           # (m, 1, j)
    patch = img[r, c]                                             # (m, i, j, ch)
    cols.append(patch.transpose(0, 3, 2, 1).reshape(m, -1))       # ch, j, i: i fastest
  return np.concatenate(cols).T


def whitening(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
  """(V, Sigma): V (dims, d) PCA whitening rows, Sigma = X X^T / n (no mean removal)."""
  sigma = x @ x.T / x.shape[1]
  d, e = np.linalg.eigh(sigma)
  order = np.argsort(d)[::-1][:dims]
  e = e[:, order]
  # Fix LAPACK's arbitrary eigenvector signs (largest entry positive): reproducibility.
  e = e * np.sign(e[np.argmax(np.abs(e), axis=0), np.arange(dims)])
  return (e / np.sqrt(d[order])).T, sigma


def _orth(m: np.ndarray) -> np.ndarray:
  """(M M^T)^(-1/2) M (symmetric decorrelation)."""
  d, e = np.linalg.eigh(m @ m.T)
  return (e / np.sqrt(d)) @ e.T @ m


def fastica(z: np.ndarray, rng: np.random.Generator, max_iter: int = 2000,
            tol: float = 1e-8) -> tuple[np.ndarray, int, bool]:
  """Symmetric FastICA with tanh on whitened z (k, n) -> (W (k, k), iterations, ok)."""
  k, n = z.shape
  w = _orth(rng.standard_normal((k, k)))
  for it in range(1, max_iter + 1):
    w_old = w
    g = np.tanh(w @ z)
    w = _orth(g @ z.T / n - np.diag(np.mean(1 - g ** 2, axis=1)) @ w)
    if np.linalg.norm(np.abs(w @ w_old.T) - np.eye(k)) < tol * k:
      return w, it, True
  return w, max_iter, False


def learn(seed: int = 0, patches: int = 18000, p: int = 8, dims: int = 8,
          width: int | None = 384, names=IMAGES) -> tuple[np.ndarray, dict]:
  """Returns (W (dims, 3 p^2) float64, record dict)."""
  rng = np.random.default_rng(seed)
  x = sample_patches(load_images(names, width), patches, p, rng)
  x = x - x.mean(axis=0, keepdims=True)
  v, _ = whitening(x, dims)
  w, iters, ok = fastica(v @ x, rng)
  record = {"images": [f"skimage.data.{n}" for n in names], "resize_width": width,
            "seed": seed, "rng": "numpy.random.default_rng (PCG64)", "patches": patches,
            "patch_size": p, "components": dims, "fastica": "symmetric, tanh",
            "iterations": iters, "converged": ok, "tolerance": 1e-8 * dims,
            "procedure": "TrainW.m (docs/matlab_parity.md section 5) with project images/RNG"}
  return w @ v, record


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="output .npy (a .json goes beside)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--patches", type=int, default=18000)
  parser.add_argument("--width", type=int, default=384,
                      help="resize images to this many columns (0: keep size)")
  args = parser.parse_args(argv)
  w, record = learn(args.seed, args.patches, width=args.width or None)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  np.save(out, w)
  out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
  print(f"W {w.shape} -> {out}; {record['iterations']} iterations, "
        f"converged={record['converged']}")


if __name__ == "__main__":
  main()
