"""Exploring a trained study: ask a scheme's generator a query or a user, and see what its codes mean.

Read-only: everything loads from a finished run folder (``runs/<folder>/data``, ``ids``, ``models/generator``,
``results/predictions``); nothing retrains. ``trained`` loads a scheme's generator for a seed, ``search`` and
``recommend`` decode with the study's own constrained beam search, ``codes`` describes the first-level codes
and the collisions before the dedup level. ``python -m jointsid_utils.explore`` prints the same as tables;
notebook 08 shows them with widgets.
"""

from jointsid_utils.explore.codes import code_table, collisions
from jointsid_utils.explore.recommend import recommend, sasrec_list, user_history
from jointsid_utils.explore.search import search
from jointsid_utils.explore.trained import (Catalogue, TrainedGenerator, config_of_run, load_catalogue,
                                            load_generator, parse_scheme, trained_schemes, trained_seeds)

__all__ = ["Catalogue", "TrainedGenerator", "code_table", "collisions", "config_of_run", "load_catalogue",
           "load_generator", "parse_scheme", "recommend", "sasrec_list", "search", "trained_schemes", "trained_seeds",
           "user_history"]
