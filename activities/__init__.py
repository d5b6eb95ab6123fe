"""I/O adapters: the Temporal activities that actually run DolphinScheduler tasks on a worker host.

One module per task type (``shell``, ``python_task``, ``http_task``, …), plus the shared pieces they
build on: :mod:`activities.logs` (the per-attempt task log) and :mod:`activities.process` (running a
child process group with heartbeats and clean cancellation). Workflows never import these modules;
they only name the activities by their DS task type (``"SHELL"``, ``"PYTHON"``, ``"HTTP"``).
"""
