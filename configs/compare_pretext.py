"""Compare the four Stage 1 pretext tasks on equal terms (issue 15, `deepfl_jax.pretext`):
"fr_proxies" (DeepFL-IQA), "ranking" (RankIQA), "ranking_mlsp" (multi-level ranking)
and "contrastive" (QPT), each training the demo's width-reduced InceptionResNetV2 for
the same steps, batch, optimiser and pristine images (the demo's: grey photographs and
dead leaves, contents that no later stage evaluates), then the same Stage 2 (narrow
MLSP on mini-KADID) and Stage 3 (regressor and ridge probe, content splits) and
end-to-end fine-tuning; random backbone weights give the floor row.

  python -m deepfl_jax.main --config=configs/compare_pretext.py --workdir=runs/compare

Scaled-down choices as configs/demo.py (its measurements in experiments/RESULTS.md);
crops of 192x256 for every task (the FR metrics need >= 176 px), QPT views of 128x128.
Time (experiments/RESULTS.md, issue 15, 2026-12-07): 9 min 15 s wall on 2 CPU cores
(quiet machine, fresh clone; 39 min 54 s at load 6-11), under the 25 minutes asked;
fr_proxies' Stage 1 (FR labels) is the largest part. At 200 steps no
task separates from random weights by more than the spread over content splits: the
budget shows that the comparison runs, not which task is best (tests/pretext/
test_compare_short.py asserts each task against random weights on a reduced set).
"""
from configs import demo


def get_config():
  config = demo.get_config()
  config.name = "compare_pretext"
  config.stages = ("compare_pretext",)
  # The demo's protocol (issue 13): every task's Stage 1 on the demo's pristine images
  # (grey photographs + dead leaves, random scales, flips and colours: the pretext
  # crops take Stage 1's transform), Stages 2/3 on mini-KADID's unseen photographs.
  config.compare = {"tasks": (), "finetune": True}   # () = all four tasks
  config.train.num_steps = 200
  config.train.batch_size = 12         # 12 crops / 2 groups of 6 / 3 contents x 2 x 2
  config.stage1.rank_head_hidden = (256,)  # the same head as fr_proxies' (demo)
  config.stage1.rank_head_dropout = (0.0,)
  config.stage1.view_size = (128, 128)
  config.stage1.proj_hidden = 256
  config.stage1.second_order_prob = 0.3
  config.stage1.margin = 1.0           # ours: a small net's outputs start near 0 (RankIQA: 10)
  # Fine-tuning back-propagates through the backbone at 192x256: on 2 CPU cores about
  # a minute per epoch, so 2 epochs on one split per task (ours; the regressor and the
  # ridge probe use Stage 3's 5 splits).
  config.finetune = {"epochs": 2, "batch_size": 16, "learning_rate": 1e-4,
                     "num_repeats": 1, "compare_random": True, "progress": True}
  return config
