"""The domain operations the HTTP API, the CLI and bench share (definitions, runs, schedules,
complements, datasources, alerts). Raises :mod:`services.errors`, never HTTP; imports ``storage``,
``core``, ``model`` and the worker-side helpers of ``activities``, never ``api``."""
