"""Notebook 01, first half: items and interactions, the leave-last-out split and the data summary.

``dataset`` is the stage entry point (``prepare_data``; ``check_source`` for the runner): every source
becomes one ``catalogue.Catalogue`` (the generic schema of docs/DATA.md, read from a user's tables by
``ingest``; ``movielens`` adapts the embedded MovieLens-100K and MovieLens CSV exports, titles parsed by
``titles``), ``catalogue.clean`` applies the ingestion policy, ``split`` slices and splits it, ``enrich``
adds attributes, plots and the item text; ``summary`` describes what was loaded and repaired.
"""
