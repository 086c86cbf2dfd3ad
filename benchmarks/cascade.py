"""Calibration and cascade numbers on IMDB (the article's protocol) and SST-2.

IMDB: exactly the first row of seed_protocol.py (1,000 labeled, 5,000 unlabeled, 2,000 test,
seed 0), in the same run directory, so its teacher and logits are reused when that benchmark
ran first. SST-2: 1,000 labeled sentences from sst2_train.csv.gz, the other 5,920 as the
unlabeled set, tested on sst2_dev.csv.gz (872); teacher at 64 tokens.

    python benchmarks/cascade.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from results_file import write_results
from seed_protocol import protocol_splits, teacher_config
from textdistill.data import read_labeled
from textdistill.pipeline import RunConfig, run_pipeline


def _row(dataset: str, metrics: dict[str, Any]) -> dict[str, Any]:
    cascade, calibration = metrics["cascade"], metrics["calibration"]
    chosen, reach = cascade["operating_point"], cascade["reaches_teacher_accuracy"]
    measured = cascade["measured"]
    return {
        "dataset": dataset,
        "n_labeled": metrics["data"]["labeled"]["rows"],
        "n_unlabeled": metrics["data"]["unlabeled"]["rows"],
        "n_test": metrics["data"]["test"]["rows"],
        "n_calibration": calibration["n_calibration"],
        "teacher_accuracy": cascade["teacher_accuracy"],
        "student_accuracy": cascade["student_accuracy"],
        "teacher_docs_per_s": cascade["teacher_docs_per_s"],
        "student_docs_per_s": cascade["student_docs_per_s"],
        **{
            f"{model}_{key}": calibration[model][key]
            for model in ("teacher", "student")
            for key in ("temperature", "ece_before", "ece_after")
        },
        "deferral_to_reach_teacher": reach["fraction_deferred"],
        "accuracy_at_that_deferral": reach["accuracy"],
        # computed: 1 / (1/student + deferred/teacher) from the two rates above
        "computed_docs_per_s_at_that_deferral": reach["docs_per_s"],
        # measured: the cascade artifact timed on the test set there
        "measured_docs_per_s_at_that_deferral": measured["reaches_teacher_accuracy"]["docs_per_s"],
        "measured_speedup_over_teacher": measured["reaches_teacher_accuracy"]["docs_per_s"]
        / cascade["teacher_docs_per_s"],
        "chosen_threshold": cascade["threshold"],
        "chosen_deferral": chosen["fraction_deferred"],
        "chosen_accuracy": chosen["accuracy"],
        "computed_chosen_docs_per_s": chosen["docs_per_s"],
        "measured_chosen_docs_per_s": measured["operating_point"]["docs_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    rows = []
    labeled, test, unlabeled, _ = protocol_splits(args.data, 0, 1000, 2000, 5000)
    # The protocol's run (the "256-head" teacher), reused; SST-2 with the same recipe at 64 tokens.
    imdb_config = RunConfig(out=Path("runs/seed_protocol"), teacher=teacher_config("256-head"))
    imdb = run_pipeline(labeled, unlabeled, test, imdb_config)
    rows.append(_row("imdb", imdb))

    sst2 = read_labeled(args.data / "sst2_train.csv.gz")
    order = np.random.default_rng(0).permutation(len(sst2)).tolist()
    sst2_teacher = dataclasses.replace(teacher_config("256-head"), max_length=64)
    sst2_config = RunConfig(out=Path("runs/sst2"), teacher=sst2_teacher)
    metrics = run_pipeline(
        sst2.subset(order[:1000]),
        sst2.subset(order[1000:]).without_labels(),
        read_labeled(args.data / "sst2_dev.csv.gz"),
        sst2_config,
    )
    rows.append(_row("sst2", metrics))
    write_results("cascade", rows)
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
