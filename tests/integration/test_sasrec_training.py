"""SASRec trained on toy sequences: it learns, is seeded, chooses on validation, fits no validation target."""


import numpy as np
import pandas as pd
import pytest
import torch

from jointsid_utils.embeddings.inputs import histories
from jointsid_utils.embeddings.retrieval import recall_at_k
from jointsid_utils.evaluation.sasrec import (SasrecSetting, recommend, sasrec_baseline, sasrec_validation,
                                              train_sasrec)

from sasrec_fixtures import N_ITEMS, TINY


def successor_interactions(n_users: int = 48, length: int = 14, seed: int = 0) -> pd.DataFrame:
    """Users who always go i -> i+1 (mod N_ITEMS) from a random start; last = test, second-to-last = validation."""
    gen = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        start = int(gen.integers(N_ITEMS))
        for t in range(length):
            split = "test" if t == length - 1 else "validation" if t == length - 2 else "train"
            rows.append((user, (start + t) % N_ITEMS, t, 4.0, split))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "split"])


def rec_cases(interactions: pd.DataFrame) -> pd.DataFrame:
    hist = histories(interactions, ("train", "validation"))
    test = interactions[interactions["split"] == "test"].sort_values("user_id")
    return pd.DataFrame({"case_id": [f"u{u}" for u in test["user_id"]], "user_id": test["user_id"].to_numpy(),
                         "target": test["item_id"].to_numpy(), "history": [hist[int(u)] for u in test["user_id"]]})


# The paper's sampler never draws a user's own items as negatives, so BCE learns to rank the next item above
# unseen items only: it is checked with the history removed, and needs more epochs than full cross-entropy.
@pytest.mark.parametrize("loss, epochs, exclude", [("ce", 60, False), ("bce", 150, True)])
def test_learns_a_predictable_sequence(loss, epochs, exclude):
    inter = successor_interactions()
    train = histories(inter, ("train",))
    val = inter[inter["split"] == "validation"].sort_values("user_id")["item_id"].to_numpy()
    model = train_sasrec(list(train.values()), N_ITEMS, SasrecSetting(16, 1, epochs, loss), TINY, seed=0)
    top1 = recommend(model, [train[u] for u in sorted(train)], k=1, exclude=exclude)
    assert recall_at_k(top1, val) > 0.9  # the next item, ranked first, for nearly every user


def test_training_is_deterministic_with_a_seed():
    seqs = list(histories(successor_interactions(), ("train",)).values())
    setting = SasrecSetting(8, 1, 2, "bce")
    a, b, c = (train_sasrec(seqs, N_ITEMS, setting, TINY, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


def test_grid_chooses_on_validation_only():
    inter = successor_interactions()
    table, chosen = sasrec_validation(inter, N_ITEMS, TINY, seed=0, k=30)
    assert len(table) == 2 * 2 * 2 and table["chosen"].sum() == 1
    assert table.loc[table["chosen"], "recall_at_30"].iloc[0] == table["recall_at_30"].max()
    poisoned = inter.copy()
    test = poisoned["split"] == "test"
    poisoned.loc[test, "item_id"] = (poisoned.loc[test, "item_id"] + 17) % N_ITEMS
    poisoned.loc[test, "timestamp"] = -1  # test rows moved first in time: read anywhere, they would show
    table2, chosen2 = sasrec_validation(poisoned, N_ITEMS, TINY, seed=0, k=30)
    assert chosen2 == chosen
    pd.testing.assert_frame_equal(table, table2)


def test_rec_predictions_have_both_protocols_and_every_seed():
    inter = successor_interactions()
    cases = rec_cases(inter)
    frame = sasrec_baseline(cases, inter, N_ITEMS, SasrecSetting(8, 1, 2, "ce"), TINY, k=10)  # < unseen items
    assert set(frame["protocol"]) == {"all", "exclude_history"} and set(frame["seed"]) == {0, 1}
    assert len(frame) == len(cases) * 2 * 2 and set(frame["decoding"]) == {"sasrec"}
    assert {"case_id", "task", "target", "ranked", "protocol", "decoding", "seed"} <= set(frame.columns)
    excl = frame[frame["protocol"] == "exclude_history"].merge(cases[["case_id", "history"]], on="case_id")
    assert all(not set(r) & set(h.tolist()) for r, h in zip(excl["ranked"], excl["history"]))
    assert frame["ranked"].map(len).eq(10).all()


def test_final_fit_never_learns_a_validation_target():
    """The generator never trains on a validation target, so neither does SASRec's test model: changing every
    validation item (the cases' histories held fixed) leaves its test lists as they were."""
    inter = successor_interactions()
    cases = rec_cases(inter)
    setting = SasrecSetting(8, 1, 3, "ce")
    moved = inter.copy()
    val = moved["split"] == "validation"
    moved.loc[val, "item_id"] = (moved.loc[val, "item_id"] + 11) % N_ITEMS
    a, b = (sasrec_baseline(cases, frame, N_ITEMS, setting, TINY, k=10) for frame in (inter, moved))
    pd.testing.assert_frame_equal(a, b)
    both = inter.assign(split=inter["split"].replace({"validation": "train"}))  # the old final fit's data
    assert not sasrec_baseline(cases, both, N_ITEMS, setting, TINY, k=10)["ranked"].equals(a["ranked"])


