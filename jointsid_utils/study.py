"""What the study trains and compares (docs/STUDY.md §5): the one list that IDs, generator, evaluation and
verdicts read.

    TABLE_A                      # how the IDs are built, each with RQ-KMeans (the paper's Table 2)
    table_a(extra)               # ... and the item vectors a user brings (embeddings.extra), after them
    table_b("multitask")         # the quantizers on one embedding (the paper's Table 3)
    JOINT_CONSTRUCTIONS          # the constructions beyond the paper (notebook 07), name -> quantizer
    INCUMBENT, SINGLE_TASK       # what they must beat, and the single-task references of F1 and F8

A new scheme is one name here; its builder goes where its kind lives (``ids/`` for Table A and B,
``joint/`` for a construction, registered under the same name).
"""

from __future__ import annotations

from typing import Sequence

Scheme = tuple[str, str]  # (embedding, quantizer), e.g. ("multitask", "rq_kmeans")

BASE_QUANTIZER = "rq_kmeans"  # Table A's quantizer, the incumbent's and every single-task reference's
# Table A: the embedding an ID is built from (``separate`` and ``prefix_share``: two ID sets, search and rec).
TABLE_A = ("content", "search", "rec", "separate", "prefix_share", "fused_concat", "fused_svd", "multitask")
# The rows of Table A that serve both tasks from one ID set or one ID pair (F2's comparisons).
JOINT = ("separate", "prefix_share", "fused_concat", "fused_svd", "multitask")
# Table B: the quantizers. ``rq_vae`` is the paper-like configuration, ``rq_vae_fixed`` adds notebook 04's
# remedies (F4); the others are the paper's.
TABLE_B_QUANTIZERS = ("rq_kmeans", "rq_vae", "rq_vae_fixed", "residual_lfq", "dict_learning")
TABLE_B_EMBEDDINGS = ("multitask", "content")  # content's only under scope.content_quantizers
# The joint constructions beyond the paper (``jointsid_utils.joint``): name -> quantizer.
JOINT_CONSTRUCTIONS = {"shared_then_task": BASE_QUANTIZER, "balanced_unique": BASE_QUANTIZER,
                       "multitask_cf": BASE_QUANTIZER, "aligned_rq_vae": "aligned_rq_vae"}
# Schemes whose items carry a search ID and a rec ID (the generator tokenises them apart).
TWO_ID_SCHEMES = ("separate", "prefix_share", "shared_then_task")

INCUMBENT: Scheme = ("multitask", BASE_QUANTIZER)  # the paper's best joint IDs: what the constructions must beat
SINGLE_TASK: dict[str, Scheme] = {"search": ("search", BASE_QUANTIZER), "rec": ("rec", BASE_QUANTIZER)}
JOINT_SCHEMES: tuple[Scheme, ...] = tuple(JOINT_CONSTRUCTIONS.items())


def table_a(extra: Sequence[str] = ()) -> list[Scheme]:
    """Table A's rows: the paper's constructions, then each user-supplied embedding (``embeddings.extra``)."""
    return [(e, BASE_QUANTIZER) for e in (*TABLE_A, *extra)]


def table_b(embedding: str = "multitask") -> list[Scheme]:
    return [(embedding, q) for q in TABLE_B_QUANTIZERS]


def study_schemes(include_content_quantizers: bool = False, include_joint_ids: bool = False,
                  extra: Sequence[str] = ()) -> list[Scheme]:
    """Table A (with ``extra`` embeddings' rows) and Table B on multitask (12 schemes without extras); content's
    Table B and the joint constructions on request."""
    out = table_a(extra) + table_b("multitask")
    if include_content_quantizers:
        out += table_b("content")
    if include_joint_ids:
        out += list(JOINT_SCHEMES)
    return list(dict.fromkeys(out))
