"""Teacher labeling through ONNX Runtime: the fine-tuned teacher exported once, its graph
fused by ONNX Runtime's transformer optimiser, in fp32 or quantised to int8.

On a CPU without AMX, torch's own kernels leave speed on the table: bf16 autocast can run
several times *slower* than fp32 there, and torch's dynamic int8 quantises each weight matrix
with one scale and loses labels on long reviews. ONNX Runtime fuses the encoder's attention,
its GELUs and its residual layer norms into single kernels (``onnxruntime.transformers``'
optimiser, the one it documents for BERT-like models), which pays on any x86 CPU; its own
dynamic quantisation then runs the fused graph's matrix products in int8 (VNNI where the CPU
has it). Both are only candidates: :meth:`Teacher.select_precision
<textdistill.teacher.Teacher.select_precision>` keeps one only when it keeps the fp32 label on
99.5% of a check set and is faster, like bf16 and torch's int8.

The export runs the model with eager attention (the same arithmetic as the default SDPA
kernel), because the optimiser recognises the attention pattern in that graph and not in
SDPA's; the teacher's own model is left as it was. Nothing is written next to the teacher:
the graphs live in a temporary directory for the few seconds the export and quantisation
take, and ONNX Runtime keeps the session in memory.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

ONNX_PRECISIONS = ("onnx-fp32", "onnx-int8")
"""Labeling precisions run by ONNX Runtime rather than torch."""

OPSET = 17
# Model types whose encoder layout onnxruntime.transformers' "bert" optimiser fuses.
_BERT_LIKE = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra", "mpnet"})


def onnx_runtime_available() -> bool:
    """Whether the ``onnx`` extra (onnx and onnxruntime) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _logits_module(model: Any, names: list[str]) -> torch.nn.Module:
    """The classifier as a module of positional tensors in and logits out, for the exporter."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    return Logits()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and quantiser's chatter (tracer warnings, a pre-processing hint) is not
    actionable for a user who asked for labels."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


class OnnxLabeler:
    """A fine-tuned classifier run by ONNX Runtime; called like the torch model's forward.

    ``sample`` is one collated batch (``Teacher._collate``): its keys become the graph's
    inputs, so a pair teacher's token types travel too. ``int8`` quantises the optimised
    graph's weights (ONNX Runtime's dynamic quantisation, signed 8-bit).
    """

    def __init__(
        self, model: Any, sample: dict[str, torch.Tensor], *, int8: bool, num_threads: int
    ) -> None:
        import onnxruntime as ort

        self.int8 = int8
        self.names = list(sample)
        with tempfile.TemporaryDirectory(prefix="textdistill-onnx-") as folder:
            path = self._export(model, sample, Path(folder))
            path = self._optimise(model, path)
            if int8:
                path = self._quantise(path)
            graph = path.read_bytes()
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def _export(self, model: Any, sample: dict[str, torch.Tensor], folder: Path) -> Path:
        import torch

        eager = copy.deepcopy(model).to("cpu").eval()
        if hasattr(eager, "set_attn_implementation"):
            eager.set_attn_implementation("eager")
        path = folder / "teacher.onnx"
        axes = {name: {0: "batch", 1: "tokens"} for name in self.names}
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                _logits_module(eager, self.names),
                tuple(sample[name].to("cpu") for name in self.names),
                str(path),
                input_names=self.names,
                output_names=["logits"],
                dynamic_axes={**axes, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        return path

    @staticmethod
    def _optimise(model: Any, path: Path) -> Path:
        """Fuse attention, GELU and layer norms where the model is BERT-like; other encoders
        get ONNX Runtime's generic graph optimisations only (at session creation)."""
        config = model.config
        if getattr(config, "model_type", None) not in _BERT_LIKE:
            return path
        from onnxruntime.transformers import optimizer

        with _quiet():
            fused = optimizer.optimize_model(
                str(path),
                model_type="bert",
                num_heads=int(config.num_attention_heads),
                hidden_size=int(config.hidden_size),
            )
        out = path.with_name("teacher.optimised.onnx")
        fused.save_model_to_file(str(out))
        return out

    @staticmethod
    def _quantise(path: Path) -> Path:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        out = path.with_name("teacher.int8.onnx")
        with _quiet():
            quantize_dynamic(
                str(path),
                str(out),
                weight_type=QuantType.QInt8,
                # The fused operators are outside the quantiser's shape inference.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        return out

    def __call__(self, **batch: torch.Tensor) -> torch.Tensor:
        """Logits of one collated batch, as a float32 tensor (what the torch path returns)."""
        import torch

        feeds = {name: batch[name].detach().to("cpu").numpy() for name in self.inputs}
        (logits,) = self.session.run(["logits"], feeds)
        return torch.from_numpy(np.asarray(logits, dtype=np.float32))
