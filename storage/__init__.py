"""Porpoise's own database: every table, every store, the schema migrations, the secret cipher.

One declarative base (:mod:`storage.db`), one engine per database URL per process, the schema
brought to the newest Alembic revision once per process before the first store uses it
(:mod:`storage.migrate`). Stores: definitions (+ force-success marks, task groups), schedules,
datasources, alert groups/channels/deliveries, the lifecycle-event outbox, the DS REST API's
numeric ids and DS project registry (:mod:`storage.ds_ids`). Nothing here imports
``activities``, ``workflows``, ``services`` or ``api``.
"""
