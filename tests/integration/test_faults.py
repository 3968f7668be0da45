"""Fault injection: each expensive stage is SIGKILLed mid-work in a subprocess, then rerun to completion.

Per stage the test asserts (a) nothing partial is visible at the final artifact path while killed (only
temp files and checkpoint dirs), (b) the rerun resumes (from the last complete checkpoint, or redoing only
the unfinished unit), (c) the result equals an uninterrupted run's, byte for byte. The stages run as
``python tests/integration/test_faults.py <stage>`` (the ``STAGES`` below), which print their result as a last
``RESULT {json}`` line; every run gets its own ``JOINTSID_RUNS_DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- driver (test side)

def run_stage(name: str, runs: Path, *args: Any, kill_when: Callable[[], bool] | None = None,
              timeout_s: float = 180) -> tuple[int, str, dict | None]:
    """Run stage ``name`` in a child process; SIGKILL it as soon as ``kill_when()`` holds (polled every 10 ms).

    Returns (returncode, log, result): -9 and result None when killed.
    """
    runs.mkdir(parents=True, exist_ok=True)
    log_path = runs.parent / f"{runs.name}-{name}-{time.monotonic_ns()}.log"
    env = {**os.environ, "JOINTSID_RUNS_DIR": str(runs), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "always"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), name, *map(str, args)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parents[1])
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            if kill_when is not None and kill_when():
                os.kill(proc.pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"stage {name} ran past {timeout_s} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.01)
        proc.wait()
    text = log_path.read_text()
    results = [line[len("RESULT "):] for line in text.splitlines() if line.startswith("RESULT ")]
    if kill_when is None:
        assert proc.returncode == 0 and results, f"stage {name} failed:\n{text[-3000:]}"
    return proc.returncode, text, json.loads(results[-1]) if results else None


def complete_steps(ckpt_dir: Path) -> list[int]:
    """Steps of the checkpoints the Trainer finished writing (``trainer_state.json`` is its last file)."""
    steps = []
    for state in ckpt_dir.glob("checkpoint-*/trainer_state.json"):
        try:
            json.loads(state.read_text())
        except ValueError:
            continue
        steps.append(int(state.parent.name.split("-")[1]))
    return sorted(steps)


def fake_partial_checkpoint(ckpt_dir: Path, step: int) -> Path:
    """A checkpoint as a kill during its write leaves it: weights cut short, no trainer_state.json."""
    partial = ckpt_dir / f"checkpoint-{step}"
    partial.mkdir(exist_ok=True)  # the kill may really have left this one half written
    (partial / "model.safetensors").write_bytes(b"\0" * 100)
    return partial


# ----------------------------------------------------------------------------- stages (child side)

def _count_training_steps() -> list[int]:
    """Count optimizer steps this process runs (a resumed run runs only the ones after its checkpoint)."""
    from transformers import Trainer

    calls: list[int] = []
    original = Trainer.training_step

    def counted(self, *args, **kwargs):
        calls.append(self.state.global_step)
        return original(self, *args, **kwargs)

    Trainer.training_step = counted
    return calls


def tiny_catalogue():
    """24 items in 4 genres, 12 users, 3 train + 1 validation + 2 test queries per item (as tests/unit/test_embeddings.py's
    ``tiny``)."""
    genres = ["Comedy", "Horror", "Western", "Sci-Fi"]
    items = pd.DataFrame({"item_id": np.arange(24), "title": [f"Movie {i}" for i in range(24)],
                          "genres": [[genres[i % 4]] for i in range(24)]})
    items["text"] = [f"Title: Movie {i}. Genres: {genres[i % 4]}." for i in range(24)]
    rows = []
    for u in range(12):
        group = [i for i in range(24) if i % 4 == u % 4]
        for t in range(5):
            rows.append({"user_id": u, "item_id": group[(u // 4 + t) % len(group)], "timestamp": 100 * u + t,
                         "rating": 4.0, "split": "train" if t < 3 else ("validation" if t == 3 else "test")})
    queries = pd.DataFrame([{"item_id": i, "query": f"{kind} {genres[i % 4].lower()} movie number {i}", "split": s}
                            for i in range(24) for kind, s in (("a", "train"), ("b", "train"), ("e", "train"),
                                                               ("f", "validation"), ("c", "test"), ("d", "test"))])
    return items, pd.DataFrame(rows), queries


def stage_finetune(*more_runs_dirs: str) -> dict:
    """The search MNRL fine-tune (the ``search`` embeddings stage) with a checkpoint every 3 of its 6 steps.

    Runs in ``$JOINTSID_RUNS_DIR``, then in each of ``more_runs_dirs`` (one process loads MiniLM once).
    """
    from jointsid_utils.config import load_config
    from jointsid_utils.embeddings.finetune import model_dir
    from jointsid_utils.embeddings.inputs import EmbeddingData
    from jointsid_utils.embeddings.registry import load_or_build

    steps = _count_training_steps()
    cfg = load_config("smoke", FINETUNE)
    runs = []
    for runs_dir in [os.environ["JOINTSID_RUNS_DIR"], *more_runs_dirs]:
        os.environ["JOINTSID_RUNS_DIR"] = runs_dir
        steps.clear()
        load_or_build("search", cfg, EmbeddingData(*tiny_catalogue()))
        path = model_dir(cfg, "search")
        info = json.loads((path / "jointsid_model.json").read_text())
        runs.append({"steps_run": list(steps), "resumed": info["resumed"],
                     "total_steps": json.loads((path / "training_log.json").read_text())["steps"]})
    return {"runs": runs}


# the profile wants >= 50 steps between checkpoints; the tiny fine-tune has 6 in all
FINETUNE = {"embeddings.finetune_max_pairs": 48, "embeddings.finetune_batch_size": 8, "embeddings.finetune_lr": 1e-4,
            "embeddings.finetune_min_eval_steps": 1, "embeddings.finetune_val_queries": 8}


def stage_quantizer(steps: str) -> dict:
    """Two schemes via ``prepare_ids``: a quick RQ-KMeans, then an RQ-VAE of ``steps`` steps."""
    from jointsid_utils.config import load_config
    from jointsid_utils.quantizers.base import Quantizer
    from jointsid_utils.ids.schemes import prepare_ids

    fits: list[str] = []
    original = Quantizer.fit

    def fit(self, X):
        fits.append(self.name)
        print(f"fitting {self.name}", flush=True)
        return original(self, X)

    Quantizer.fit = fit
    cfg = load_config("smoke", {"ids.rq_vae_steps": int(steps), "ids.rq_vae_batch_size": 64})
    prepare_ids(cfg, {"content": quantizer_input()}, schemes=[("content", "rq_kmeans"), ("content", "rq_vae")],
                progress=False)
    return {"fits": fits}


def quantizer_input() -> np.ndarray:
    X = np.random.default_rng(0).normal(size=(256, 16)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def stage_generator(epochs: str, tokenizer_dir: str | None = None) -> dict:
    """``generator.job.train_and_predict`` on tests/helpers/generator_fixtures.py's tiny T5 (a checkpoint per epoch).

    The from-scratch word-piece vocabulary differs between processes (the tokenizers trainer breaks ties
    at random), so a run compared bit for bit with another takes that one's tokenizer (``tokenizer_dir``).
    """
    import dataclasses

    from generator_fixtures import TINY, toy_data

    from jointsid_utils.generator import training
    from jointsid_utils.generator.job import train_and_predict

    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        training.make_tokenizer = lambda *args, **kwargs: AutoTokenizer.from_pretrained(tokenizer_dir)
    steps = _count_training_steps()
    items, inter, queries, codes = toy_data()
    cfg = dataclasses.replace(TINY, epochs=float(epochs))
    preds = train_and_predict("content", codes, items, inter, queries, cfg, 0, profile="smoke")
    return {"steps_run": steps, "resumed": preds.attrs["train_info"]["resumed"],
            "ranked": [[int(i) for i in r] for r in preds["ranked"]],
            "scores": [[float(s) for s in r] for r in preds["scores"]]}


def stage_llm(base_url: str) -> dict:
    """``queries.prepare_queries`` with the OpenAI-compatible backend, five items."""
    from queries_fixture import make_items
    from llm_server import llm_config as config

    from jointsid_utils.cache import run_dir
    from jointsid_utils.queries.stage import prepare_queries

    frame = prepare_queries(make_items().iloc[:5].reset_index(drop=True), config(base_url),
                            run_dir("default", "data"))
    return {"rows": len(frame)}


STAGES = {"finetune": stage_finetune, "quantizer": stage_quantizer, "generator": stage_generator, "llm": stage_llm}


# ----------------------------------------------------------------------------- tests

def test_finetune_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path):
    from jointsid_utils.config import load_config

    runs = tmp_path / "runs"
    folder = load_config("smoke", FINETUNE).folder
    models, stored = runs / folder / "models", runs / ".store" / "embeddings"
    rc, log, _ = run_stage("finetune", runs, kill_when=lambda: any(
        complete_steps(p) for p in stored.glob("*/scratch")))
    assert rc == -signal.SIGKILL, log[-3000:]
    # (a) nothing published, only the checkpoints in the stage's scratch (in the store: any run folder resumes)
    (ckpt_dir,) = list(stored.glob("*/scratch"))
    assert not list(stored.glob("*/out")) and not (models / "search").exists()
    done = complete_steps(ckpt_dir)[-1]
    assert 0 < done < 6
    fake_partial_checkpoint(ckpt_dir, 5)  # as if killed while writing the next checkpoint

    # the rerun, then an uninterrupted run in a fresh runs dir (same process, to load MiniLM once)
    _, log, result = run_stage("finetune", runs, tmp_path / "ref")
    res, ref = result["runs"]
    assert ref["resumed"] is False and ref["steps_run"] == list(range(6)) and ref["total_steps"] == 6
    # (b) resumed from the last complete checkpoint: only the steps after it ran
    assert res["resumed"] is True and "is incomplete" in log
    assert res["steps_run"] == list(range(done, 6))
    assert not list(stored.glob("*/scratch"))  # checkpoints removed once the model is published
    # (c) the same weights as the uninterrupted run, bit for bit
    same = (tmp_path / "ref" / folder / "models/search/model.safetensors").read_bytes()
    assert (models / "search" / "model.safetensors").read_bytes() == same


def test_quantizer_killed_mid_fit_rebuilds_only_the_unfinished_scheme(tmp_path):
    from jointsid_utils.cache import manifest_path
    from jointsid_utils.config import load_config

    steps = 300  # RQ-VAE has no mid-fit checkpoint; the fit takes a few seconds
    _, _, ref = run_stage("quantizer", tmp_path / "ref", steps)
    assert ref["fits"] == ["rq_kmeans", "rq_vae"]

    runs = tmp_path / "runs"
    folder = load_config("smoke", {"ids.rq_vae_steps": steps, "ids.rq_vae_batch_size": 64}).folder
    ids, stored = runs / folder / "ids", runs / ".store" / "ids"

    def fitting_rq_vae() -> bool:
        # the temp file opens before the quantizer is built (importing its library takes a moment on a slow
        # machine), so wait for the fit's own line as well
        logs = sorted(tmp_path.glob("runs-quantizer-*.log"))
        return (ids / "content__rq_kmeans.json").exists() and any(stored.glob("*/.out-*")) \
            and bool(logs) and "fitting rq_vae" in logs[-1].read_text()

    rc, log, _ = run_stage("quantizer", runs, steps, kill_when=fitting_rq_vae)
    assert rc == -signal.SIGKILL, log[-3000:]
    # (a) the first scheme is complete, the second only a temp file
    assert "fitting rq_vae" in log
    assert not any((ids / f"content__rq_vae{ext}").exists() for ext in (".npy", ".json", ".npy.manifest.json"))
    kmeans = ids / "content__rq_kmeans.npy"
    stamp = (kmeans.stat().st_mtime_ns, manifest_path(kmeans).read_text())

    _, _, res = run_stage("quantizer", runs, steps)
    # (b) only the killed scheme is fitted again; the finished one is reused untouched
    assert res["fits"] == ["rq_vae"]
    assert (kmeans.stat().st_mtime_ns, manifest_path(kmeans).read_text()) == stamp
    # (c) byte-identical codes, identical diagnostics but for wall times
    for scheme in ("content__rq_kmeans", "content__rq_vae"):
        assert (ids / f"{scheme}.npy").read_bytes() == (tmp_path / "ref" / folder / f"ids/{scheme}.npy").read_bytes()
    timing = {"fit_seconds", "encode_seconds"}
    got, want = (json.loads((d / "content__rq_vae.json").read_text()) for d in (ids, tmp_path / "ref" / folder / "ids"))
    assert {k: v for k, v in got.items() if k not in timing} == {k: v for k, v in want.items() if k not in timing}
    # the killed build's temporary folder was cleared by the next build, never read as the artifact
    assert not list(stored.glob("*/.out-*"))


def test_generator_killed_mid_training_resumes_from_its_last_checkpoint(tmp_path):
    epochs = 16  # 6 steps per epoch (the toy data's train queries and rec windows), a checkpoint per epoch
    _, _, ref = run_stage("generator", tmp_path / "ref", epochs)
    total = len(ref["steps_run"])
    assert ref["resumed"] is False and total == 6 * epochs

    runs = tmp_path / "runs"
    ref_dir = tmp_path / "ref/smoke/models/generator/content__seed0"  # a link to the generator stage's output
    (key,) = [p.name for p in (tmp_path / "ref/.store/generator").iterdir()]
    entry = runs / ".store/generator" / key  # the same stage key: the same entry in the killed run's store
    checkpoints = entry / "scratch" / "checkpoints"
    # the killed run trains with the reference's vocabulary, so the two are comparable bit for bit
    rc, log, _ = run_stage("generator", runs, epochs, ref_dir, kill_when=lambda: bool(complete_steps(checkpoints)))
    assert rc == -signal.SIGKILL, log[-3000:]
    # (a) nothing published (no model, tokenizer or train_info.json), only the checkpoints in the stage's
    # scratch, and no link in the run folder yet
    assert not (entry / "out").exists() and (entry / "scratch").is_dir()
    assert not (runs / "smoke/models/generator/content__seed0").exists()
    done = complete_steps(checkpoints)[-1]
    assert 0 < done < total
    fake_partial_checkpoint(checkpoints, done + total // epochs)  # killed writing the next epoch's

    _, log, res = run_stage("generator", runs, epochs)  # builds no tokenizer: it takes the checkpoint's
    # (b) resumed from the last complete checkpoint: only the later steps ran
    assert res["resumed"] is True and "is incomplete" in log
    assert res["steps_run"] == list(range(done, total))
    # (c) the same model and the same ranked lists (and scores) as the uninterrupted run
    assert res["ranked"] == ref["ranked"] and res["scores"] == ref["scores"]
    model = entry / "out" / "model"
    assert (model / "model.safetensors").read_bytes() == (ref_dir / "model.safetensors").read_bytes()
    assert (runs / "smoke/models/generator/content__seed0").resolve() == model.resolve()
    assert not (entry / "scratch").exists() and not list(entry.glob(".out-*"))  # published, scratch dropped


def test_llm_queries_killed_between_requests_ask_only_for_missing_items(tmp_path):
    from llm_server import FakeLLM, good_answer

    release = threading.Event()

    def reply(index: int, body: dict) -> tuple[int, str]:
        if index == 3:  # the killed run's 4th request: hold it until the client is dead
            release.wait(30)
        return 200, good_answer(body)

    server = FakeLLM(reply)
    try:
        runs = tmp_path / "runs"
        data = runs / "default" / "data"
        rc, log, _ = run_stage("llm", runs, server.base_url, kill_when=lambda: len(server.requests) == 4)
        release.set()
        assert rc == -signal.SIGKILL, log[-3000:]
        # (a) three answers cached, each a complete JSON file; no queries.parquet, only its temp file
        answers = sorted((data / "llm_cache").glob("item*.json"))
        assert len(answers) == 3 and all(len(json.loads(p.read_text())["queries"]) == 6 for p in answers)
        assert not (data / "queries.parquet").exists()
        # the store entry's unpublished build folder holds the temp file; nothing was published
        assert list((runs / ".store" / "data").glob("*/.out-*/.queries.parquet.*.tmp"))
        assert not list((runs / ".store" / "data").glob("*/out/queries.parquet"))
        asked = len(server.requests)

        _, _, res = run_stage("llm", runs, server.base_url)
        # (b) the rerun asks only for the two items without an answer
        again = [r["body"]["messages"][-1]["content"] for r in server.requests[asked:]]
        assert len(again) == 2 and res["rows"] == 5 * 6
        first = [r["body"]["messages"][-1]["content"] for r in server.requests[:3]]
        assert not set(again) & set(first)

        run_stage("llm", tmp_path / "ref", server.base_url)
    finally:
        release.set()
        server.close()
    # (c) the same query frame as an uninterrupted run
    pd.testing.assert_frame_equal(pd.read_parquet(data / "queries.parquet"),
                                  pd.read_parquet(tmp_path / "ref/default/data/queries.parquet"))


def test_truncated_ids_artifact_is_detected_by_its_hash_and_rebuilt(runs_dir):
    """A stage artifact cut short (a crash or a full disk) fails its recorded size and is recomputed."""
    from jointsid_utils.config import load_config
    from jointsid_utils.ids.schemes import prepare_ids

    cfg, X = load_config("smoke"), {"content": quantizer_input()}
    prepare_ids(cfg, X, schemes=[("content", "rq_kmeans")], progress=False)
    npy = runs_dir / "smoke" / "ids" / "content__rq_kmeans.npy"
    whole = npy.read_bytes()
    npy.write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match="does not match its recorded size"):
        codes, _ = prepare_ids(cfg, X, schemes=[("content", "rq_kmeans")], progress=False)[("content", "rq_kmeans")]
    assert npy.read_bytes() == whole and codes.shape == (256, 3)


if __name__ == "__main__":  # a stage in a child process: python tests/integration/test_faults.py <stage> [args]
    sys.path.insert(0, str(HERE.parent / "helpers"))
    result = STAGES[sys.argv[1]](*sys.argv[2:])
    print("RESULT " + json.dumps(result), flush=True)
