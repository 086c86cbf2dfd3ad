"""textdistill: fine-tune a transformer teacher, distil it into a tiny numpy-only student.

The base install is the runtime (numpy only); training needs ``pip install textdistill[train]``.
"""

__version__ = "0.1.0"

from textdistill.runtime import ArtifactError, LinearModel, load

__all__ = ["ArtifactError", "LinearModel", "__version__", "load"]
