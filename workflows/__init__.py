"""Deterministic Temporal code: the generic DS workflow and the pure DAG scheduler it drives.

Nothing here does I/O or imports activity implementations; activities are called by name.
"""
