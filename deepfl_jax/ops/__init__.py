"""Shared numerical building blocks (MATLAB-exact primitives, filters, colour, resize).

Everything the metrics and the distortion engine have in common lives here once:
MATLAB rounding and `fspecial` kernels (`matlab`), `conv2`/`filter2`/`imfilter` window
semantics and the average-then-subsample step (`filters`), colour transforms (`color`),
MATLAB `imresize` (`resize`) and the Kovesi frequency grid (`frequency`).
"""
