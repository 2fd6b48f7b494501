"""The DeepFL-IQA MOS regressor on MLSP features (Lin, Hosu, Saupe 2020, arXiv
2001.08113, Stage 3): its jitted functions, initialisation, training with the
best-validation epoch kept, and the exported model `deepfl-iqa score` loads.

`models.MOSRegressor` (Dense 2048 -> BN -> Dropout 0.25 -> 1024 -> BN -> 0.25 -> 256 ->
BN -> 0.5 -> 1) trained with MSE on the raw MOS/DMOS, Adam (lr 1e-3, Keras' epsilon
1e-7), batch 128 reshuffled every epoch (the last batch may be smaller, as Keras'
`fit`); the weights of the epoch with the lowest validation MSE are kept (Keras'
`ModelCheckpoint(save_best_only=True)`).

Export layout (`<workdir>/stage3/`): `regressor/` (orbax, the variables) and
`model.json` (feature set, head sizes, how it was fit, the score's name and direction).
Work directories from before the orbax export hold `regressor.msgpack` instead; it is
still read.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import pathlib
from typing import Any, Callable, Mapping, Sequence

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from deepfl_jax import atomic
from deepfl_jax.models.heads import MOSRegressor
from deepfl_jax.models.host_init import host_init
from deepfl_jax.train.optim import make_optimizer
from deepfl_jax.train.state import TrainState

STAGE_DIR = "stage3"
REGRESSOR_DIR = "regressor"        # orbax folder of the exported variables
LEGACY_REGRESSOR = "regressor.msgpack"
MODEL_JSON = "model.json"
_PREDICT_CHUNK = 256


@functools.lru_cache(maxsize=8)
def _functions(hidden: tuple, dropout: tuple, learning_rate: float, eps: float):
  """(model, optimizer, jitted train step, jitted predict), shared by every repeat."""
  model = MOSRegressor(hidden=hidden, dropout=dropout)
  tx = make_optimizer(name="adam", learning_rate=learning_rate, eps=eps)

  def loss_fn(params, batch_stats, x, y, rng):
    pred, upd = model.apply({"params": params, "batch_stats": batch_stats}, x,
                            train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    return jnp.mean(jnp.square(pred[:, 0] - y)), upd["batch_stats"]

  @functools.partial(jax.jit, donate_argnums=(0,))
  def train_step(state: TrainState, x, y):
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params, state.batch_stats, x, y, state.step_rng())
    return state.apply_gradients(tx, grads, batch_stats=stats), loss

  @jax.jit
  def predict(variables, x):
    return model.apply(variables, x, train=False)[:, 0]

  return model, tx, train_step, predict


def predict(variables, features: np.ndarray, *, hidden: Sequence[int] = (2048, 1024, 256),
            dropout: Sequence[float] = (0.25, 0.25, 0.5)) -> np.ndarray:
  """Regressor outputs (N,) float64 for features (N, ...) (host or device arrays;
  inference mode), in chunks padded to one fixed size (one compilation for any N)."""
  *_, fn = _functions(tuple(int(h) for h in hidden), tuple(float(d) for d in dropout),
                      1e-3, 1e-7)
  variables = jax.device_put(variables)  # once, not with every chunk
  n = len(features)
  out = np.empty(n, np.float64)
  for s in range(0, n, _PREDICT_CHUNK):
    x = jnp.asarray(features[s:s + _PREDICT_CHUNK], jnp.float32)
    m = len(x)
    if m < _PREDICT_CHUNK:  # pad: every part size reuses the full-chunk program
      x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (_PREDICT_CHUNK - m,) + x.shape[1:])])
    out[s:s + m] = np.asarray(fn(variables, x))[:m]
  return out


def init_regressor(num_features_shape: Sequence[int], *, hidden=(2048, 1024, 256),
                   dropout=(0.25, 0.25, 0.5), seed: int = 0) -> dict:
  """Fresh regressor variables for per-example features of shape `num_features_shape`
  (host-side He-normal init, `models.host_init`)."""
  model = MOSRegressor(hidden=tuple(hidden), dropout=tuple(dropout))
  v = host_init(model, jnp.zeros((2, *num_features_shape), jnp.float32), seed=seed)
  return {"params": v["params"], "batch_stats": v["batch_stats"]}


@dataclasses.dataclass
class RegressorFit:
  """Result of `train_regressor`: the best-validation variables and the history."""
  variables: dict
  initial_variables: dict
  best_epoch: int                  # 1-based epoch whose weights were kept
  best_val_loss: float
  train_loss: list[float]          # mean training MSE of each epoch
  val_loss: list[float]            # validation MSE after each epoch


def _mse(variables, x, y, hidden, dropout) -> float:
  return float(np.mean(np.square(predict(variables, x, hidden=hidden, dropout=dropout)
                                 - np.asarray(y, np.float64))))


def train_regressor(x_train, y_train, x_val, y_val, *, epochs: int = 30,
                    batch_size: int = 128, learning_rate: float = 1e-3,
                    adam_eps: float = 1e-7, hidden=(2048, 1024, 256),
                    dropout=(0.25, 0.25, 0.5), seed: int = 0,
                    on_epoch: Callable[[int, float], None] | None = None,
                    keep_best: bool = True) -> RegressorFit:
  """Trains `MOSRegressor` with MSE on the raw scores (its output bias initialised to
  the mean of `y_train`); keeps the best-validation epoch
  (or, with keep_best=False, the last: the final fit on all data, whose epoch count
  the splits chose).

  Args:
    x_train, x_val: features (n, ...) float32; y_train, y_val: scores (n,).
    seed: initialisation, per-epoch shuffling and dropout.
    on_epoch: called with (epoch, validation MSE) after each epoch.
  """
  hidden, dropout = tuple(int(h) for h in hidden), tuple(float(d) for d in dropout)
  if epochs < 1:
    raise ValueError(f"config.stage3.epochs must be >= 1, got {epochs}")
  if batch_size < 1:
    raise ValueError(f"config.stage3.batch_size must be >= 1, got {batch_size}")
  if len(x_train) < 2 or len(x_val) < 1:
    raise ValueError(f"too few examples to train ({len(x_train)}) / validate "
                     f"({len(x_val)}) the regressor")
  _, tx, step, _ = _functions(hidden, dropout, float(learning_rate), float(adam_eps))
  # Features and scores go to the device once per split; batches are gathered there.
  x_train = jnp.asarray(x_train, jnp.float32)
  y_train = jnp.asarray(y_train, jnp.float32).reshape(-1)
  x_val = jnp.asarray(x_val, jnp.float32)
  init = init_regressor(x_train.shape[1:], hidden=hidden, dropout=dropout, seed=seed)
  # The output starts at the training scores' mean (the paper does not state the
  # regressor's initialisation): from a bias of 0 on DMOS of 1..5 the first tens of
  # epochs only fitted the offset (best epochs 61-100 of 100 in the demo, RESULTS.md).
  out = f"Dense_{len(hidden)}"
  init["params"][out]["bias"] = np.full_like(init["params"][out]["bias"],
                                             float(jnp.mean(y_train)))
  state = TrainState.create(params=jax.tree.map(jnp.array, init["params"]),
                            batch_stats=jax.tree.map(jnp.array, init["batch_stats"]),
                            tx=tx, rng=jax.random.PRNGKey(seed))
  rng = np.random.default_rng([seed, 0x57A6E3])
  n = len(x_train)
  best, best_loss, best_epoch = None, math.inf, 0
  train_hist, val_hist = [], []
  for epoch in range(1, epochs + 1):
    perm = rng.permutation(n)
    losses = []
    for s in range(0, n, batch_size):
      idx = perm[s:s + batch_size]
      if len(idx) < 2:  # a batch of one has no batch statistics; Keras would
        continue        # normalise it to the BN offset, we skip it instead
      state, loss = step(state, x_train[idx], y_train[idx])
      losses.append((loss, len(idx)))
    sizes = np.asarray([k for _, k in losses], np.float64)
    epoch_losses = np.asarray(jnp.stack([l for l, _ in losses])) if losses else sizes
    train_hist.append(float(np.sum(epoch_losses * sizes) / max(sizes.sum(), 1)))
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    val = _mse(variables, x_val, y_val, hidden, dropout)
    val_hist.append(val)
    if keep_best and val < best_loss:  # strict: ties keep the earlier epoch, as Keras
      best_loss, best_epoch = val, epoch
      best = jax.tree.map(jnp.copy, variables)  # a copy: the state is donated
    if on_epoch is not None:
      on_epoch(epoch, val)
  if not keep_best:
    best, best_loss, best_epoch = variables, val_hist[-1], epochs
  if best is None:  # every validation loss was NaN
    best, best_epoch = variables, epochs
  return RegressorFit(jax.tree.map(np.asarray, best), init, best_epoch, float(best_loss),
                      train_hist, val_hist)


def save_regressor(workdir, variables, model: Mapping[str, Any]) -> pathlib.Path:
  """Exports `variables` (orbax, `<workdir>/stage3/regressor`) and `model` (JSON:
  feature_set, hidden, dropout, fit, ...) as the scoring model. Every process calls
  it with the same variables (orbax writes once); process 0 writes model.json."""
  out = pathlib.Path(workdir).absolute() / STAGE_DIR
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(out / REGRESSOR_DIR, jax.tree.map(np.asarray, variables), force=True)
  if atomic.is_writer():
    (out / LEGACY_REGRESSOR).unlink(missing_ok=True)  # never two exports side by side
    atomic.write_json(out / MODEL_JSON, dict(model), indent=1)
  return out


def load_regressor(workdir) -> tuple[dict, dict]:
  """(variables, model.json) of the exported regressor of a work directory."""
  out = pathlib.Path(workdir).absolute() / STAGE_DIR
  meta_path = out / MODEL_JSON
  if not meta_path.is_file():
    raise FileNotFoundError(f"{meta_path} is missing: the run in {workdir} has no "
                            "trained regressor; run Stage 3 (after Stages 1 and 2)")
  meta = json.loads(meta_path.read_text())
  if (out / REGRESSOR_DIR).is_dir():
    with ocp.StandardCheckpointer() as ckpt:
      variables = ckpt.restore(out / REGRESSOR_DIR)
  elif (out / LEGACY_REGRESSOR).is_file():  # a work directory from before orbax
    variables = flax.serialization.msgpack_restore(
        (out / LEGACY_REGRESSOR).read_bytes())
  else:
    raise FileNotFoundError(f"{out} has model.json but no {REGRESSOR_DIR}/ folder: "
                            "rerun Stage 3")
  return jax.tree.map(np.asarray, variables), meta
