"""The fused 11-metric call equals the metrics called one by one, in KADIS order."""
import numpy as np
import pytest

from deepfl_jax import metrics
from tests.metrics.test_properties import noisy, photos


@pytest.mark.slow
def test_fused_equals_individual_metrics_in_score_file_order():
  x = photos()
  y = noisy(x, 0.05)
  scores = metrics.fr_scores(x, y)
  assert tuple(scores) == ("ssim", "ms_ssim", "iw_ssim", "mdsi", "vsi", "fsimc", "gmsd",
                           "sff", "scqi_proxy", "add_gsim_proxy", "sr_sim")
  for name, value in scores.items():
    single = np.asarray(getattr(metrics, name)(x, y))
    np.testing.assert_allclose(np.asarray(value), single, rtol=2e-4, atol=2e-5,
                               err_msg=name)
  assert [n for n, hi in metrics.HIGHER_IS_BETTER.items() if not hi] == ["mdsi", "gmsd"]


def test_fused_rejects_images_too_small_for_ms_ssim():
  x = photos()[:, :150]
  with pytest.raises(ValueError, match="176"):
    metrics.fr_scores(x, x)
