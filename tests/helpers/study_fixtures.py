"""The two schemes the orchestration tests train and score."""

SCHEMES = [("content", "rq_kmeans"), ("separate", "rq_kmeans")]
