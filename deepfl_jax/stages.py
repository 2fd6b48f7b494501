"""The stages an experiment config can name (`config.stages`)."""
from deepfl_jax import fr_metrics_demo

STAGES = {
    "fr_metrics": fr_metrics_demo.run,
}
