"""The study registry (``jointsid_utils.study``): one declaration of what is trained and compared, which the
IDs, the generator, the joint constructions and the verdicts read, and which names only things that exist."""

from __future__ import annotations

from jointsid_utils import study
from jointsid_utils.config import EvaluationConfig
from jointsid_utils.embeddings.registry import EMBEDDING_METHODS
from jointsid_utils.evaluation.statistics import label
from jointsid_utils.evaluation.verdicts import declared_comparisons
from jointsid_utils.generator import orchestration
from jointsid_utils.ids import schemes as sid
from jointsid_utils.joint import constructions as joint
from jointsid_utils.quantizers import QUANTIZERS


def test_every_named_scheme_has_a_builder():
    assert set(study.TABLE_A) <= set(EMBEDDING_METHODS) | set(study.TWO_ID_SCHEMES)
    assert set(study.TABLE_B_QUANTIZERS) <= set(QUANTIZERS) and set(study.TABLE_B_EMBEDDINGS) <= set(study.TABLE_A)
    assert set(study.JOINT) <= set(study.TABLE_A) and study.INCUMBENT[0] in study.JOINT
    assert all(s in study.table_a() for s in study.SINGLE_TASK.values())


def test_the_joint_constructions_are_registered_under_the_studys_names_and_quantizers():
    built = {name: c.quantizer for name, c in joint.JOINT_CONSTRUCTIONS.items()}
    assert built == study.JOINT_CONSTRUCTIONS
    assert {name for name, c in joint.JOINT_CONSTRUCTIONS.items() if c.two_block} <= set(study.TWO_ID_SCHEMES)


def test_ids_and_generator_read_the_registry():
    assert sid.SCHEMES == tuple(study.study_schemes(include_content_quantizers=True))
    assert orchestration.study_schemes is study.study_schemes
    assert len(study.study_schemes()) == 12  # docs/STUDY.md §5: Table A (8) and Table B on multitask (4 more)
    assert study.study_schemes(include_joint_ids=True)[-len(study.JOINT_SCHEMES):] == list(study.JOINT_SCHEMES)


def test_the_verdicts_compare_with_the_registrys_incumbent_and_single_task_references():
    present = {label(*s) for s in study.study_schemes(include_joint_ids=True)}
    ev = EvaluationConfig()
    rows = declared_comparisons(present, [label(*s) for s in study.JOINT_SCHEMES], margin=ev.noninferiority_margin,
                                pareto_margin=ev.pareto_margin)
    assert {r[3] for r in rows if r[0] == "F5"} == {label(*study.INCUMBENT)}
    assert {(r[1], r[3]) for r in rows if r[0] == "F8"} == {(t, label(*s)) for t, s in study.SINGLE_TASK.items()}
