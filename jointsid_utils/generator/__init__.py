"""Notebook 05: the T5 that maps a search or a recommendation prompt to an item's semantic ID.

One job, in the order it runs: ``tokenization`` (ID tokens and prompts), ``examples`` (prompts and
targets per split), ``model`` (the T5 and its tokenizer), ``training`` (the Trainer and the cached model
directory), ``decoding`` (the prefix trie and constrained beam search), ``predict`` (ranked lists per
test case); ``job`` ties them together (``train_and_predict``, ``job_key``). Over it:
``orchestration`` (every scheme x seed, scored and cached), ``launch`` (the torchrun / accelerate entry
point) and ``report`` (notebook 05's tables and figures).
"""
