"""Alternative Stage 1 pretext tasks, beside DeepFL-IQA's FR proxies.

- `ranking`: RankIQA's efficient Siamese ranking loss (Liu, van de Weijer, Bagdanov,
  ICCV 2017) and "ranking_mlsp" (the same loss on a head over MLSP features).
- `contrastive`: quality-aware contrastive pretraining, QPT (Zhao et al., CVPR 2023).
- `degradations`: QPT's degradation space built from the engine's own operations.
- `network`: backbone + task head, with the variable layout of Stage 1 ({"backbone",
  "head"}), so Stage 2 reads any task's backbone unchanged and drops the head.
- `crops`: random pristine crops for the streams; `compare`: the four tasks side by side.
- `run`: the Stage 1 entry point of these tasks (`config.stage1.task`).

Their config keys (in `config.stage1`) and defaults:
`deepfl_jax.config_defaults.pretext_config`.
"""
TASKS = ("fr_proxies", "ranking", "ranking_mlsp", "contrastive")
