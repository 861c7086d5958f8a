"""The BERT family beyond BERT itself, one module per family: RoBERTa, ALBERT, DistilBERT, each with
its config and presets in a ``<family>_config`` module beside it (transformers' ``configuration_*``).

BERT's own modules live at the package top level (``bertforge.model``, ``bertforge.heads``,
``bertforge.config``). Each family here keeps transformers' module tree and parameter names, so a
state dict moves both ways with no rename table, and registers itself in :mod:`bertforge.auto`.
"""
