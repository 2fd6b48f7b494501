"""Helpers shared by the codec tests (JPEG, JPEG 2000): PSNR, 8-bit rounding, mapmm."""
import numpy as np


def psnr(a, b, peak=255.0) -> float:
  return 10 * np.log10(peak ** 2 / np.mean((np.asarray(a, np.float64)
                                            - np.asarray(b, np.float64)) ** 2))


def as_u8(x) -> np.ndarray:
  return np.round(np.asarray(x, np.float64) * 255).astype(np.uint8)


def mapmm(a) -> np.ndarray:
  a = np.asarray(a, np.float64)
  return (a - a.min()) / (a.max() - a.min())
