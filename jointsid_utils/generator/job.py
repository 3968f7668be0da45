"""One generator job: a scheme's IDs and a training seed -> the ranked lists of every test case.

    preds = train_and_predict("multitask__rq_kmeans", codes, items, interactions, queries, cfg, seed)

The job key (``job_key``) names everything that decides the lists; it is the input of two stages
(``jointsid_utils.stages``): ``generator``, the trained model (``trained_model``; linked at
``runs/<folder>/models/generator/<scheme>__seed<k>``), and ``predictions``, its decoded lists (linked under
``models/generator/decoded/``). Every setting comes from ``GeneratorConfig``;
another value is another config (``dataclasses.replace`` or ``config.load_config`` overrides).
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from jointsid_utils.runtime import distributed
from jointsid_utils.store import array_sha256
from jointsid_utils.cache import run_dir, save_parquet, write_json
from jointsid_utils.config import EvaluationConfig, GeneratorConfig, StudyConfig, as_dict, stable_hash
from jointsid_utils.generator.base_model import base_model_sha256
from jointsid_utils.generator.examples import Examples, scheme_examples
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.model import load_saved
from jointsid_utils.generator.pretrain import WARM_START_SETTINGS, checkpoint_sha256, pretrain
from jointsid_utils.runtime.environment import configure_runtime
from jointsid_utils.runtime.precision import resolve_precision
from jointsid_utils.generator.predict import predict, predict_validation, search_settings
from jointsid_utils.generator.tokenization import TASKS, IdScheme, make_id_scheme
from jointsid_utils.generator.training import INFO_FILE, train_scheme
from jointsid_utils.runtime.reproducibility import seed_everything
from jointsid_utils.stages import Stage, Workspace, produce, published

# Settings left out of the job key. ``decoding`` and ``decode_batch_size`` change only how the saved model
# is decoded, so a job that differs in them reuses the model (notebook 06 decodes one model both ways;
# the marker's file name carries the decoding). ``seeds`` lists the jobs to run; each job's own seed is
# in the key. ``workers`` only sets how many jobs run side by side: every CPU job runs one torch thread
# whatever their number (``workers.plan_workers``), so it moves no number.
NOT_IN_KEY = ("decoding", "decode_batch_size", "seeds", "workers")
PREDICTIONS, DECODE_INFO = "predictions.parquet", "decode.json"  # the predictions stage's outputs
MODEL = "model"  # the generator stage's output folder
ITEM_COLUMNS = ("item_id", "title", "year", "text")  # what the tokenizer corpus and item-text examples read
INTERACTION_COLUMNS = ("user_id", "item_id", "split")
QUERY_COLUMNS = ("query_id", "item_id", "query", "split")


def data_hash(items: pd.DataFrame, interactions: pd.DataFrame, queries: pd.DataFrame) -> str:
    """A hash of the columns a job reads, row order included (it decides each user's sequence)."""
    parts = []
    for frame, columns in ((items, ITEM_COLUMNS), (interactions, INTERACTION_COLUMNS), (queries, QUERY_COLUMNS)):
        rows = pd.util.hash_pandas_object(frame[[c for c in columns if c in frame]], index=False).to_numpy()
        parts.append(array_sha256(rows))
    return stable_hash(parts)


def job_key(gcfg: GeneratorConfig, scheme: IdScheme, data: str, *, case_seed: int, seed: int,
            warm_start: str | None = None) -> str:
    """Everything that decides a job's ranked lists: the generator settings (less ``NOT_IN_KEY``), the
    scheme and its codes, the data (``data_hash``), the study seed (it picks the test queries), the
    training seed, with ``generator.warm_start`` the pretrained checkpoint's content
    (``pretrain.checkpoint_sha256``) and with ``base_model`` its files' (``base_model.base_model_sha256``),
    never a path. Without a warm start its settings stay out. The code is not here: the ``generator`` and
    ``predictions`` stages this key is the input of add their builders' fingerprints."""
    skipped = NOT_IN_KEY if gcfg.warm_start else NOT_IN_KEY + WARM_START_SETTINGS
    settings = {k: v for k, v in as_dict(gcfg).items() if k not in skipped}
    settings["precision"] = resolve_precision(gcfg.precision)  # "auto" trains differently on other hardware
    if gcfg.base_model is not None:  # its weights, not its name
        settings["base_model"] = base_model_sha256(gcfg.base_model)
    payload = {"generator": settings, "scheme": scheme.name, "data": data, "case_seed": int(case_seed),
               "codes": [array_sha256(scheme.codes[task]) for task in TASKS], "seed": int(seed)}
    if gcfg.warm_start:
        if warm_start is None:
            raise StudyInputError("A warm-started job's key needs its pretrained checkpoint's sha256; pass "
                                  "warm_start=pretrain.checkpoint_sha256(checkpoint).")
        payload["warm_start"] = warm_start
    return stable_hash(payload)


def train_and_predict(scheme_name: str, codes: np.ndarray | Sequence[np.ndarray], items: pd.DataFrame,
                      interactions: pd.DataFrame, queries: pd.DataFrame, cfg: StudyConfig | GeneratorConfig,
                      seed: int, *, profile: str | None = None, threads: int | None = None,
                      retrain: bool = False, validate: bool = False,
                      warm_start: Path | None = None) -> pd.DataFrame | None:
    """Train (or reload) the scheme's generator and return the ranked lists of every test case.

    ``cfg`` is the study config, or a bare ``GeneratorConfig`` (profile "default", study seed 0, the
    ``EvaluationConfig`` default's k). The model, tokenizer and ``train_info.json`` (examples, times, loss
    curve) are the ``generator`` stage of the job key (``trained_model``; linked at ``training.model_dir``'s
    path), the decoded lists the ``predictions`` stage keyed on that model and the decoding; published ones are
    reloaded instead of recomputed (``retrain=True`` rebuilds both; ``preds.attrs["reused"]`` says whether both
    were). Under ``torchrun`` every process trains its shard and only the main one decodes (the others get None).
    ``validate=True`` also decodes the validation cases and puts their Recall@k (``evaluation.k``) per
    task in ``preds.attrs["validation"]``: what a construction's settings are compared on, never the test.
    With ``generator.warm_start`` the job fine-tunes seed ``seed``'s pretrained checkpoint (``warm_start``,
    or ``pretrain.pretrain``'s, built now when missing).
    """
    gcfg = cfg.generator if isinstance(cfg, StudyConfig) else cfg
    profile = profile or (cfg.folder if isinstance(cfg, StudyConfig) else "default")
    case_seed = cfg.seed if isinstance(cfg, StudyConfig) else 0
    k = (cfg.evaluation if isinstance(cfg, StudyConfig) else EvaluationConfig()).k
    search_settings(gcfg)  # an unknown decoding fails before any training
    if threads is not None:
        configure_runtime(threads)
    scheme = make_id_scheme(scheme_name, codes)
    examples = drawn_once(seed, functools.partial(scheme_examples, scheme, items, interactions, queries, gcfg,
                                                  seed=seed, case_seed=case_seed))
    if warm_start is not None and not gcfg.warm_start:
        raise StudyInputError("train_and_predict got a warm_start checkpoint while generator.warm_start is off; "
                              "set generator.warm_start true or pass no checkpoint.")
    if gcfg.warm_start and warm_start is None:
        warm_start = pretrain(gcfg, (items, interactions, queries), seed, profile)
    key = job_key(gcfg, scheme, data_hash(items, interactions, queries), case_seed=case_seed, seed=seed,
                  warm_start=checkpoint_sha256(warm_start) if warm_start is not None else None)

    # The model is the ``generator`` stage of the job key, linked at the run folder's
    # models/generator/<scheme>__seed<k>; every torchrun process trains it together.
    model, info = trained_model(scheme, examples, items, queries, gcfg, seed, key, warm_start=warm_start,
                                retrain=retrain, link=run_dir(profile, "models", "generator") / f"{scheme_name}__seed{seed}")
    if not distributed.is_main():
        return None  # the main process decodes; the others go on to the next job's training
    # The lists are cut at generator.top_k, whatever evaluation.k: only the validation scores read k.
    decoded = Stage("predictions", functools.partial(_decode, model, scheme, examples, gcfg, seed, validate, k),
                    outputs=(PREDICTIONS, DECODE_INFO), inputs={"model": info["key"]}, seed=seed,
                    config={"decoding": gcfg.decoding, "decode_batch_size": gcfg.decode_batch_size,
                            "validate": validate, **({"k": k} if validate else {})})
    lists = run_dir(profile, "models", "generator", "decoded") / f"{scheme_name}__seed{seed}__{gcfg.decoding}"
    reused = info["reused"] and not retrain and published(decoded) is not None
    found = produce(decoded, {PREDICTIONS: lists.with_suffix(".parquet"), DECODE_INFO: lists.with_suffix(".json")},
                    rebuild=retrain)
    preds = pd.read_parquet(found / PREDICTIONS)
    extra = json.loads((found / DECODE_INFO).read_text())
    preds.attrs["train_info"] = {k: v for k, v in info.items() if k != "log_history"}
    preds.attrs["decode_seconds"] = extra.get("decode_seconds")
    preds.attrs["reused"] = reused  # both stages were published before this call: nothing trained or decoded
    if validate:
        preds.attrs["validation"] = extra["validation"]
    return preds


def drawn_once(seed: int, draw: Callable[[], Examples]) -> Callable[[], Examples]:
    """The job's examples as a builder asks for them: drawn on the first call, right after seeding with the
    job's seed (so training starts from the random state it always has), and never for a published job."""

    @functools.cache
    def examples() -> Examples:
        seed_everything(seed)
        return draw()

    return examples


def model_stage(scheme: IdScheme, examples: Callable[[], Examples], items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig,
                seed: int, key: str, *, warm_start: Path | None = None, retrain: bool = False) -> Stage:
    """The ``generator`` stage of job ``key``: one output folder, the saved model, tokenizer and
    ``train_info.json``; its Trainer checkpoints live in the entry's scratch, so a killed job resumes."""
    return Stage("generator", functools.partial(_train_model, scheme, examples, items, queries, gcfg, seed,
                                                warm_start, retrain),
                 outputs=(MODEL,), inputs={"job": key}, seed=int(seed))


def trained_model(scheme: IdScheme, examples: Callable[[], Examples], items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig,
                  seed: int, key: str, *, warm_start: Path | None = None, retrain: bool = False,
                  link: Path | None = None) -> tuple[Path, dict]:
    """(the saved model's folder, its ``train_info`` plus ``reused``: whether it was published already): the
    ``generator`` stage, trained now when it is not (``retrain=True``: trained again). ``examples`` gives the
    job's examples when a build needs them (``drawn_once``). ``link``: where a run folder shows it (and
    lists it)."""
    stage = model_stage(scheme, examples, items, queries, gcfg, seed, key, warm_start=warm_start, retrain=retrain)
    reused = not retrain and published(stage) is not None
    out = produce(stage, {MODEL: link} if link is not None else None, rebuild=retrain, together=True) / MODEL
    info = json.loads((out / INFO_FILE).read_text()) if distributed.is_main() else {}
    return out, {**info, "reused": reused}


def _train_model(scheme: IdScheme, examples: Callable[[], Examples], items: pd.DataFrame, queries: pd.DataFrame, gcfg: GeneratorConfig,
                 seed: int, warm_start: Path | None, retrain: bool, ws: Workspace) -> None:
    """The ``generator`` stage's builder (every torchrun process runs it; the main one saves). It draws from
    the random state seeded before drawing the examples (``drawn_once``), as training always has."""
    train_scheme(scheme, examples(), items, queries, gcfg, ws.out / MODEL, seed, key=ws.key, work=ws.scratch,
                 retrain=retrain, warm_start=warm_start)


def _decode(model_entry: Path, scheme: IdScheme, job_examples: Callable[[], Examples], gcfg: GeneratorConfig,
            seed: int, validate: bool, k: int, ws: Workspace) -> None:
    """The ``predictions`` stage: the test lists of the saved model (and its validation Recall@``k`` when asked).

    Decoding reads the saved model, so a first run and a rerun give the same lists: after
    load_best_model_at_end the trainer's in-memory model scored up to 0.04 apart from the saved best
    checkpoint on an H200, 26 of 64 lists differing."""
    tokenizer, model = load_saved(model_entry)
    examples = job_examples()
    started = time.time()
    preds = predict(model, tokenizer, scheme, examples, gcfg)
    preds["seed"] = seed
    extra: dict = {"decode_seconds": round(time.time() - started, 1)}
    if validate:
        extra["validation"] = validation_recall(predict_validation(model, tokenizer, scheme, examples, gcfg), k=k)
    save_parquet(ws.out / PREDICTIONS, preds.reset_index(drop=True))
    write_json(ws.out / DECODE_INFO, extra)


def validation_recall(preds: pd.DataFrame, *, k: int) -> dict[str, dict[str, float]]:
    """Recall@k per task of validation lists (key ``recall_at_<k>``), with its case-bootstrap interval and
    number of cases."""
    from jointsid_utils.metrics import bootstrap_ci, per_case_recall, recall_column

    out = {}
    for task, frame in preds.groupby("task", sort=True):
        hits = per_case_recall(frame.reset_index(drop=True), k=k)
        low, high = bootstrap_ci(hits)
        out[str(task)] = {recall_column(k): round(float(hits.mean()), 4), "ci_low": round(low, 4),
                          "ci_high": round(high, 4), "n_cases": int(len(hits))}
    return out
