"""Notebook 01, first half: items and interactions, the leave-last-out split and the data summary.

``dataset`` loads a catalogue (embedded MovieLens-100K or a MovieLens CSV export), enriches the item
text and splits each user's history; ``summary`` describes what was loaded.
"""
