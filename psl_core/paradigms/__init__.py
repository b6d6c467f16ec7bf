"""Training paradigms beyond PSL (SPEC §6): sequential SL, SplitFed v1/v2, FedAvg and hybrid SL/FL.

``catalog`` describes them (no torch); ``engine.ParadigmTrainer`` trains them, with client copies
stacked and trained together (``stacked``), rounds planned up front (``plan``), their arithmetic in
``algorithms`` and their simulated time, traffic and energy in ``costs``.
"""

from psl_core.paradigms.catalog import PARADIGMS, ParadigmInfo

__all__ = ["PARADIGMS", "ParadigmInfo"]
