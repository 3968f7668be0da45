"""The trade-off figure is readable: no scheme label overlaps another, and the baselines are drawn or named."""

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from jointsid_utils.evaluation import report as ev  # noqa: E402

SCHEMES = [(e, "rq_kmeans") for e in ("content", "search", "rec", "separate", "prefix_share", "fused_concat",
                                      "fused_svd", "multitask", "shared_then_task", "balanced_unique",
                                      "multitask_cf")] + \
          [("multitask", q) for q in ("rq_vae", "rq_vae_fixed", "residual_lfq", "dict_learning")]


def _crowded_table() -> pd.DataFrame:
    """Fifteen schemes, most within two points of each other on both axes, as the joint schemes are."""
    gen = np.random.default_rng(3)
    rows = []
    for emb, quant in SCHEMES:
        row = {"embedding": emb, "quantizer": quant, "seeds": 3}
        for col, centre in (("search", 0.6), ("rec", 0.18), ("rec_excl", 0.28)):
            v = centre + gen.normal(0, 0.015)
            row.update({col: v, f"{col}_lo": v - 0.03, f"{col}_hi": v + 0.03})
        rows.append(row)
    return pd.DataFrame(rows)


def _baselines() -> pd.DataFrame:
    rows = [("bm25_tuned", "search", "all", 0.66), ("dense_search", "search", "all", 0.93),
            ("random", "search", "all", 0.02), ("random", "rec", "all", 0.02), ("random", "rec", "exclude_history", 0.02),
            ("most_popular", "rec", "all", 0.10), ("most_popular", "rec", "exclude_history", 0.15),
            ("sasrec", "rec", "all", 0.21), ("sasrec", "rec", "exclude_history", 0.31)]
    return pd.DataFrame([{"method": m, "task": t, "protocol": p, "segment": "all", "recall_at_30": v}
                         for m, t, p, v in rows])


def test_labels_do_not_overlap_and_baselines_are_shown():
    fig = ev.plot_tradeoff(_crowded_table(), _baselines())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[:2]:
        names = {e if q == "rq_kmeans" else f"mt/{q}" for e, q in SCHEMES}
        labels = [t for t in ax.texts if t.get_text() in names]
        assert len(labels) == len(SCHEMES)
        boxes = [t.get_window_extent(renderer) for t in labels]
        overlaps = [(labels[i].get_text(), labels[j].get_text()) for i in range(len(boxes))
                    for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
        assert not overlaps, f"overlapping labels: {overlaps}"
        lines = {line.get_label() for line in ax.get_lines()}
        assert {"BM25 tuned (search)", "SASRec (rec, vertical)", "most-popular (rec, vertical)"} <= lines
        # the panel is zoomed on the schemes: references outside it are named at its edges
        texts = " ".join(t.get_text() for t in ax.texts)
        assert "above this range" in texts and "dense (search-tuned) 0.93" in texts and "random 0.02" in texts


def test_a_search_baseline_inside_the_schemes_range_is_drawn():
    wide = _crowded_table()
    wide.loc[0, ["search", "search_lo", "search_hi"]] = [0.9, 0.87, 0.95]  # one scheme reaches dense search
    ax = ev.plot_tradeoff(wide, _baselines()).axes[0]
    assert "dense (search-tuned) (search)" in {line.get_label() for line in ax.get_lines()}
