"""Notebook 01, second half: 20 search queries per item, split 10 train / 10 test.

``templates`` writes them offline from the metadata (seeded); ``llm`` asks any OpenAI-compatible chat
endpoint instead, with an on-disk answer cache.
"""
