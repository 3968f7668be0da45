"""Notebook 01, second half: 20 search queries per item, split 9 train / 1 validation / 10 test.

``stage`` is the entry point (``prepare_queries``) and picks a backend: ``templates`` writes the
queries offline from the metadata (seeded, wording in ``vocabulary``); ``llm`` asks any
OpenAI-compatible chat endpoint instead, with an on-disk answer cache. ``common`` holds what both
backends share: the frame's columns and input checks; ``distinct`` makes the pool's texts unique and
``splits`` gives every split the same mix of kinds and breadths.
"""
