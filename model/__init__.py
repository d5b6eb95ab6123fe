"""The pure DolphinScheduler definition model: parsing, validation, graph algorithms, parameters.

Nothing here does I/O or imports Temporal, so the workflow sandbox can pass it through and the API,
the worker and the tests all share one understanding of a workflow definition.
"""
