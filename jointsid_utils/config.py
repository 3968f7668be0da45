"""Named, frozen study profiles and validated overrides.

Every notebook starts with ``cfg = load_config(profile, overrides)``. A profile is a frozen
dataclass tree; an override is a dotted key (``"ids.codebook_size"``) whose value must match the
type of the default, so a typo or a wrong type fails with one sentence instead of silently running
the wrong experiment (the nanoGPT configurator habit).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from jointsid_utils.errors import StudyInputError
from jointsid_utils.typecheck import check_value


DATA_SOURCES = ("ml-100k", "movielens-csv", "catalogue")
REPEAT_CONSUMPTION = ("keep", "last")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the items and interactions come from and how they are cleaned and sliced (docs/DATA.md)."""

    # "ml-100k" (embedded, offline), "movielens-csv" (movies.csv + ratings.csv) or "catalogue" (any
    # items + interactions tables in the generic schema of docs/DATA.md)
    source: str = "ml-100k"
    path: str | None = None  # folder or zip for "movielens-csv" (ML-25M, ML-1M, ml-latest) and "catalogue"
    # A user's repeated interactions with one item (after exact duplicate rows are dropped): "keep" counts
    # each (implicit feedback, as listening twice); "last" keeps the latest only. MovieLens rates a movie
    # once per user, so either leaves it unchanged; "keep" loses nothing elsewhere.
    repeat_consumption: str = "keep"
    # Items without a title or text, and interaction rows missing a field (a truncated line), are dropped
    # and counted up to this share of their table; above it the load fails (0 = fail on the first).
    max_dropped_share: float = 0.05
    max_items: int | None = None  # keep the most-rated items only (smoke slices the catalogue)
    max_users: int | None = None  # keep a seeded sample of users (smoke)
    target_interactions: int | None = None  # paper: sample users until about this many interactions
    min_interactions: int = 3  # users below this cannot give train, validation and test items
    enrich: bool = True  # join ggplot2movies attributes and plot summaries into the item text (MovieLens sources)


def check_data_section(data: DataConfig) -> None:
    """Data settings that cannot give a usable catalogue fail before any file is read or notebook starts
    (the files' headers are checked next, by ``data.dataset.check_source``)."""
    if data.source not in DATA_SOURCES:
        raise StudyInputError(f"Unknown data.source {data.source!r}; choose one of: {', '.join(DATA_SOURCES)}.")
    if data.source != "ml-100k":
        if not data.path:
            wants = ("movies.csv and ratings.csv" if data.source == "movielens-csv"
                     else "items and interactions tables, docs/DATA.md")
            raise StudyInputError(f"data.source {data.source!r} needs data.path; pass -p data.path "
                                  f"/path/to/folder-or-zip (with {wants}).")
        if not Path(data.path).expanduser().exists():
            raise StudyInputError(f"data.path {Path(data.path).expanduser()} does not exist; point it at the "
                                  f"{'MovieLens' if data.source == 'movielens-csv' else 'catalogue'} folder or zip.")
    if data.repeat_consumption not in REPEAT_CONSUMPTION:
        raise StudyInputError(f"Unknown data.repeat_consumption {data.repeat_consumption!r}; choose one of: "
                              f"{', '.join(REPEAT_CONSUMPTION)}.")
    if not 0 <= data.max_dropped_share < 1:
        raise StudyInputError(f"data.max_dropped_share={data.max_dropped_share} is not a share in [0, 1); "
                              "use e.g. 0.05 (drop up to 5% of the items or interactions) or 0 to drop none.")
    if data.min_interactions < 3:
        raise StudyInputError(f"data.min_interactions={data.min_interactions} would keep users with fewer than 3 "
                              "interactions, who cannot give a train, a validation and a test item; use 3 or more.")
    if data.max_items is not None and data.max_items < 2:
        raise StudyInputError(f"data.max_items={data.max_items} leaves fewer than 2 items to tell apart; "
                              "use at least 2 (smoke uses 200) or None for the whole catalogue.")
    if data.max_users is not None and data.max_users < 1:
        raise StudyInputError(f"data.max_users={data.max_users} keeps no user; use at least 1 (smoke uses 150) "
                              "or None for every user.")


@dataclass(frozen=True, kw_only=True)
class QueryConfig:
    per_item: int = 20  # the paper generated 20 queries per item
    train_per_item: int = 9  # with validation_per_item, the paper's 10 test queries per item remain
    validation_per_item: int = 1  # test = per_item - train_per_item - validation_per_item
    backend: str = "template"  # "template" (seeded, offline) or "openai" (any OpenAI-compatible chat API)
    llm_base_url: str | None = None  # e.g. http://localhost:11434/v1 for Ollama
    llm_model: str | None = None  # e.g. gemini-2.0-flash, the paper's generator
    llm_api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never stored
    llm_max_retries: int = 4
    llm_timeout_s: float = 60.0


@dataclass(frozen=True, kw_only=True)
class EmbeddingConfig:
    base_encoder: str = "all-MiniLM-L6-v2"  # the paper: all-mpnet-base-v2 (selectable offline)
    encode_batch_size: int = 64  # texts per forward pass when encoding; speed only, vectors do not depend on it
    finetune_epochs: int = 1  # the paper: 5 (GPU); 1 fits a 2-core CPU, see docs/FEASIBILITY.md
    finetune_batch_size: int = 64  # the paper: 512
    finetune_lr: float = 2e-5  # the paper's value; 1e-4 overfits the query templates
    finetune_max_pairs: int | None = None  # subsample training pairs (smoke)
    # Token budget while fine-tuning (the base MiniLM allows 256): the metadata and the plot's first words, so
    # a rare long plot does not pad every batch (docs/DECISIONS.md, "Fine-tune token budget").
    finetune_max_seq_length: int = 48
    # Cap on the validation queries a fine-tune chooses its checkpoint on (None = all): a seeded subsample by the
    # study seed, nested with generator.val_queries' (data.split.validation_queries). 2000 keeps each pass cheap
    # at 62k items and Recall@30 within about +-1 point; default's 1,682 validation queries are all used.
    finetune_val_queries: int | None = 2000
    finetune_evals_per_epoch: int = 2  # validation + checkpoint passes per epoch; each encodes the catalogue
    finetune_min_eval_steps: int = 50  # at least this many steps between those passes (small smoke epochs)
    # CPU fine-tunes in bf16 autocast ("auto": where the CPU has native bf16; a CUDA GPU uses bf16 whenever it
    # supports it); faster at unchanged validation scores (docs/DECISIONS.md, "Fine-tune precision").
    finetune_precision: str = "fp32"
    multitask_max_item_pairs: int | None = None  # cap on (item_a, item_b) pairs; None = as many as query pairs
    enmf_dim: int = 64  # the paper: 256 on ML-25M; d=64 was better on ML-100K (docs/FEASIBILITY.md)
    enmf_epochs: int = 100  # the paper: 30
    enmf_batch_size: int = 512  # users per step (ENMF trains user-based against the whole catalogue)
    enmf_lr: float = 0.05  # with Adagrad, converges well within enmf_epochs on ML-100K
    enmf_optimizer: str = "adagrad"  # the paper: adam lr 1e-3 (slow to converge on ML-100K)
    # Weight of the missing pairs; the value with the best validation Recall@30 is kept. 1.0 (every pair
    # weighted alike, plain least squares) bounds the grid from above.
    enmf_c0_grid: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)
    enmf_dropout: float = 0.3  # on the user vectors: ENMF's only regulariser (no L2)
    history_k: int = 10  # items in a user's history for the dense rec check and the rec prompt
    svd_seed_offset: int = 0  # added to the seed of fused_svd's TruncatedSVD, to vary it alone
    # Item vectors you bring, each one more Table A construction: "NAME=PATH" to a .npy (rows in the study's item
    # order) or a parquet with item_id (docs/DATA.md, "Bring your own item vectors"); -p embeddings.extra NAME=PATH.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class IdConfig:
    levels: int = 2  # the paper: 2 levels (plus our dedup level)
    codebook_size: int = 64  # the paper: 256 for 62k items; ML-100K would leave most codes empty
    prefix_share_codebook_size: int | None = None  # None = codebook_size (the paper: 256 shared + 256 per task)
    rq_kmeans_backend: str = "kmeans"  # "kmeans" (per-level faiss.Kmeans) or "residual_quantizer" (faiss RQ, beam)
    rq_kmeans_niter: int = 25  # k-means iterations per level (faiss default)
    # The gradient-trained quantizers share one budget: 3000 minibatches of 256 are about 450 passes over
    # ML-100K's 1,682 items (12 over the paper's 62k); Adam at 1e-3 is the quantizers' own default.
    rq_vae_steps: int = 3000
    rq_vae_batch_size: int = 256
    rq_vae_lr: float = 1e-3
    rq_vae_optimizer: str = "adam"
    rq_vae_latent_dim: int = 32  # TIGER: 32
    rq_vae_log_every: int = 100  # steps between codebook-usage rows of the training history
    lfq_steps: int = 3000  # as rq_vae_steps
    lfq_normalize: str = "none"  # the input as the other quantizers see it
    lfq_entropy_loss_weight: float = 0.1  # library default
    dict_max_iter: int = 20  # passes over the data; bounds the fit at the paper's 62k items
    dict_alpha: float = 1.0  # sparsity penalty (sklearn default)


@dataclass(frozen=True, kw_only=True)
class JointIdConfig:
    """Notebook 07's joint ID constructions (``jointsid_utils.joint``). Kept out of ``IdConfig`` so that
    the cache keys of the existing schemes do not change; levels and codebook size come from ``ids``."""

    # Defaults: each construction's finalist on default's validation (docs/DECISIONS.md, "Joint constructions
    # tuned on validation"); not re-tuned for other catalogues.
    # shared_then_task: level 0 is k-means on "multitask", or on "multitask_cf" ([multitask; cf_weight x ENMF])
    shared_input: str = "multitask_cf"
    # shared_then_task: the search levels refine the "search" (MNRL) vectors or the "multitask" ones; rec: ENMF
    search_space: str = "search"
    # multitask_cf (and shared_input="multitask_cf"): weight of the unit-norm ENMF half beside the unit-norm
    # multitask half; 0 = multitask alone, 1 = equal energy (as fused_concat). Choose it on validation.
    cf_weight: float = 0.5
    # balanced_unique: codes per level; None = ids.codebook_size, grown to the smallest K with K**levels >= items
    unique_codebook_size: int | None = None
    # aligned_rq_vae: weight and temperature of the InfoNCE pull of the quantized multitask latent towards ENMF
    # (LETTER's collaborative regulariser); 0 = rq_vae_fixed on multitask. The reconstruction MSE of unit vectors
    # is about 1e-3, so weights from 1e-4 up let ENMF decide the codes.
    align_weight: float = 1e-5
    align_temperature: float = 0.1


# Notebook 04's configurations that are cheap and decisive enough to run on every diagnosed embedding.
DIAGNOSIS_CORE = ("paper_like", "standardise_input", "kmeans_init", "dead_code_2", "kmeans_init+dead_code",
                  "residual_only")


@dataclass(frozen=True, kw_only=True)
class DiagnosisConfig:
    """Notebook 04's RQ-VAE ablation grid; configuration names are keys of ``ids.rqvae_diagnosis.CONFIGS``.
    The defaults fit a 2-core CPU's time budget (docs/DECISIONS.md, "RQ-VAE diagnosis grid")."""

    embeddings: tuple[str, ...] = ("content", "multitask")  # item vectors diagnosed (built by notebook 02)
    steps: int = 500  # per ablation run; paper-like level 1 dies by the first logged step (the stage: rq_vae_steps)
    seeds: tuple[int, ...] = (0, 1, 2)  # tables show mean ± sd over these
    workers: int = 0  # processes for the grid, one torch thread each; 0 = one per core (workers.plan_workers)
    full_grid_embeddings: tuple[str, ...] = ("content",)  # run every configuration but the skipped ones
    # l2_input is the identity on unit-norm sentence vectors; the other two are extra variants for paper
    skipped_configs: tuple[str, ...] = ("l2_input", "ema_decay_0.99", "kmeans+dead+commit_0.25")
    core_configs: tuple[str, ...] = DIAGNOSIS_CORE  # what the other embeddings run


@dataclass(frozen=True, kw_only=True)
class GeneratorConfig:
    """Every setting of the generator stage (notebook 05); another value is another config
    (``dataclasses.replace`` or a ``generator.<field>`` override), and every field but ``decoding``,
    ``decode_batch_size`` and ``seeds`` is part of a job's key (``generator.job.job_key``)."""

    base_model: str | None = None  # None: a small T5 from scratch; paper: google/flan-t5-base
    d_model: int = 128
    d_ff: int = 512
    num_layers: int = 2
    num_heads: int = 4
    epochs: float = 8.0
    batch_size: int = 128
    lr: float = 2e-3  # the paper's value
    weight_decay: float = 0.01  # the paper's value
    history_k: int = 10
    rec_windows_per_user: int = 20
    # Recipe lever, 0 = off: each epoch trains on a fresh seeded draw of rec_windows_per_user windows among each
    # user's last rec_window_pool, not on the same last ones (consecutive windows share K - 1 of K history items).
    rec_window_pool: int = 0
    beam_size: int = 30
    top_k: int = 30
    # Training seeds; seed s also fits every scheme's quantizers (ids.schemes.ids_stem), so a seed replicates
    # the IDs and the model together. The embeddings they quantize are fit once, with the study seed.
    seeds: tuple[int, ...] = (0,)
    vocab_size: int = 4000  # word-piece vocabulary of the from-scratch tokenizer (plus task and ID tokens)
    tokenizer_kind: str = "wordpiece"  # or "word" (docs/FEASIBILITY.md's prototype)
    max_prompt_tokens: int = 64  # search prompts are ~10-20 tokens, rec prompts 2 + K * L
    warmup_steps: int = 100
    max_grad_norm: float = 1.0
    dropout: float = 0.1
    val_queries: int | None = 500  # cap on the validation queries of the checkpoint choice (None = all; study seed)
    search_eval_cases: int | None = 2000  # test queries decoded (None = all); about +-1.6 points at 1,000
    decoding: str = "beam"  # "beam" (ours) or "diverse" (the paper's: beam 60, 30 groups, penalty 0.25)
    decode_batch_size: int = 64
    # DSI-style indexing examples (Tay et al. 2022): each item's title and text -> its search ID. Not in the
    # paper, so 0 here; `default` uses 1, chosen on validation (bench/bench_generator_throughput.py).
    item_text_examples: int = 0
    # "mixed": one shuffled stream of both tasks (the paper); "per_task": each batch holds one task
    # (faster, slightly worse on both tasks: docs/DECISIONS.md, "Task batching").
    task_batching: str = "mixed"
    workers: int = 0  # schemes side by side, 1 thread each on a CPU; 0 = one per idle core, 1 on a GPU (runtime/workers.py)
    # Throughput options (bench/bench_generator_throughput.py, docs/PERFORMANCE.md), all off = the paper's setup:
    rec_item_positions: bool = False  # one encoder position per history item (its ID tokens' embeddings summed)
    id_output_only: bool = False  # the output layer scores only ID tokens + EOS, the only tokens decoded
    precision: str = "fp32"  # "fp32", "bf16" (autocast) or "auto" (bf16 where the GPU/CPU runs it natively)
    length_grouped: bool = False  # batches of similar prompt length (less padding in mixed-task batches)
    torch_compile: bool = False  # the training step through torch.compile (dynamic shapes); speed only
    # A warm start every scheme shares (generator.pretrain): the T5 pretrained once per training seed on text
    # that names no semantic ID, read from the train split only (query -> title, item text -> title, the last
    # titles of a history -> the next title); each scheme then adds its ID tokens and fine-tunes. Off until
    # the bench shows that it holds validation recall. The pretrain_* fields are in a job's key only when on.
    warm_start: bool = False
    pretrain_epochs: float = 4.0
    pretrain_history_k: int = 3  # titles in a history prompt (a title is ~5 tokens; max_prompt_tokens caps it)
    pretrain_max_title_tokens: int = 24  # a target title's tokens, EOS included
    pretrain_holdout: float = 0.02  # seeded share of the pretraining examples (train rows) it validates on
    id_init_noise: float = 0.1  # an ID token's initial embedding: its items' title mean + this x the embeddings' SD


@dataclass(frozen=True, kw_only=True)
class ScopeConfig:
    """Which optional parts of the study run. No cache key reads this section, so switching a part on adds
    its work and reuses everything else; ``./run_all.sh -p scope.joint_ids true`` is the run beyond the paper."""

    # Table B on content as well as multitask: 4 more ID sets in notebook 03 and 4 more schemes x seeds in 05.
    # Off saves less than 03 spends on them: notebook 04 builds content's rq_vae and rq_vae_fixed for its
    # stage diagnostics either way (docs/DECISIONS.md, "Training seeds and the opt-in parts").
    content_quantizers: bool = False
    # The joint constructions (``jointsid_utils.joint``) trained in 05 and tabled in 06: 3 schemes x seeds.
    # Notebook 07 builds and diagnoses their IDs either way.
    joint_ids: bool = False


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    """Notebook 06's tuned baselines (``evaluation.sasrec``, ``evaluation.bm25_tuning``): each grid is
    scored on validation only, the chosen setting on test. These defaults are the paper profile's grid; the
    ``default`` profile narrows the loss and depth and extends size and epochs (``SASREC_DEFAULT_GRID``)."""

    # SASRec (Kang & McAuley 2018): one training run per (loss, dim, blocks), scored on validation after each
    # count in sasrec_epochs (a constant learning rate, so epoch e of a longer run is a run of e epochs).
    sasrec_losses: tuple[str, ...] = ("ce", "bce")  # full softmax (Klenitskiy & Vasilev 2023) / the paper's
    sasrec_dims: tuple[int, ...] = (32, 64)
    sasrec_blocks: tuple[int, ...] = (1, 2)  # the paper: 2
    sasrec_epochs: tuple[int, ...] = (20, 40, 80)
    sasrec_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # training seeds of the chosen setting on test
    sasrec_heads: int = 1  # the paper: 1
    sasrec_max_len: int = 50  # the paper: 200 on ML-1M, whose users have longer histories than ML-100K's
    sasrec_dropout: float = 0.2  # the paper's MovieLens value
    # The paper: 1e-3 and 128. ML-100K's 943 users give an epoch of only 8 such steps; 3e-3 with batch 64
    # learns faster on validation (CE, dim 64, 2 blocks, 40 epochs; not part of the grid).
    sasrec_lr: float = 3e-3
    sasrec_batch_size: int = 64
    # BM25 (bm25s; its defaults are k1=1.5, b=0.75), chosen on the validation queries
    bm25_k1: tuple[float, ...] = (0.6, 0.9, 1.2, 1.5, 2.0)
    bm25_b: tuple[float, ...] = (0.3, 0.5, 0.75, 0.9)


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """Notebook 06's inference (``evaluation.statistics``, ``evaluation.verdicts``) and the Recall@k cut-off of
    every stage that scores. Of this section only ``k`` is in cache keys: the encoders and ENMF chosen on
    validation Recall@k, the dense check, the tuned baselines, the hits and the generators' validation scores
    name it. The other fields change tables and verdicts, never a trained model."""

    k: int = 30  # Recall@k, the paper's cut-off: the metric of every verdict; at most generator.top_k
    extra_k: tuple[int, ...] = (10,)  # Recall and NDCG also at these cut-offs, reported beside Recall@k only
    level: float = 0.95  # confidence level of every interval
    alpha: float = 0.05  # family-wise error rate of each Holm family
    power: float = 0.8  # power of the detectable difference
    decoding: str = "beam"  # the generators' lists the tables and verdicts read
    # F8: a joint construction counts as not below the single-task IDs above (1 - margin) x their recall
    noninferiority_margin: float = 0.1
    # F5: a construction beyond the paper is Pareto-better than multitask x RQ-KMeans when it is better on one
    # task and above (1 - margin) x multitask's recall on the other; no wider than F8's (docs/STUDY.md, F5)
    pareto_margin: float = 0.05

    def __post_init__(self) -> None:
        if self.k < 1:
            raise StudyInputError(f"evaluation.k={self.k} is not a list length; Recall@k needs k >= 1 (the paper's "
                                  "is 30).")
        if not 0 <= self.pareto_margin <= self.noninferiority_margin < 1:
            raise StudyInputError(f"evaluation.pareto_margin={self.pareto_margin} and noninferiority_margin="
                                  f"{self.noninferiority_margin} need 0 <= pareto_margin <= noninferiority_margin "
                                  "< 1; F5's margin may not be wider than F8's.")


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    name: str
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    queries: QueryConfig = field(default_factory=QueryConfig)
    embeddings: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    ids: IdConfig = field(default_factory=IdConfig)
    joint_ids: JointIdConfig = field(default_factory=JointIdConfig)  # notebook 07 only
    diagnosis: DiagnosisConfig = field(default_factory=DiagnosisConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # notebook 06 only
    baselines: BaselineConfig = field(default_factory=BaselineConfig)  # notebook 06's tuned baselines
    # The run's folder under runs/ (``./run_all.sh --name``); None: derived from the overrides (``folder``).
    # No cache key reads it: two names of one configuration share every stored artifact.
    run_name: str | None = None

    @property
    def folder(self) -> str:
        """This run's folder under ``runs/``: ``run_name`` when set; the profile's name for the plain profile;
        else the profile and what differs from it, e.g. ``default+ids.codebook_size=32`` (a hash when long).
        So a rerun with other settings or another catalogue never writes over another configuration's run."""
        if self.run_name:
            return self.run_name
        diffs = differences(PROFILES[self.name], self) if self.name in PROFILES else {}
        if not diffs:
            return self.name
        label = "+".join(f"{k}={_short(v)}" for k, v in sorted(diffs.items()))
        folder = re.sub(r"[^A-Za-z0-9._=+,-]", "_", f"{self.name}+{label}")
        return folder if len(folder) <= MAX_FOLDER else f"{self.name}+{stable_hash(diffs, 10)}"

    def section_hash(self, *sections: str) -> str:
        """A short hash of the named sections (plus the seed), keying a stage's cache."""
        payload = {s: as_dict(getattr(self, s)) for s in sections}
        payload["seed"] = self.seed
        return stable_hash(payload)


# SASRec's grid on `default`: cross-entropy with one block (each beat BCE and two blocks in every cell of the
# first grid), sizes and epochs past the validation plateau, so the best point is inside the grid
# (docs/DECISIONS.md, "SASRec baseline"; bench/bench_sasrec_grid.py).
SASREC_DEFAULT_GRID: dict[str, Any] = {"sasrec_losses": ("ce",), "sasrec_dims": (64, 128, 256), "sasrec_blocks": (1,),
                                       "sasrec_epochs": (40, 80, 100, 120, 140, 160)}

# The generator's throughput options adopted on the CPU profiles (GeneratorConfig; docs/DECISIONS.md, "FAST_CPU").
FAST_CPU: dict[str, Any] = {"rec_item_positions": True, "length_grouped": True, "id_output_only": True,
                            "precision": "auto", "dropout": 0.0}

PROFILES: dict[str, StudyConfig] = {
    "smoke": StudyConfig(
        name="smoke",
        data=DataConfig(max_items=200, max_users=150),
        embeddings=EmbeddingConfig(finetune_max_pairs=256, finetune_batch_size=32, enmf_epochs=20,
                                   multitask_max_item_pairs=256),
        ids=IdConfig(levels=2, codebook_size=8, rq_vae_steps=200, lfq_steps=200, dict_max_iter=5),
        # the core grid on one seed: notebook 04 in a smoke run's time
        diagnosis=DiagnosisConfig(steps=100, seeds=(0,), workers=1, full_grid_embeddings=()),
        generator=GeneratorConfig(d_model=64, d_ff=128, num_layers=1, num_heads=2, epochs=1.0,
                                  batch_size=64, rec_windows_per_user=3, search_eval_cases=300,
                                  workers=1, **FAST_CPU),  # spawning a worker costs more than a smoke job
        scope=ScopeConfig(joint_ids=True),  # every notebook path, the joint constructions' included
        baselines=BaselineConfig(sasrec_losses=("ce",), sasrec_dims=(16,), sasrec_blocks=(1,), sasrec_epochs=(2, 4),
                                 sasrec_seeds=(0, 1), sasrec_max_len=20, bm25_k1=(0.9, 1.5), bm25_b=(0.5, 0.75)),
    ),
    # default: choices made on validation (FAST_CPU, width 96, 10 rec windows, one copy of the item texts,
    # 16 fine-tune epochs by the declared length rule, automatic workers, the joint constructions) and five seeds,
    # each refitting the quantizers as well as the generator; the evidence per setting is in docs/DECISIONS.md.
    "default": StudyConfig(name="default", embeddings=EmbeddingConfig(finetune_precision="auto"),
                           joint_ids=JointIdConfig(unique_codebook_size=96),
                           generator=GeneratorConfig(d_model=96, d_ff=384, rec_windows_per_user=10, epochs=16.0,
                                                     seeds=(0, 1, 2, 3, 4), item_text_examples=1, **FAST_CPU),
                           scope=ScopeConfig(joint_ids=True), baselines=BaselineConfig(**SASREC_DEFAULT_GRID)),
    "paper": StudyConfig(
        name="paper",
        data=DataConfig(source="movielens-csv", target_interactions=1_200_000),
        embeddings=EmbeddingConfig(base_encoder="all-mpnet-base-v2", finetune_epochs=5,
                                   finetune_batch_size=512, enmf_dim=256, enmf_epochs=30,
                                   enmf_optimizer="adam", enmf_lr=1e-3),
        ids=IdConfig(levels=2, codebook_size=256, rq_vae_steps=20000, lfq_steps=20000),
        diagnosis=DiagnosisConfig(steps=3000, full_grid_embeddings=("content", "multitask"), skipped_configs=()),
        generator=GeneratorConfig(base_model="google/flan-t5-base", epochs=3.0, seeds=(0, 1, 2, 3, 4),
                                  precision="auto"),  # bf16 on GPUs that have it
        scope=ScopeConfig(joint_ids=True),
    ),
}


MAX_FOLDER = 96  # longer derived folder names become the profile plus a hash of the differences
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]{0,95}")


def differences(base: StudyConfig, cfg: StudyConfig) -> dict[str, Any]:
    """Dotted key -> value of every setting where ``cfg`` differs from ``base`` (the run name left out)."""
    out: dict[str, Any] = {}
    for key in valid_keys(base):
        if key == "run_name":
            continue
        section, _, leaf = key.partition(".")
        a, b = getattr(base, section), getattr(cfg, section)
        if leaf:
            a, b = getattr(a, leaf), getattr(b, leaf)
        if as_dict(a) != as_dict(b):
            out[key] = as_dict(b)
    return out


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(_short(v) for v in value)
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return Path(value).name or value  # a data path: its last part names the catalogue
    return str(value)


def load_config(profile: str = "default", overrides: Mapping[str, Any] | None = None) -> StudyConfig:
    """The named profile with dotted-key overrides applied, e.g. ``{"ids.codebook_size": 32}``."""
    if not isinstance(profile, str) or profile not in PROFILES:
        raise StudyInputError(f"Unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}.")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise StudyInputError(f"overrides must be a dict of dotted keys to values, e.g. {{'ids.codebook_size': 32}}, "
                              f"got {type(overrides).__name__}; pass {{}} for none.")
    cfg = PROFILES[profile]
    for key, value in dict(overrides or {}).items():
        cfg = _override(cfg, key, value)
    check_cutoff(cfg)
    if cfg.run_name is not None and not RUN_NAME.fullmatch(cfg.run_name):
        raise StudyInputError(f"Run name {cfg.run_name!r} is not a plain folder name; use letters, digits and "
                              "._=+,- (at most 96 characters, not starting with a dot), e.g. --name codebook32.")
    return cfg


def check_cutoff(cfg: StudyConfig) -> None:
    """Recall@k (``evaluation.k``) needs ranked lists of at least k items; the generator decodes
    ``generator.top_k``. Checked once every override is applied, as they may raise both together."""
    k, top_k = cfg.evaluation.k, cfg.generator.top_k
    if k > top_k:
        raise StudyInputError(f"evaluation.k={k} is above generator.top_k={top_k}: the generator's lists hold "
                              f"{top_k} items, too few to score Recall@{k}; lower evaluation.k or raise "
                              f"generator.top_k (and generator.beam_size) to at least {k}.")


def valid_keys(cfg: StudyConfig | None = None) -> list[str]:
    """Every dotted key an override may name."""
    cfg = cfg or PROFILES["default"]
    keys: list[str] = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            keys += [f"{f.name}.{g.name}" for g in fields(value)]
        elif f.name != "name":
            keys.append(f.name)
    return keys


def _override(cfg: StudyConfig, key: str, value: Any) -> StudyConfig:
    if key not in valid_keys(cfg):
        raise StudyInputError(f"Unknown parameter {key!r}; valid parameters are: {', '.join(valid_keys(cfg))}.")
    if "." not in key:
        return replace(cfg, **{key: _coerce(cfg, key, key, value)})
    section_name, leaf = key.split(".", 1)
    section = getattr(cfg, section_name)
    return replace(cfg, **{section_name: replace(section, **{leaf: _coerce(section, leaf, key, value)})})


def _coerce(obj: Any, leaf: str, key: str, value: Any) -> Any:
    hint = typing.get_type_hints(type(obj))[leaf]
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[:1] == (str,) and isinstance(value, str):
        value = (value,)  # one entry of a list of strings, as -p embeddings.extra NAME=PATH gives it
    return check_value(hint, value, f"Parameter {key!r}",
                       advice=f"pass e.g. -p {key} {_example(getattr(obj, leaf))}")


def _example(default: Any) -> str:
    return json.dumps(list(default) if isinstance(default, tuple) else default)


def as_dict(obj: Any) -> Any:
    """A JSON-ready copy of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(obj) if is_dataclass(obj) else obj))


def stable_hash(payload: Any, length: int = 12) -> str:
    """sha256 of canonical JSON: the same config always gives the same key."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def main(argv: list[str] | None = None) -> int:
    """``python -m jointsid_utils.config PROFILE [KEY VALUE ...]``: validate before running notebooks."""
    import sys

    import yaml

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or len(args) % 2 != 1:
        print("usage: python -m jointsid_utils.config PROFILE [KEY VALUE ...]", file=sys.stderr)
        return 2
    overrides = {k: yaml.safe_load(v) for k, v in zip(args[1::2], args[2::2])}
    try:
        cfg = load_config(args[0], overrides)
        check_data_section(cfg.data)
        from jointsid_utils.runtime.precision import resolve_precision  # imports torch: only here

        resolve_precision(cfg.generator.precision)
        resolve_precision(cfg.embeddings.finetune_precision, "embeddings.finetune_precision")
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(as_dict(cfg), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
