"""Export a student (linear, or neural) to ONNX, and run the exported model.

Design: the ONNX model takes **n-gram ids, not raw strings**. Standard ONNX has no
Unicode-aware regex tokenizer (onnxruntime-extensions would add a native dependency, and its
regex engine does not match Python's ``re`` on Unicode classes such as ``[^\\W_]``), so the
exact tokenisation stays in the runtime: :meth:`NgramFeaturizer.ngram_ids` emits the
vocabulary id of every n-gram occurrence of a batch. The graph does all the numeric work:
term counting, sublinear tf (``1 + log tf``), idf, L2 normalisation and the linear layer.

Signature (opset 17, standard ops only), like ``torch.nn.EmbeddingBag``:

* input ``ngram_ids`` int64 ``[n_occurrences]``: the id of every n-gram occurrence found in
  the vocabulary, document after document, in any order within a document, repeats kept
  (the graph counts them); every id must lie in ``[0, n_features)``.
* input ``offsets`` int64 ``[batch + 1]``: document ``d`` owns
  ``ngram_ids[offsets[d]:offsets[d + 1]]``; ``offsets[0] == 0`` and
  ``offsets[-1] == n_occurrences``. A document with no known n-gram is an empty range and
  gets the intercept as logits, exactly like the numpy runtime.
* output ``logits`` float32 ``[batch, k]`` and ``probabilities`` float32 ``[batch, k]``
  (softmax of the logits divided by the calibration temperature; for a multilabel student,
  the sigmoid of each, and its per-label thresholds, on the logit scale, are in the metadata
  as ``textdistill.thresholds``: label ``j`` is on when ``logits[:, j] > thresholds[j]``).

The file is self-contained: its ``metadata_props`` carry the label names, the vocabulary and
the featurizer spec (``max_n``, ``char_ngrams``, token pattern), so :class:`OnnxStudent`
needs only the ``.onnx`` file, and a consumer in another language has everything it needs to
reproduce the ids. Sums run in float64 inside the graph, as they do in numpy, so the exported
logits match :meth:`LinearModel.decision_function` to float32 rounding.

The neural students export too. The embedding bag reads the same inputs: its embedding table
takes the linear layer's place, then a ReLU and the output layer follow. The BiLSTM reads
padded word ids instead (format ``token_ids+lengths/1``: ``token_ids`` int64 ``[batch, T]``,
``lengths`` int64 ``[batch]``, from :meth:`TokenSequencer.encode`) and runs the standard ONNX
``LSTM`` operator with ``sequence_lens``.

A dense student whose max-pooled detectors read runs of words (``window`` > 1) needs the words
in reading order, which n-gram ids do not keep: its graph (format
``ngram_ids+offsets+word_runs/1``) also reads ``word_runs`` int64 ``[batch, runs, window]``,
the embedding row of every word of every run of ``window`` consecutive words, each text padded
at both ends with the zero row (row ``V``, the number of word vectors; the rows of the
vocabulary's terms are in the metadata as ``textdistill.embedding_rows``), built by
:func:`word_runs`. When it reads unknown words as WordPiece pieces, the format is
``ngram_ids+offsets+word_runs/2`` and the pieces, whose rows follow the words', are in the
metadata as ``textdistill.word_pieces`` (an older reader refuses the format rather than
leave the pieces out).

A linear student of text pairs reads its pair features (:mod:`textdistill.runtime.
pair_features`: overlap statistics and hashed cross pairs are no n-gram look-up), so the
runtime computes the sparse feature rows and the graph the linear layer (format
``pair_features/1``: ``feature_ids`` int64 ``[nnz]``, ``feature_values`` float32 ``[nnz]``,
``offsets`` int64 ``[batch + 1]``, a CSR matrix); the file carries the idf too, so
:class:`OnnxStudent` rebuilds the featurizer from it alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textdistill.extras import install_hint
from textdistill.runtime import Model, load
from textdistill.runtime.atomic import write_file_atomically
from textdistill.runtime.dense import DenseModel, reading_order
from textdistill.runtime.featurizer import (
    TOKEN_PATTERN,
    TOKEN_PATTERNS,
    NgramFeaturizer,
    SparseRows,
)
from textdistill.runtime.linear import LinearModel, _as_texts
from textdistill.runtime.neural import NeuralModel, TokenSequencer
from textdistill.runtime.outputs import LabelOutputs
from textdistill.runtime.pair_features import PairFeaturizer
from textdistill.runtime.word_pieces import WordPieces

ONNX_HINT = f"ONNX export needs the onnx extra: {install_hint('onnx')}"
OPSET = 17
# ScatterElements takes reduction="max" from opset 18: a dense student's max-pooled branch.
MAX_POOLING_OPSET = 18
INPUTS = ("ngram_ids", "offsets")
OUTPUTS = ("logits", "probabilities")
# metadata_props keys
META_FORMAT = "textdistill.format"
META_LABELS = "textdistill.labels"
META_VOCABULARY = "textdistill.vocabulary"
META_FEATURIZER = "textdistill.featurizer"
META_INPUTS = "textdistill.inputs"
META_OUTPUTS = "textdistill.outputs"  # task, temperature and thresholds (runtime/outputs.py)
META_EMBEDDING_ROWS = "textdistill.embedding_rows"  # a word-runs graph's term -> vector row
META_IDF = "textdistill.idf"  # pair exports: the sides' idf, which their featurizer needs
META_PIECES = "textdistill.word_pieces"  # a word-runs graph's continuation pieces, in row order
FORMAT = "ngram_ids+offsets/1"
FORMAT_SEQUENCE = "token_ids+lengths/1"
FORMAT_PAIRS = "pair_features/1"
# A dense pair student's: the pair features and each side's n-gram rows.
FORMAT_DENSE_PAIRS = "pair_features+sides/1"
FORMAT_WORD_RUNS = "ngram_ids+offsets+word_runs/1"
FORMAT_WORD_PIECES = "ngram_ids+offsets+word_runs/2"  # the same inputs, unknown words as pieces
WORD_RUN_FORMATS = (FORMAT_WORD_RUNS, FORMAT_WORD_PIECES)
PAIR_SIDES = ("first", "second")
# ONNX orders an LSTM's gates input, output, forget, cell; torch (and the runtime) input,
# forget, cell, output.
_ONNX_GATES = (0, 3, 1, 2)


def default_output(artifact: str | Path) -> Path:
    """Where ``textdistill export`` writes by default: beside the artifact directory,
    ``runs/demo/student`` -> ``runs/demo/student.onnx`` (not inside it: saving the artifact
    again replaces its directory whole)."""
    root = Path(artifact)
    if root.name == "model.json":
        root = root.parent
    root = root.resolve()
    return root.with_name(f"{root.name}.onnx")


def export_onnx(artifact: str | Path, output: str | Path) -> Path:
    """Write the student at ``artifact`` as an ONNX model at ``output``; return it."""
    try:
        import onnx  # noqa: F401  (fail early, with the hint, before loading the artifact)
    except ImportError as error:
        raise ImportError(f"{ONNX_HINT} ({error})") from None

    model = load(str(artifact))
    proto = build_onnx_model(model)
    output = Path(output)
    write_file_atomically(output, proto.SerializeToString())
    return output


def build_onnx_model(model: Model) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (see the module docstring for its signature)."""
    try:
        from onnx import TensorProto, helper
    except ImportError as error:
        raise ImportError(f"{ONNX_HINT} ({error})") from None

    if isinstance(model, NeuralModel) and model.architecture == "bilstm":
        return _bilstm_model(model)
    if isinstance(model, (LinearModel, DenseModel)) and isinstance(
        model.featurizer, PairFeaturizer
    ):
        return _pair_model(model)
    table: np.ndarray
    bias: np.ndarray
    if isinstance(model, NeuralModel):  # the bag: embeddings in the linear layer's place
        table, bias = model.weights["embedding"], model.weights["embedding_bias"]
    elif isinstance(model, DenseModel):  # its n-gram weights, then the pooled word vectors
        table, bias = model.weights["linear"], model.weights["bias"]
    else:
        table, bias = model.coef, model.intercept
    assert isinstance(model.featurizer, NgramFeaturizer)
    n_features, width = model.featurizer.n_features, table.shape[1]
    graph = _Graph()
    nodes, initializers, node, const = graph.nodes, graph.initializers, graph.node, graph.const
    coef = const("coef", table.astype(np.float32))  # [V, width]
    idf = const("idf", model.featurizer.idf.astype(np.float32))  # [V]
    intercept = const("intercept", bias.astype(np.float32))  # [width]
    one_d = const("one_f64", np.array(1.0, dtype=np.float64))
    eps = const("eps_f64", np.array(1e-12, dtype=np.float64))
    zero_i = const("zero_i64", np.array([0], dtype=np.int64))
    one_i = const("one_i64", np.array([1], dtype=np.int64))
    minus_one_i = const("minus_one_i64", np.array([-1], dtype=np.int64))
    k_shape = const("k_shape", np.array([width], dtype=np.int64))
    int64_max = const("int64_max", np.array([np.iinfo(np.int64).max], dtype=np.int64))
    zero_s = const("zero_scalar", np.array(0, dtype=np.int64))
    one_s = const("one_scalar", np.array(1, dtype=np.int64))
    col_axis = const("axis_1", np.array([1], dtype=np.int64))

    # batch = len(offsets) - 1; n = len(ngram_ids)
    offsets_len = node("Shape", ["offsets"], "offsets_len")
    batch = node("Sub", [offsets_len, one_i], "batch")  # [1]
    n_occ = node("Shape", ["ngram_ids"], "n_occurrences")  # [1]

    doc = _rows_of_values(node, const, "ngram", "offsets")  # the document of every occurrence

    # Term counts per (document, n-gram): sort the keys doc * V + id (TopK over all of them,
    # several times faster than Unique in onnxruntime), keep the first of each run of equal
    # keys, and count a run as the distance to the next run's start.
    n_features_i = const("n_features_i64", np.array(n_features, dtype=np.int64))
    keys = node("Add", [node("Mul", [doc, n_features_i], "doc_base"), "ngram_ids"], "keys")
    nodes.append(
        helper.make_node(
            "TopK", [keys, n_occ], ["sorted_keys", "sort_order"], name="sort", largest=0, sorted=1
        )
    )
    # keys are >= 0, so a leading -1 makes position 0 a run start
    head = node("Slice", ["sorted_keys", zero_i, minus_one_i, zero_i], "sorted_keys_head")
    previous = node("Concat", [minus_one_i, head], "previous_keys", axis=0)
    same = node("Equal", ["sorted_keys", previous], "same_as_previous")
    is_start = node("Not", [same], "is_start")
    n_scalar = node("Squeeze", [n_occ, zero_i], "n_scalar")
    positions = node("Range", [zero_s, n_scalar, one_s], "positions")
    starts = node("Compress", [positions, is_start], "run_starts", axis=0)  # [m]
    next_starts = node("Slice", [starts, one_i, int64_max, zero_i], "next_starts")
    run_ends = node("Concat", [next_starts, n_occ], "run_ends", axis=0)
    term_counts = node("Sub", [run_ends, starts], "term_counts")  # [m]
    first_index = node("Gather", ["sort_order", starts], "first_index")
    term_id = node("Gather", ["ngram_ids", first_index], "term_id")  # [m]
    term_doc = node("Gather", [doc, first_index], "term_doc")  # [m]

    # tf-idf: float32 (1 + log count) computed in float64 then rounded, times float32 idf,
    # exactly the numpy runtime's arithmetic.
    counts_f64 = node("Cast", [term_counts], "counts_f64", to=TensorProto.DOUBLE)
    tf_f64 = node("Add", [node("Log", [counts_f64], "log_counts"), one_d], "tf_f64")
    tf = node("Cast", [tf_f64], "tf", to=TensorProto.FLOAT)
    weight = node("Mul", [tf, node("Gather", [idf, term_id], "term_idf")], "weight")  # [m]
    raw_weight, coef_index = weight, term_id
    if isinstance(model, DenseModel) and model.n_terms < n_features:
        # Only the first n_terms features are the n-gram part's (and count in its norm); the
        # teacher's words after them only carry a vector (runtime.dense.leading_terms).
        last_term = const("last_term_i64", np.array(model.n_terms - 1, dtype=np.int64))
        in_part = node("LessOrEqual", [term_id, last_term], "in_ngram_part")
        part_mask = node("Cast", [in_part], "ngram_part_mask", to=TensorProto.FLOAT)
        weight = node("Mul", [raw_weight, part_mask], "ngram_weight")
        coef_index = node("Min", [term_id, last_term], "coef_index")

    # L2 norm per document, summed in float64.
    weight_f64 = node("Cast", [weight], "weight_f64", to=TensorProto.DOUBLE)
    squares = node("Mul", [weight_f64, weight_f64], "squares")
    norms0 = node(
        "ConstantOfShape",
        [batch],
        "norms0",
        value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.0]),
    )
    sum_squares = node(
        "ScatterElements", [norms0, term_doc, squares], "sum_squares", axis=0, reduction="add"
    )
    norms = node("Max", [node("Sqrt", [sum_squares], "norms_raw"), eps], "norms")
    norms_f32 = node("Cast", [norms], "norms_f32", to=TensorProto.FLOAT)
    value = node("Div", [weight, node("Gather", [norms_f32, term_doc], "term_norm")], "value")

    # Linear layer as a gather + segment sum (float64 accumulation): logits[d] = sum of
    # value * coef[id] over the document's terms, + intercept.
    rows = node("Gather", [coef, coef_index], "coef_rows")  # [m, k]
    contrib = node("Mul", [rows, node("Unsqueeze", [value, col_axis], "value_col")], "contrib")
    contrib_f64 = node("Cast", [contrib], "contrib_f64", to=TensorProto.DOUBLE)
    m_shape = node("Shape", [contrib], "contrib_shape")  # [m, k]
    scatter_index = node(
        "Expand", [node("Unsqueeze", [term_doc, col_axis], "term_doc_col"), m_shape], "doc_index"
    )
    logits_shape = node("Concat", [batch, k_shape], "logits_shape", axis=0)
    logits0 = node(
        "ConstantOfShape",
        [logits_shape],
        "logits0",
        value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.0]),
    )
    sums = node(
        "ScatterElements",
        [logits0, scatter_index, contrib_f64],
        "sums",
        axis=0,
        reduction="add",
    )
    sums_f32 = node("Cast", [sums], "sums_f32", to=TensorProto.FLOAT)
    if isinstance(model, DenseModel):
        pooled, safe_row = _pooled_word_vectors(
            model, node, const, raw_weight, term_id, term_doc, batch
        )
        dense = _hidden_layer(model, node, const, pooled)
        if model.has_max_branch:
            strongest = (
                _strongest_detectors(model, node, const, safe_row, term_doc, batch)
                if model.detectors is not None
                else _strongest_runs(model, node, const)
            )
            max_part = node(
                "MatMul", [strongest, const("max_output", model.weights["max_output"])], "max_part"
            )
            dense = node("Add", [dense, max_part], "dense_both")
        node("Add", [node("Add", [sums_f32, dense], "both"), intercept], "logits")
    elif isinstance(model, NeuralModel):
        summed = node("Add", [sums_f32, intercept], "bag_sum")
        hidden = node("Relu", [summed], "bag_hidden")
        output = const("output", model.weights["output"])
        scores = node("MatMul", [hidden, output], "bag_scores")
        node("Add", [scores, const("output_bias", model.weights["output_bias"])], "logits")
    else:
        node("Add", [sums_f32, intercept], "logits")
    inputs = [
        helper.make_tensor_value_info("ngram_ids", TensorProto.INT64, ["n_occurrences"]),
        helper.make_tensor_value_info("offsets", TensorProto.INT64, ["batch_plus_1"]),
    ]
    description = (
        "ngram_ids int64 [n]: vocabulary id of every n-gram occurrence, document "
        "after document; offsets int64 [batch+1]: document d owns "
        "ngram_ids[offsets[d]:offsets[d+1]]"
    )
    if isinstance(model, DenseModel) and model.window > 1:
        window = model.window
        inputs.append(
            helper.make_tensor_value_info("word_runs", TensorProto.INT64, ["batch", "runs", window])
        )
        description += (
            f"; word_runs int64 [batch, runs, {window}]: the embedding row of each word of each "
            f"run of {window} consecutive words, texts padded at both ends with row "
            f"{model.n_vectors} (see textdistill.export.word_runs)"
        )
        input_format = FORMAT_WORD_PIECES if model.pieces else FORMAT_WORD_RUNS
        return _finish(model, nodes, initializers, inputs, input_format, description)
    return _finish(model, nodes, initializers, inputs, FORMAT, description)


def _pooled_word_vectors(
    model: DenseModel,
    node: Any,
    const: Any,
    value: str,
    term_id: str,
    term_doc: str,
    batch: str,
) -> tuple[str, str]:
    """The dense student's pooled vector in the graph: the TF-IDF-weighted mean of the word
    vectors of each document's words (terms with an embedding row), as
    :func:`textdistill.runtime.dense.pool_rows` and :func:`~textdistill.runtime.dense.
    weighted_mean` compute it. Returns the names of the ``[batch, d]`` float32 tensor and of
    each term occurrence's embedding row (the zero row after the table for a term without
    one)."""
    from onnx import TensorProto, helper

    table = model.weights["embedding"]
    zero_row = np.vstack([table, np.zeros((1, table.shape[1]), np.float32)])
    rows = model.weights["embedding_rows"].astype(np.int64)
    row = node("Gather", [const("embedding_rows", rows), term_id], "embedding_row")  # [m]
    has_vector = node(
        "GreaterOrEqual", [row, const("zero_row_i64", np.array(0, np.int64))], "has_vector"
    )
    mask = node("Cast", [has_vector], "vector_mask", to=TensorProto.FLOAT)
    weight = node("Mul", [value, mask], "pool_weight")  # [m]
    totals0 = node(
        "ConstantOfShape",
        [batch],
        "pool_totals0",
        value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
    )
    totals = node(
        "ScatterElements", [totals0, term_doc, weight], "pool_totals", axis=0, reduction="add"
    )
    safe = node("Max", [totals, const("pool_eps", np.array(1e-12, np.float32))], "pool_safe")
    share = node("Div", [weight, node("Gather", [safe, term_doc], "term_total")], "pool_share")
    last = const("last_row_i64", np.array(zero_row.shape[0] - 1, np.int64))
    safe_row = node("Where", [has_vector, row, last], "safe_row")
    vectors = node("Gather", [const("embedding", zero_row), safe_row], "vectors")  # [m, d]
    axis = const("pool_axis_1", np.array([1], dtype=np.int64))
    scaled = node("Mul", [vectors, node("Unsqueeze", [share, axis], "share_col")], "scaled")
    index = node(
        "Expand",
        [node("Unsqueeze", [term_doc, axis], "pool_doc_col"), node("Shape", [scaled], "m_d")],
        "pool_index",
    )
    width = const("pool_width", np.array([table.shape[1]], dtype=np.int64))
    pooled0 = node(
        "ConstantOfShape",
        [node("Concat", [batch, width], "pooled_shape", axis=0)],
        "pooled0",
        value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
    )
    pooled = node("ScatterElements", [pooled0, index, scaled], "pooled", axis=0, reduction="add")
    return pooled, safe_row


def _strongest_detectors(
    model: DenseModel, node: Any, const: Any, safe_row: str, term_doc: str, batch: str
) -> str:
    """The max-pooled branch's ``[batch, m]`` input: per document, the column-wise maximum of
    its words' detector outputs (:func:`textdistill.runtime.dense.strongest`), 0 where none."""
    from onnx import TensorProto, helper

    assert model.detectors is not None
    detectors = const("detectors", model.detectors)  # its last row is the zero row
    outputs = node("Gather", [detectors, safe_row], "word_detectors")  # [m_terms, m]
    axis = const("max_axis_1", np.array([1], dtype=np.int64))
    index = node(
        "Expand",
        [node("Unsqueeze", [term_doc, axis], "max_doc_col"), node("Shape", [outputs], "m_m")],
        "max_index",
    )
    width = const("max_width", np.array([model.detectors.shape[1]], dtype=np.int64))
    zeros = node(
        "ConstantOfShape",
        [node("Concat", [batch, width], "strongest_shape", axis=0)],
        "strongest0",
        value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
    )
    return node("ScatterElements", [zeros, index, outputs], "strongest", axis=0, reduction="max")


def _strongest_runs(model: DenseModel, node: Any, const: Any) -> str:
    """The max-pooled branch's ``[batch, m]`` input when its detectors read runs of words
    (:func:`textdistill.runtime.dense.strongest_runs`): the run's word vectors side by side
    through ``max_hidden``, ReLU, and per text the maximum over the runs that hold a word."""
    from onnx import TensorProto

    w = model.weights
    pad = np.array(model.n_vectors, dtype=np.int64)
    table = np.vstack([w["embedding"], np.zeros((1, w["embedding"].shape[1]), np.float32)])
    vectors = node("Gather", [const("embedding", table), "word_runs"], "run_vectors")
    side_by_side = node(
        "Reshape", [vectors, const("run_shape", np.array([0, 0, -1], np.int64))], "run_inputs"
    )
    pre = node("MatMul", [side_by_side, const("max_hidden", w["max_hidden"])], "run_pre")
    biased = node("Add", [pre, const("max_hidden_bias", w["max_hidden_bias"])], "run_biased")
    detectors = node("Relu", [biased], "run_detectors")  # [batch, runs, m]
    is_word = node(
        "Not", [node("Equal", ["word_runs", const("pad_row", pad)], "run_pad")], "run_word"
    )
    has_word = node(
        "ReduceMax",
        [node("Cast", [is_word], "run_word_f", to=TensorProto.FLOAT)],
        "run_has_word",
        axes=[2],
        keepdims=1,
    )
    kept = node("Mul", [detectors, has_word], "run_kept")
    return node("ReduceMax", [kept], "strongest", axes=[1], keepdims=0)


def word_runs(words: SparseRows, window: int, pad: int) -> np.ndarray:
    """The ``word_runs`` input of a word-runs graph from each text's embedding rows in reading
    order (:func:`textdistill.runtime.dense.reading_order`): int64 ``[n, longest + window - 1,
    window]``, run ``i`` of a text holding its slots ``i - window + 1 .. i``, ``pad`` outside it.

    >>> words = SparseRows(np.ones(3, np.float32), np.array([4, 5, 6]), np.array([0, 2, 3]), 7)
    >>> word_runs(words, 2, 7).tolist()
    [[[7, 4], [4, 5], [5, 7]], [[7, 6], [6, 7], [7, 7]]]
    """
    lengths = np.diff(words.indptr)
    longest = int(lengths.max(initial=0))
    slot = np.arange(longest)[None, :]
    present = slot < lengths[:, None]
    where = np.where(present, words.indptr[:-1, None] + slot, 0)
    padded = np.full((words.n_rows, longest + 2 * (window - 1)), pad, dtype=np.int64)
    if len(words.indices):
        padded[:, window - 1 : window - 1 + longest] = np.where(present, words.indices[where], pad)
    n_runs = longest + window - 1
    return np.stack([padded[:, k : k + n_runs] for k in range(window)], axis=2)


def _finish(
    model: Model,
    nodes: list[Any],
    initializers: list[Any],
    inputs: list[Any],
    input_format: str,
    input_description: str,
) -> Any:
    """Add calibrated probabilities to a graph whose last node writes ``logits``, and wrap it
    as a checked, self-describing model (labels, vocabulary, featurizer spec in its metadata).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = len(model.labels)
    # Calibrated probabilities: softmax(logits / T) (multilabel: sigmoid), T fitted at training.
    initializers.append(
        numpy_helper.from_array(np.array(model.temperature, dtype=np.float32), "temperature")
    )
    nodes.append(helper.make_node("Div", ["logits", "temperature"], ["scaled_logits"]))
    if model.multilabel:
        nodes.append(helper.make_node("Sigmoid", ["scaled_logits"], ["probabilities"]))
    else:
        nodes.append(helper.make_node("Softmax", ["scaled_logits"], ["probabilities"], axis=-1))
    architecture = (
        model.architecture
        if isinstance(model, NeuralModel)
        else "dense"
        if isinstance(model, DenseModel)
        else "linear"
    )
    graph = helper.make_graph(
        nodes,
        f"textdistill_{architecture}_student",
        inputs=inputs,
        outputs=[
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", k]),
        ],
        initializer=initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _opset(model))],
        producer_name="textdistill",
        doc_string=(
            f"Text classifier ({architecture} student). Inputs are ids made by textdistill's "
            "featurizer (see metadata textdistill.inputs), not strings."
        ),
    )
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime >= 1.14
    from textdistill import __version__

    proto.producer_version = __version__
    helper.set_model_props(
        proto,
        {
            META_FORMAT: input_format,
            META_LABELS: json.dumps(model.labels, ensure_ascii=False),
            META_VOCABULARY: json.dumps(model.featurizer.vocabulary, ensure_ascii=False),
            META_FEATURIZER: json.dumps(
                {**model.featurizer.spec(), "n_features": model.featurizer.n_features},
                ensure_ascii=False,
            ),
            META_INPUTS: input_description,
            META_OUTPUTS: json.dumps(model._outputs_meta(), ensure_ascii=False),
            **(
                {META_EMBEDDING_ROWS: json.dumps(model.weights["embedding_rows"].tolist())}
                if input_format in WORD_RUN_FORMATS and isinstance(model, DenseModel)
                else {}
            ),
            **(
                {META_PIECES: json.dumps(model.pieces, ensure_ascii=False)}
                if input_format == FORMAT_WORD_PIECES and isinstance(model, DenseModel)
                else {}
            ),
            "textdistill.kind": "linear" if isinstance(model, LinearModel) else "neural",
            "textdistill.architecture": architecture,
        },
    )
    onnx.checker.check_model(proto)
    return proto


def _opset(model: Model) -> int:
    """The oldest opset that has every operator ``model``'s graph uses."""
    if isinstance(model, DenseModel) and model.detectors is not None:
        return MAX_POOLING_OPSET
    return OPSET


def _pair_model(model: LinearModel | DenseModel) -> Any:
    """A pair student over the sparse rows the runtime computes: the linear layer as a gather
    of weight rows and a segment sum in float64 (as numpy's); for a dense student also each
    side's pooled word vectors, read as ``[u, v, u * v, |u - v|]`` by its ReLU layer."""
    from onnx import TensorProto, helper

    graph = _Graph()
    node, const = graph.node, graph.const
    dense = isinstance(model, DenseModel)
    coef = model.weights["linear"] if isinstance(model, DenseModel) else model.coef
    intercept = model.weights["bias"] if isinstance(model, DenseModel) else model.intercept
    one = const("one_i64", np.array([1], dtype=np.int64))
    batch = node("Sub", [node("Shape", ["offsets"], "offsets_len"), one], "batch")
    k_shape = const("k_shape", np.array([coef.shape[1]], dtype=np.int64))
    contrib = node(
        "Mul",
        [
            node("Gather", [const("coef", coef.astype(np.float32)), "feature_ids"], "coef_rows"),
            node(
                "Unsqueeze",
                ["feature_values", const("axis_1", np.array([1], dtype=np.int64))],
                "values_col",
            ),
        ],
        "contrib",
    )  # [nnz, k]
    contrib_f64 = node("Cast", [contrib], "contrib_f64", to=TensorProto.DOUBLE)
    row_index = node(
        "Expand",
        [
            node(
                "Unsqueeze",
                [_rows_of_values(node, const, "feature", "offsets"), "axis_1"],
                "row_col",
            ),
            node("Shape", [contrib], "contrib_shape"),
        ],
        "row_index",
    )
    logits0 = node(
        "ConstantOfShape",
        [node("Concat", [batch, k_shape], "logits_shape", axis=0)],
        "logits0",
        value=helper.make_tensor("v", TensorProto.DOUBLE, [1], [0.0]),
    )
    sums = node(
        "ScatterElements", [logits0, row_index, contrib_f64], "sums", axis=0, reduction="add"
    )
    linear = node("Cast", [sums], "sums_f32", to=TensorProto.FLOAT)
    inputs = [
        helper.make_tensor_value_info("feature_ids", TensorProto.INT64, ["nnz"]),
        helper.make_tensor_value_info("feature_values", TensorProto.FLOAT, ["nnz"]),
        helper.make_tensor_value_info("offsets", TensorProto.INT64, ["batch_plus_1"]),
    ]
    description = (
        "the pair features of textdistill.runtime.pair_features as a CSR matrix: feature_ids "
        "int64 [nnz] and feature_values float32 [nnz] of row d at offsets[d]:offsets[d+1] "
        "(offsets int64 [batch+1])"
    )
    if isinstance(model, DenseModel):
        pooled = []
        for side in PAIR_SIDES:
            ids, values, offsets = (f"{side}_{name}" for name in ("ids", "values", "offsets"))
            doc = _rows_of_values(node, const, side, offsets)
            pooled.append(
                _pooled_word_vectors(model, _prefixed(node, side), const, values, ids, doc, batch)[
                    0
                ]
            )
            inputs += [
                helper.make_tensor_value_info(ids, TensorProto.INT64, [f"{side}_nnz"]),
                helper.make_tensor_value_info(values, TensorProto.FLOAT, [f"{side}_nnz"]),
                helper.make_tensor_value_info(offsets, TensorProto.INT64, ["batch_plus_1"]),
            ]
        u, v = pooled
        product = node("Mul", [u, v], "siamese_product")
        distance = node("Abs", [node("Sub", [u, v], "siamese_difference")], "siamese_distance")
        both = node("Concat", [u, v, product, distance], "siamese", axis=1)
        linear = node("Add", [linear, _hidden_layer(model, node, const, both)], "both")
        description += (
            "; each side's n-gram rows (NgramFeaturizer.transform of the sides) likewise: "
            "first_ids, first_values, first_offsets and second_ids, second_values, "
            "second_offsets"
        )
    node("Add", [linear, const("intercept", intercept.astype(np.float32))], "logits")
    proto = _finish(
        model,
        graph.nodes,
        graph.initializers,
        inputs,
        FORMAT_DENSE_PAIRS if dense else FORMAT_PAIRS,
        description,
    )
    helper.set_model_props(
        proto,
        {
            **{prop.key: prop.value for prop in proto.metadata_props},
            META_IDF: json.dumps([float(x) for x in model.featurizer.idf]),
        },
    )
    return proto


class _Graph:
    """The nodes and initializers of a graph being built: ``node`` adds an operator named
    after its output, ``const`` an initializer once per name (sub-graphs built for each side
    of a pair, or shared helpers, ask for the same constants)."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self._helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(self._numpy_helper.from_array(np.asarray(value), name))
        return name


def _prefixed(node: Any, prefix: str) -> Any:
    """``node`` naming its outputs ``PREFIX_name``: one sub-graph built once per side."""

    def prefixed(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        return str(node(op, inputs, f"{prefix}_{output}", **attrs))

    return prefixed


def _rows_of_values(node: Any, const: Any, prefix: str, offsets: str) -> str:
    """The row of every stored value of a CSR matrix (or the document of every n-gram
    occurrence), from its ``offsets``: +1 at each inner boundary ``offsets[1:-1]``, then a
    running sum. Boundaries lie in ``[0, n]`` (``n = offsets[-1]``), so the marks vector has
    ``n + 1`` slots; the last is dropped."""
    from onnx import TensorProto, helper

    zero = const("zero_i64", np.array([0], dtype=np.int64))
    one = const("one_i64", np.array([1], dtype=np.int64))
    minus_one = const("minus_one_i64", np.array([-1], dtype=np.int64))
    inner = node("Slice", [offsets, one, minus_one, zero], f"{prefix}_inner")
    nnz = node(
        "Slice",
        [
            offsets,
            minus_one,
            const("int64_max", np.array([np.iinfo(np.int64).max], dtype=np.int64)),
        ],
        f"{prefix}_nnz",
    )
    marks0 = node(
        "ConstantOfShape",
        [node("Add", [nnz, one], f"{prefix}_marks_len")],
        f"{prefix}_marks0",
        value=helper.make_tensor("v", TensorProto.INT64, [1], [0]),
    )
    ones = node("Expand", [one, node("Shape", [inner], f"{prefix}_inner_shape")], f"{prefix}_ones")
    marks = node(
        "ScatterElements", [marks0, inner, ones], f"{prefix}_marks", axis=0, reduction="add"
    )
    running = node("CumSum", [marks, zero], f"{prefix}_running")
    return node("Slice", [running, zero, nnz, zero], f"{prefix}_row_of_value")


def _hidden_layer(model: DenseModel, node: Any, const: Any, pooled: str) -> str:
    """The dense student's ReLU layer over its pooled input, then its output layer."""
    pre = node("MatMul", [pooled, const("hidden", model.weights["hidden"])], "pre")
    summed = node("Add", [pre, const("hidden_bias", model.weights["hidden_bias"])], "hidden_sum")
    hidden = node("Relu", [summed], "hidden_out")
    return node("MatMul", [hidden, const("output", model.weights["output"])], "dense")


def _bilstm_model(model: NeuralModel) -> Any:
    """The BiLSTM as ONNX: embedding gather, the standard bidirectional ``LSTM`` operator with
    ``sequence_lens`` (its ``Y_h`` holds each direction's state after the last real word, as
    the runtime's), then the ReLU layer and the logits."""
    from onnx import TensorProto, helper, numpy_helper

    w = model.weights
    units = w["lstm_hidden_forward"].shape[1]
    initializers: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def gates(matrix: np.ndarray) -> np.ndarray:  # torch's gate blocks in ONNX's order
        return np.concatenate([np.split(matrix, 4)[i] for i in _ONNX_GATES])

    directions = ("forward", "backward")
    const("lstm_W", np.stack([gates(w[f"lstm_input_{d}"]) for d in directions]))
    const("lstm_R", np.stack([gates(w[f"lstm_hidden_{d}"]) for d in directions]))
    # ONNX adds an input and a recurrent bias; the runtime keeps their sum in the first.
    biases = [gates(w[f"lstm_bias_{d}"]) for d in directions]
    const("lstm_B", np.stack([np.concatenate([b, np.zeros_like(b)]) for b in biases]))
    const("embedding", w["embedding"])
    const("hidden", w["hidden"])
    const("hidden_bias", w["hidden_bias"])
    const("output", w["output"])
    const("output_bias", w["output_bias"])
    const("state_shape", np.array([-1, 2 * units], dtype=np.int64))
    step = helper.make_node
    nodes = [
        step("Gather", ["embedding", "token_ids"], ["embedded"]),  # [batch, T, E]
        step("Transpose", ["embedded"], ["time_major"], perm=[1, 0, 2]),
        step("Cast", ["lengths"], ["lengths_i32"], to=TensorProto.INT32),
        step(
            "LSTM",
            ["time_major", "lstm_W", "lstm_R", "lstm_B", "lengths_i32"],
            ["", "last_state"],  # Y_h: [2, batch, H]
            direction="bidirectional",
            hidden_size=units,
        ),
        step("Transpose", ["last_state"], ["batch_major"], perm=[1, 0, 2]),
        step("Reshape", ["batch_major", "state_shape"], ["states"]),  # forward, then backward
        step("MatMul", ["states", "hidden"], ["hidden_scores"]),
        step("Add", ["hidden_scores", "hidden_bias"], ["hidden_sum"]),
        step("Relu", ["hidden_sum"], ["hidden_out"]),
        step("MatMul", ["hidden_out", "output"], ["output_scores"]),
        step("Add", ["output_scores", "output_bias"], ["logits"]),
    ]
    inputs = [
        helper.make_tensor_value_info("token_ids", TensorProto.INT64, ["batch", "steps"]),
        helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
    ]
    description = (
        "token_ids int64 [batch, T]: word ids padded on the right with 0 (1 = unknown word); "
        "lengths int64 [batch]: real words per row, at least 1"
    )
    return _finish(model, nodes, initializers, inputs, FORMAT_SEQUENCE, description)


class OnnxStudent(LabelOutputs):
    """Run an exported student with onnxruntime: tokenisation by the numpy runtime's
    :class:`NgramFeaturizer` or :class:`TokenSequencer` (rebuilt from the file's metadata),
    the rest in ONNX; labels from the logits as the runtime model would (thresholds included).

    Needs only the ``.onnx`` file (and ``onnxruntime``; ``onnx`` itself is not needed).
    """

    def __init__(self, path: str | Path, *, providers: Sequence[str] | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError(f"{ONNX_HINT} ({error})") from None
        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(
            str(self.path), providers=list(providers or ["CPUExecutionProvider"])
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        self.format = meta.get(META_FORMAT)
        known = (FORMAT, FORMAT_SEQUENCE, FORMAT_PAIRS, FORMAT_DENSE_PAIRS, *WORD_RUN_FORMATS)
        if self.format not in known:
            raise ValueError(
                f"{self.path}: not a textdistill ONNX export of a format in {known} (found "
                f"{self.format!r})"
            )
        labels = json.loads(meta[META_LABELS])
        # Exports made before META_OUTPUTS are single-label at temperature 1 in their labels.
        outputs = json.loads(meta.get(META_OUTPUTS, "{}"))
        self._set_outputs(labels, **self._outputs_from_manifest(outputs))
        spec = json.loads(meta[META_FEATURIZER])
        if spec.get("side", spec).get("token_pattern") not in TOKEN_PATTERNS.values():
            raise ValueError(
                f"{self.path}: exported with token pattern {spec.get('token_pattern')!r}, "
                f"this textdistill tokenises with {TOKEN_PATTERN!r}"
            )
        vocabulary = json.loads(meta[META_VOCABULARY])
        self.featurizer: NgramFeaturizer | TokenSequencer | PairFeaturizer
        if self.format in (FORMAT_PAIRS, FORMAT_DENSE_PAIRS):
            idf = np.array(json.loads(meta[META_IDF]), dtype=np.float32)
            self.featurizer = PairFeaturizer.from_spec(spec, vocabulary, idf)
        elif self.format == FORMAT_SEQUENCE:
            self.featurizer = TokenSequencer(vocabulary, max_length=spec["max_length"])
        else:  # only the ids are used here: the idf lives in the graph
            self.featurizer = NgramFeaturizer.from_spec(
                spec, vocabulary, np.zeros(len(vocabulary), dtype=np.float32)
            )
        self._embedding_rows: np.ndarray | None = None
        self._pieces: WordPieces | None = None
        if self.format in WORD_RUN_FORMATS:
            assert isinstance(self.featurizer, NgramFeaturizer)
            rows = np.array(json.loads(meta[META_EMBEDDING_ROWS]), np.int32)
            self._embedding_rows = rows
            n_word_rows = int(rows.max(initial=-1)) + 1
            pieces = json.loads(meta[META_PIECES]) if self.format == FORMAT_WORD_PIECES else []
            if pieces:  # their rows follow the words'
                self._pieces = WordPieces.of_model(self.featurizer, rows, pieces, n_word_rows)
            self._n_vectors = n_word_rows + len(pieces)  # also the padding row
            self._window = int(self.session.get_inputs()[2].shape[2])

    def run(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(logits, probabilities)``, float32 ``[n, k]`` each."""
        texts = _as_texts(texts)
        if isinstance(self.featurizer, PairFeaturizer):
            rows, *sides = self.featurizer.transform_with_sides(texts)
            feed = _csr_feed("feature", rows)
            if self.format == FORMAT_DENSE_PAIRS:
                for name, side in zip(PAIR_SIDES, sides, strict=True):
                    feed |= _csr_feed(name, side)
        elif isinstance(self.featurizer, TokenSequencer):
            ids, lengths = self.featurizer.encode(texts)
            feed = {"token_ids": ids, "lengths": lengths}
        else:
            ids, offsets = self.featurizer.ngram_ids(texts)
            feed = {"ngram_ids": ids, "offsets": offsets}
            if self._embedding_rows is not None:
                embedding_rows = self._embedding_rows
                words = reading_order(
                    texts, self.featurizer, embedding_rows, self._n_vectors, self._pieces
                )
                feed["word_runs"] = word_runs(words, self._window, self._n_vectors)
        logits, probabilities = self.session.run(list(OUTPUTS), feed)
        return logits, probabilities

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        """Raw logits, float32 ``[n, k]``."""
        return self.run(texts)[0]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.run(texts)[1]


def _csr_feed(name: str, rows: SparseRows) -> dict[str, np.ndarray]:
    """A CSR input of a pair graph: ``NAME_ids``, ``NAME_values`` and ``NAME_offsets`` (the
    pair features' are ``feature_ids``, ``feature_values`` and ``offsets``)."""
    return {
        f"{name}_ids": rows.indices.astype(np.int64),
        f"{name}_values": rows.data,
        "offsets" if name == "feature" else f"{name}_offsets": rows.indptr,
    }
