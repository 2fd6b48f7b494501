"""Shared test fixtures: the golden images in ../shared (skipped when absent)."""
from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
GOLDEN = SHARED / "data" / "golden"


def _need(path: pathlib.Path) -> pathlib.Path:
  if not path.exists():
    pytest.skip(f"{path} is absent: the golden files live in ../shared beside the "
                "checkout (developers and CI have it, users do not)")
  return path


def load_uint8(path: pathlib.Path) -> np.ndarray:
  """(H, W, 3) or (H, W, 1) uint8, as MATLAB's imread + double would read it."""
  img = np.asarray(Image.open(path))
  return img[..., None] if img.ndim == 2 else img[..., :3]


@pytest.fixture(scope="session")
def golden():
  """dict of uint8 arrays: goldhill, goldhill_jpeg (H, W, 1); I01, i01_01_5 (H, W, 3)."""
  piq = _need(GOLDEN / "piq")
  return {
      "goldhill": load_uint8(piq / "goldhill.gif"),
      "goldhill_jpeg": load_uint8(piq / "goldhill_jpeg.gif"),
      "I01": load_uint8(piq / "I01.BMP"),
      "i01_01_5": load_uint8(piq / "i01_01_5.bmp"),
  }


@pytest.fixture(scope="session")
def tid_pairs():
  """list of (name, reference uint8, distorted uint8) from golden/tid2013_pairs."""
  root = _need(GOLDEN / "tid2013_pairs")
  return [(p.name, load_uint8(p), load_uint8(root / "dist" / p.name))
          for p in sorted((root / "ref").glob("*.bmp"))]


@pytest.fixture
def x64():
  """Runs the test body in float64 (MATLAB parity is judged in double precision)."""
  with jax.enable_x64(True):
    yield


# The fast tier (`-m "not slow"`) also leaves out these tests (file::function, all
# parameters): each took 15 s or more (setup + call, summed over its parameters) in the
# fast tier measured on 2026-12-07 (2 workers on 2 shared cores, load ~10), together
# about 60 % of that tier's time. They compile full metric, synthesis or training
# programs, or start subprocesses. The tests marked `slow` in place are left out too.
SLOW_IN_FAST_TIER = frozenset((
    "data/test_synthesis.py::test_kadis_assignment_and_orientation",
    "data/test_synthesis.py::test_calibrate",
    "data/test_synthesis.py::test_stream_is_deterministic",
    "data/test_synthesis.py::test_batch_contents",  # the last user of uniform_batches
    "data/test_synthesis.py::test_labels_equal_metrics_on_same_images",
    "data/test_synthesis.py::test_resume_and_process_sharding",
    "data/test_pipeline.py::test_iterator_state_restores_the_stream",
    "metrics/test_properties.py::test_jit_batch_and_grad",
    "metrics/test_properties.py::test_flat_images_nan_as_matlab_or_finite",
    "metrics/test_fused.py::test_fused_equals_individual_metrics_in_score_file_order",
    "metrics/test_conventions.py::test_uint8_is_float_over_255",
    "metrics/test_mdsi.py::test_identical_is_exactly_zero_in_float32",
    "metrics/test_iw_ssim.py::test_float32_close_to_float64",
    "metrics/test_iw_ssim.py::test_matlab_golden_goldhill_and_port_crosscheck_swapped",
    "distortions/test_severity.py::test_psnr_falls_with_level",
    "distortions/test_driver.py::test_fn_is_draws_then_apply",
    "distortions/test_driver.py::test_distort_runs_equals_distort_and_runs_only_its_types",
    "distortions/test_driver.py::test_determinism",
    "distortions/test_kernels.py::test_disk_is_pixel_coverage",
    "models/test_models.py::test_bf16_compute_keeps_float32_params",
    "models/test_models.py::test_extractor_vmap_grad_jit",
    "train/test_loop_signals.py::test_signal_checkpoints_step_reached_and_resumes",
    "train/test_finetune.py::test_run_finetune_end_to_end",
    "train/test_finetune.py::test_finetune_learns_brightness",
    "train/test_stage1.py::test_bfloat16_compute_keeps_float32_parameters",
    "train/test_stage1.py::test_variables_split_backbone_and_head",
    "train/test_stage3.py::test_final_scoring_model_is_fit_on_all_contents",
    "train/test_validation.py::test_evaluate_runs_the_model_in_inference_mode_over_the_mesh",
    "train/test_parallel.py::test_data_parallel_step_equals_single_device_step",
    "pretext/test_run.py::test_run_pretext_trains_logs_and_resumes",
    "pretext/test_run.py::test_four_devices_equal_one_device",
    "pretext/test_run.py::test_contrastive_without_gathered_negatives_differs",  # same run
    "pretext/test_contrastive.py::test_batch_hard_negatives_share_content_and_differ_in_degradation",
    "pretext/test_degradations.py::test_apply_plan_and_errors",
    "test_cli.py::test_score_folder_matches_pipeline",
    # Added after a second measurement (same day, load ~10): tests new since the first.
    "train/test_stage1.py::test_bn_momentum_reaches_every_batch_norm_and_sets_the_running_average",
    "distortions/test_driver.py::test_jpeg_constant_level_programs_equal_the_traced_one",
    "distortions/test_driver.py::test_batched_mixed_types_equal_per_image_calls",
    "distortions/test_jpeg2000.py::test_illinois_rate_search_agrees_with_bisection",
    "distortions/test_jpeg2000.py::test_jpeg2000_matches_openjpeg",
    "distortions/test_jpeg2000.py::test_jpeg2000_properties",
    "distortions/test_jpeg.py::test_jpeg_matches_pillow_libjpeg",
    "models/test_models.py::test_input_scale_keras",
    "train/test_feature_cache.py::test_cache_reused_and_invalidated_by_other_weights",
    "train/test_stage3.py::test_run_stage3_writes_results",
    "train/test_regressor.py::test_export_round_trip_and_old_msgpack",
    "train/test_regressor.py::test_regressor_learns_linear_target_and_beats_untrained_head",
    "pretext/test_contrastive.py::test_positive_views_are_crops_of_one_degraded_image",
    "metrics/test_iw_ssim.py::test_matlab_golden_tid2013_and_port_crosscheck_correct_roles",
    # And after the third (load ~6).
    "distortions/test_driver.py::test_colour_quantisation_level_programs_equal_the_traced_one",
    "distortions/test_driver.py::test_colour_diffusion_level_programs_equal_the_traced_one",
    "distortions/test_driver.py::test_no_type_calls_back_to_the_host_in_compiled_runs",
    "distortions/test_jpeg2000.py::test_jpeg2000_matches_openjpeg_on_unseen_images",
    "distortions/test_jpeg.py::test_jpeg_matches_octave_reference",
    "metrics/test_sr_sim.py::test_even_kernel_window_matters",
))


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by marker
def pytest_collection_modifyitems(config, items):
  del config
  for item in items:
    if item.nodeid.split("[")[0].removeprefix("tests/") in SLOW_IN_FAST_TIER:
      item.add_marker(pytest.mark.slow)
