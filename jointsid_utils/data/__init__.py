"""Notebook 01, first half: items and interactions, the leave-last-out split and the data summary.

``dataset`` is the stage entry point (``prepare_data``): it loads a catalogue with ``movielens``
(embedded MovieLens-100K or a MovieLens CSV export), slices and splits it with ``split``, adds
attributes, plots and the item text with ``enrich`` (titles parsed by ``titles``); ``summary``
describes what was loaded.
"""
