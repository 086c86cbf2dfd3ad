"""Build configuration for the optional C fast paths; everything else is in pyproject.toml.

The extensions are optional: where no C compiler is available the install still succeeds and
the runtime uses its pure-Python (numpy) paths, which give identical results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            f"textdistill.runtime.{name}",
            [f"src/textdistill/runtime/{name}.c"],
            # No fused multiply-add: the C path's floats must round exactly as numpy's do.
            extra_compile_args=["-O3", "-ffp-contract=off"],
            optional=True,
        )
        for name in ("_ngrams", "_dense")  # the featurizer's and the dense student's
    ]
)
