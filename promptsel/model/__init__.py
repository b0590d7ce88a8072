"""The values every part of promptsel speaks: score tables, prompts, datasets, metrics, progress,
and the statistics over score tables that the recommendation and the gate share (``stats``).

Below the plugin contracts: a backend, a selector or an embedder reads and returns these, and
the pipeline passes them around. Nothing here knows of plugins, backends or reports.
"""
