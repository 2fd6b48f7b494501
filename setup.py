"""deepfl_jax: DeepFL-IQA and friends in JAX/Flax."""
from setuptools import find_packages, setup

setup(
    name="deepfl_jax",
    version="0.1.0",
    description=("DeepFL-IQA (Lin, Hosu, Saupe 2020) in JAX/Flax: distortion engine, "
                 "11 FR-IQA metrics, InceptionResNetV2 MLSP features."),
    packages=find_packages(include=["deepfl_jax", "deepfl_jax.*"]),
    package_data={"deepfl_jax": ["metrics/data/*", "data/*.csv"]},
    python_requires=">=3.11",
    install_requires=[
        "jax>=0.10",         # jax.shard_map, lax.pcast; tested with 0.10.2
        "flax",
        "optax",
        "orbax-checkpoint",
        "tensorflow-datasets",
        "numpy",
        "scipy",
        "dm-pix",
        "ml-collections",
        "absl-py",
        "pillow",          # image files (golden images, user folders)
        "scikit-image",    # ships the pristine photographs of the embedded default data
        "array_record",    # random-access storage of the TFDS builders
        "grain>=0.2.18",   # host input pipeline (workers, checkpointable iterator)
        "tensorboardX",    # TensorBoard summaries of training runs
        "h5py",            # Keras .h5 / .hdf5 weights (ImageNet, the released model)
    ],
    extras_require={
        # scikit-learn: its two sample photographs are the demo's transfer check
        # (contents no stage trains on) for users without ../shared.
        "test": ["pytest", "pytest-xdist", "pypng", "keras>=3", "scikit-learn"],
        # Peers for side-by-side benchmarks (experiments/); torch CPU: torch==2.13.0.
        "peers": ["piq", "torch"],
    },
    entry_points={"console_scripts": ["deepfl-iqa=deepfl_jax.cli:main"]},
)
