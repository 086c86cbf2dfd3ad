"""Build configuration for the optional C fast path; everything else is in pyproject.toml.

The extension is optional: where no C compiler is available the install still succeeds and
the featurizer uses its pure-Python path, which gives identical results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "textdistill.runtime._ngrams",
            ["src/textdistill/runtime/_ngrams.c"],
            # No fused multiply-add: the C path's floats must round exactly as numpy's do.
            extra_compile_args=["-O3", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
