"""deepfl_jax: DeepFL-IQA (Lin, Hosu, Saupe 2020) and related IQA pretraining in JAX."""
__version__ = "0.1.0"
