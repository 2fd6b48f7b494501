"""Shared numerical building blocks (MATLAB-exact primitives, filters, colour, resize).

Everything the metrics and the distortion engine have in common lives here once:
MATLAB rounding, reductions and `fspecial('gaussian')` (`matlab`), the disk and motion
kernels and `imgaussfilt` sizes (`kernels`), `conv2`/`filter2`/`imfilter` window
semantics and the average-then-subsample step (`filters`), linear colour transforms
(`color`) and MATLAB's Lab/HSV/YCbCr conversions (`colorspaces`), gradient kernels
and zero-safe powers (`gradient`), MATLAB `imresize` (`resize`), the Kovesi frequency
grid (`frequency`) and a sort-free median (`order_stats`).
"""
