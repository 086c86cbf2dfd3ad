"""Temperature scaling against isotonic regression, on the runs of cascade.py.

Both are fitted on the same 100 held-out labels (the teacher's validation split) and scored
by ECE on the test set. Run benchmarks/cascade.py first (it leaves runs/seed_protocol and
runs/sst2); the IMDB student there is the last one seed_protocol.py or cascade.py wrote.

    python benchmarks/calibration_methods.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from results_file import write_results
from seed_protocol import protocol_splits
from textdistill.calibration import expected_calibration_error, fit_temperature
from textdistill.data import TextDataset, read_labeled, stratified_split
from textdistill.logits_store import LogitsStore
from textdistill.runtime import load, softmax


def _rows(dataset: str, run_dir: Path, labeled: TextDataset, test: TextDataset) -> list[dict]:
    _, calibration = stratified_split(labeled, 0.1, seed=0)  # the pipeline's split
    classes = sorted(set(labeled.labels or []))
    info = json.loads((run_dir / "stages" / "teacher.json").read_text())["info"]
    store = LogitsStore(run_dir / "logits", fingerprint=info["fingerprint"], n_classes=len(classes))
    student = load(str(run_dir / "student"))
    y_cal = np.array([classes.index(label) for label in calibration.labels or []])
    y_test = np.array([classes.index(label) for label in test.labels or []])
    rows = []
    for model, cal_logits, test_logits in (
        (
            "student",
            student.decision_function(calibration.texts),
            student.decision_function(test.texts),
        ),
        ("teacher", store.get(calibration.texts), store.get(test.texts)),
    ):
        temperature = fit_temperature(cal_logits, y_cal)
        isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
            softmax(cal_logits)[:, 1], y_cal
        )
        p_pos = isotonic.predict(softmax(test_logits)[:, 1])
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "n_calibration": len(y_cal),
                "ece_uncalibrated": expected_calibration_error(softmax(test_logits), y_test),
                "ece_temperature": expected_calibration_error(
                    softmax(test_logits, temperature), y_test
                ),
                "ece_isotonic": expected_calibration_error(np.stack([1 - p_pos, p_pos], 1), y_test),
                "temperature": temperature,
            }
        )
        print(json.dumps(rows[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    labeled, test, _, _ = protocol_splits(args.data, 0, 1000, 2000, 5000)
    rows = _rows("imdb", Path("runs/seed_protocol"), labeled, test)
    sst2 = read_labeled(args.data / "sst2_train.csv.gz")
    order = np.random.default_rng(0).permutation(len(sst2)).tolist()
    rows += _rows(
        "sst2",
        Path("runs/sst2"),
        sst2.subset(order[:1000]),
        read_labeled(args.data / "sst2_dev.csv.gz"),
    )
    write_results("calibration_methods", rows)


if __name__ == "__main__":
    main()
