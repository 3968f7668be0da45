"""Notebook 05: the T5 that maps a search or a recommendation prompt to an item's semantic ID.

``tokenization`` (ID tokens and prompts), ``decoding`` (the prefix trie and constrained beam search),
``model`` (examples, training and prediction of one scheme), ``orchestration`` (every scheme x seed,
cached), ``launch`` (the torchrun / accelerate entry point) and ``report`` (notebook 05's tables).
"""
