"""The Hugging Face Hub, without a network: push and hf:// loading against a fake Hub, and
the model card written into every artifact.

The fake stands where ``huggingface_hub`` is called (``HfApi`` and ``snapshot_download``)
and keeps repositories as folders, so what is pushed is what is later delivered: a
``local_dir`` snapshot as huggingface_hub writes it (real files, plus its own
``.cache/huggingface`` bookkeeping folder).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import textdistill
from conftest import build_toy_artifact
from textdistill.cli import main
from textdistill.hub import parse_repo
from textdistill.runtime import ArtifactError, LinearModel, NgramFeaturizer, load, read_manifest
from textdistill.runtime.model_card import CARD, render, write_card

DOCS = ["charged twice", "refund missing", "app crashes", "blank screen", "charged again"]


def _model() -> LinearModel:
    featurizer = NgramFeaturizer.fit(DOCS, max_n=2, min_df=1)
    rng = np.random.default_rng(0)
    return LinearModel(
        featurizer,
        rng.normal(size=(featurizer.n_features, 2)),
        np.array([0.1, -0.1]),
        ["billing", "technical"],
        metadata={"loss": "mse", "n_teacher_rows": 1500, "selection": {"alpha": 0.1}},
    )


class FakeHub:
    """Repositories as folders under ``root``; records every call."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def api(self, token: str | None = None) -> Any:
        hub = self

        class Api:
            def create_repo(self, **kwargs: Any) -> str:
                hub.calls.append(("create_repo", {**kwargs, "token": token}))
                return f"https://huggingface.co/{kwargs['repo_id']}"

            def upload_folder(self, **kwargs: Any) -> None:
                hub.calls.append(("upload_folder", kwargs))
                target = hub.root / kwargs["repo_id"] / (kwargs.get("revision") or "main")
                shutil.copytree(kwargs["folder_path"], target, dirs_exist_ok=True)

        return Api()

    def snapshot_download(self, **kwargs: Any) -> str:
        self.calls.append(("snapshot_download", kwargs))
        source = self.root / kwargs["repo_id"] / (kwargs.get("revision") or "main")
        if not source.is_dir():
            raise OSError(f"404: {kwargs['repo_id']} not found")
        target = Path(kwargs["local_dir"])
        shutil.copytree(source, target, dirs_exist_ok=True)
        bookkeeping = target / ".cache" / "huggingface" / "download"
        bookkeeping.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():
            (bookkeeping / f"{item.name}.metadata").write_text("commit\netag\n0\n")
        return str(target)


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    import huggingface_hub

    fake = FakeHub(tmp_path / "remote")
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setenv("TEXTDISTILL_CACHE", str(tmp_path / "cache"))
    return fake


def test_push_then_load_from_the_hub_gives_the_same_model(hub: FakeHub, tmp_path: Path) -> None:
    model = _model()
    url = model.push_to_hub("acme/tickets", private=True, token="t0ken")
    assert url == "https://huggingface.co/acme/tickets"
    create = dict(hub.calls)["create_repo"]
    assert create["private"] is True and create["token"] == "t0ken"
    pushed = hub.root / "acme" / "tickets" / "main"
    assert (pushed / "model.json").is_file() and (pushed / CARD).is_file()

    loaded = textdistill.load("hf://acme/tickets")
    np.testing.assert_array_equal(loaded.decision_function(DOCS), model.decision_function(DOCS))
    assert loaded.classes_.tolist() == ["billing", "technical"]
    download = dict(hub.calls)["snapshot_download"]
    assert download["repo_id"] == "acme/tickets" and download["revision"] is None
    assert Path(download["local_dir"]).is_relative_to(tmp_path / "cache")


def test_a_tampered_repository_is_refused(hub: FakeHub) -> None:
    _model().push_to_hub("acme/tickets")
    coef = hub.root / "acme" / "tickets" / "main" / "coef.npy"
    np.save(coef, np.zeros((3, 2), dtype=np.float32), allow_pickle=False)
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load("hf://acme/tickets")


def test_cli_push_predict_and_revision(
    hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _model().save(tmp_path / "student")
    assert main(["push", str(tmp_path / "student"), "acme/tickets@v2", "--message", "m"]) == 0
    assert "pushed" in capsys.readouterr().out
    upload = dict(hub.calls)["upload_folder"]
    assert upload["revision"] == "v2" and upload["commit_message"] == "m"
    assert main(["predict", "hf://acme/tickets@v2", "charged twice"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("label,p_billing,p_technical")
    assert main(["predict", "hf://acme/missing", "x"]) == 1
    assert "404" in capsys.readouterr().err


def test_the_pushed_card_of_a_run_states_its_test_metrics_and_names_the_repository(
    hub: FakeHub, tmp_path: Path, toy_sentiment: tuple[list[str], list[str]]
) -> None:
    from textdistill.data import TextDataset
    from textdistill.pipeline import RunConfig, StudentConfig, run_pipeline

    texts, labels = toy_sentiment  # a run without a teacher model: its logits are a rule
    every = texts + [t + " again" for t in texts]
    score = [1.0 if any(w in t for w in ("great", "good", "superb")) else -1.0 for t in every]
    with open(tmp_path / "logits.csv", "w", encoding="utf-8") as handle:
        handle.write("text,neg,pos\n")
        handle.writelines(f'"{t}",{-z},{z}\n' for t, z in zip(every, score, strict=True))
    config = RunConfig(
        out=tmp_path / "run",
        progress=False,
        test_size=0.25,
        teacher_logits=tmp_path / "logits.csv",
        student=StudentConfig(min_df=1),
    )
    labeled = TextDataset(texts=texts, labels=labels, source="toy")
    unlabeled = TextDataset(texts=every[len(texts) :], labels=None, source="toy-u")
    metrics = run_pipeline(labeled, unlabeled, None, config)
    student_row = f"| student | {metrics['systems']['student']['accuracy']:.4g} |"
    local_card = (tmp_path / "run" / "student" / CARD).read_text()

    assert main(["push", str(tmp_path / "run" / "student"), "acme/tickets@v2"]) == 0
    card = (hub.root / "acme" / "tickets" / "v2" / CARD).read_text()
    assert "## Evaluation on the held-out test set" in card and student_row in card
    assert 'textdistill.load("hf://acme/tickets@v2")' in card
    assert 'textdistill predict hf://acme/tickets@v2 "' in card and "OWNER/NAME" not in card
    assert (tmp_path / "run" / "student" / CARD).read_text() == local_card  # left as it was

    # In Python: the model loaded from the run is the student it scored, so the same numbers.
    model = textdistill.load(str(tmp_path / "run" / "student"))
    model.push_to_hub("acme/loaded")
    card = (hub.root / "acme" / "loaded" / "main" / CARD).read_text()
    assert student_row in card and 'textdistill.load("hf://acme/loaded")' in card
    # A model changed since, or a student the run did not score, gets no numbers of the run.
    model.temperature = 2.0
    model.push_to_hub("acme/changed")
    assert "Evaluation" not in (hub.root / "acme" / "changed" / "main" / CARD).read_text()
    _model().save(tmp_path / "run" / "student")
    assert main(["push", str(tmp_path / "run" / "student"), "acme/retrained"]) == 0
    assert "Evaluation" not in (hub.root / "acme" / "retrained" / "main" / CARD).read_text()


def test_cli_serves_a_model_from_the_hub(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``textdistill serve hf://...``: the repository is downloaded and its model served.
    uvicorn stands aside: the app it would run answers a test client instead of a socket
    (tests/test_serve.py serves over a real one)."""
    pytest.importorskip("fastapi")
    import uvicorn
    from fastapi.testclient import TestClient

    build_toy_artifact(tmp_path / "model")
    assert main(["push", str(tmp_path / "model"), "acme/reviews@v2"]) == 0
    answers: list[Any] = []

    def run(app: Any, **options: Any) -> None:
        with TestClient(app) as client:
            answers.append(client.get("/metadata").json())
            answers.append(client.post("/predict", json={"texts": ["a great film", "awful"]}))

    monkeypatch.setattr(uvicorn, "run", run)
    assert main(["serve", "hf://acme/reviews@v2", "--workers", "1"]) == 0
    metadata, response = answers
    download = dict(hub.calls)["snapshot_download"]
    assert download["repo_id"] == "acme/reviews" and download["revision"] == "v2"
    assert metadata["id"] == read_manifest(tmp_path / "model")["checksum"][:12]  # that model
    assert response.status_code == 200
    assert [p["label"] for p in response.json()["predictions"]] == ["pos", "neg"]


def test_push_refuses_an_artifact_that_does_not_load(hub: FakeHub, tmp_path: Path) -> None:
    _model().save(tmp_path / "student")
    manifest = json.loads((tmp_path / "student" / "model.json").read_text())
    manifest["labels"] = ["x"]
    (tmp_path / "student" / "model.json").write_text(json.dumps(manifest))
    assert main(["push", str(tmp_path / "student"), "acme/tickets"]) == 1
    assert not any(name == "upload_folder" for name, _ in hub.calls)


def test_repository_names_are_checked() -> None:
    assert parse_repo("acme/tickets") == ("acme/tickets", None)
    assert parse_repo("hf://acme/tickets@refs/pr/1") == ("acme/tickets", "refs/pr/1")
    for bad in ("tickets", "acme/tickets/extra", "hf://", "acme/../x y"):
        with pytest.raises(ValueError, match="OWNER/NAME"):
            parse_repo(bad)


def test_every_artifact_carries_a_model_card(tmp_path: Path) -> None:
    _model().save(tmp_path / "student")
    card = (tmp_path / "student" / CARD).read_text()
    assert card.startswith("---\nlibrary_name: textdistill\n")
    assert "2 labels: `billing`, `technical`" in card
    assert "one label per text" in card
    assert "- n teacher rows: 1,500" in card and "selection" not in card
    assert 'textdistill.load("hf://OWNER/NAME")' in card
    assert "## Intended use" in card
    assert "Evaluation" not in card  # no test numbers before a run has scored it
    # the card is not part of the model: editing it keeps the artifact loadable
    (tmp_path / "student" / CARD).write_text("edited")
    assert load(str(tmp_path / "student")).labels == ["billing", "technical"]


def test_the_card_of_a_run_states_test_metrics_data_teacher_and_machine(tmp_path: Path) -> None:
    _model().save(tmp_path / "student")
    metrics = {
        "systems": {
            "baseline": {"accuracy": 0.81, "macro_f1": 0.8, "docs_per_s": 250000.0},
            "teacher": {"accuracy": 0.93, "agreement_with_teacher": 1.0, "docs_per_s": 120.5},
            "student": {"accuracy": 0.9175, "agreement_with_teacher": 0.95, "size_bytes": 41234},
        },
        "data": {"labeled": {"rows": 400}, "unlabeled": {"rows": 1500}, "test": {"rows": 200}},
        "config": {
            "teacher_logits": None,
            "teacher": {"model": "all-MiniLM", "method": "fine-tune", "max_length": 512,
                        "epochs": 8},
        },
        "machine": {"cpu_model": "Intel(R) Xeon(R) Processor", "cpus_available": 2,
                    "cpu_flags": {"avx2": True, "amx_tile": False},
                    "load_average_at_start": [3.5, 2.0, 1.0]},
    }  # fmt: skip
    write_card(tmp_path / "student", metrics)
    card = (tmp_path / "student" / CARD).read_text()
    assert "## Evaluation on the held-out test set" in card
    assert "| student | 0.9175 | – | 0.95 | – | 41,234 |" in card
    assert "| teacher | 0.93 | – | 1 | 120.5 | – |" in card
    assert "Rows: labeled 400, unlabeled 1,500, test 200." in card
    assert "Teacher: `all-MiniLM` (fine-tune, 512 tokens, 8 epochs)." in card
    assert "Intel(R) Xeon(R) Processor, 2 CPUs available, flags avx2" in card
    assert "load average 3.5 at the start" in card
    assert render({"labels": ["a"], "task": "multilabel"}).count("multilabel") >= 1
