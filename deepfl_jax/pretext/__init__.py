"""Alternative Stage 1 pretext tasks, beside DeepFL-IQA's FR proxies.

- `ranking`: RankIQA's efficient Siamese ranking loss (Liu, van de Weijer, Bagdanov,
  ICCV 2017) and "ranking_mlsp" (the same loss on a head over MLSP features).
- `contrastive`: quality-aware contrastive pretraining, QPT (Zhao et al., CVPR 2023).
- `degradations`: QPT's degradation space built from the engine's own operations.
- `network`: backbone + task head, with the variable layout of Stage 1 ({"backbone",
  "head"}), so Stage 2 reads any task's backbone unchanged and drops the head.
- `crops`: random pristine crops for the streams; `compare`: the four tasks side by side.
- `run`: the Stage 1 entry point of these tasks (`config.stage1.task`).
"""
TASKS = ("fr_proxies", "ranking", "ranking_mlsp", "contrastive")


def default_config():
  """The `config.stage1` keys of the pretext tasks, with their defaults (merged into
  `configs.common.stage1_config`; unused by "fr_proxies")."""
  import ml_collections
  c = ml_collections.ConfigDict()
  # ranking / ranking_mlsp (RankIQA)
  c.margin = 10.0               # hinge margin (RankIQA's prototxt)
  c.include_pristine = True     # each group: pristine + levels 1..5 (6 images)
  c.rank_head_hidden = ()       # () = a linear scalar head on the features
  c.rank_head_dropout = ()
  c.mlsp_blocks = ()            # MLSP blocks read by the head (() = all 43)
  # contrastive (QPT)
  c.features = "final"          # "final" pooled conv_7b | "mlsp"
  c.proj_hidden = 2048          # projection MLP (dropped after pretraining)
  c.proj_dim = 128
  c.temperature = 0.1
  c.view_size = (160, 160)      # positive crops (a published QPT re-implementation)
  c.iou_range = (0.1, 0.3)      # their overlap (same)
  c.degradations_per_content = 2  # >= 2: hard negatives (same content, other degradation)
  c.max_ops = 3                 # first-order slots (each skipped / repeated at random)
  c.skip_prob = 0.3
  c.second_order_prob = 0.5     # Real-ESRGAN-style two-round chain after the ops
  c.ops = ()                    # engine type ids of the first-order pool (() = default)
  c.flip = True                 # random horizontal flip of each view (dm-pix)
  return c
