"""Where a DataX task runs: on this worker, or as a Kubernetes Job (docs/datax.md "Routing").

The rule, first match wins:

1. No cluster configured (``datax_k8s_namespace`` empty): local, and the log says so.
2. The task's ``runOn`` (``local`` | ``k8s``; a Porpoise extension of DS's task params).
3. The worker's ``datax_run_on`` when it is ``local`` or ``k8s`` (a worker group's default: each
   worker group is a worker process with its own settings).
4. ``auto``: Kubernetes when ``xmx`` >= ``datax_k8s_min_xmx_gb``, else local: small jobs stay on
   the worker, large ones must not take the worker's memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import Settings

from .builders import BuildError
from .job import Params, datax_params

MODES = ("", "auto", "local", "k8s")


@dataclass(frozen=True)
class Route:
    where: str  # "local" | "k8s"
    why: str


def memory_gb(task_params: Params) -> tuple[int, int]:
    """DS ``xms``/``xmx`` in GB (default 1, minimum 1; reference §3 DATAX)."""
    p = datax_params(task_params)
    xms, xmx = (1 if p.xms is None else p.xms), (1 if p.xmx is None else p.xmx)
    for key, value in (("xms", xms), ("xmx", xmx)):
        if value < 1:
            raise BuildError(f"{key} must be at least 1 (GB), got {value}")
    if xms > xmx:
        raise BuildError(f"xms ({xms}G) must not exceed xmx ({xmx}G)")
    return xms, xmx


def route(task_params: Params, xmx: int, settings: Settings) -> Route:
    asked = (datax_params(task_params).run_on or "").strip().lower()
    if asked not in MODES:
        raise BuildError(f"runOn must be local, k8s or auto, got {asked!r}")
    if not settings.datax_k8s_namespace:
        extra = " (the task asks for k8s)" if asked == "k8s" else ""
        return Route("local", f"no Kubernetes cluster configured (PORPOISE_DATAX_K8S_NAMESPACE is empty): "
                              f"running locally{extra}")
    if asked in ("local", "k8s"):
        return Route(asked, f"the task says runOn={asked}")
    if settings.datax_run_on in ("local", "k8s"):
        return Route(settings.datax_run_on, f"this worker's datax_run_on is {settings.datax_run_on}")
    if xmx >= settings.datax_k8s_min_xmx_gb:
        return Route("k8s", f"xmx {xmx}G >= datax_k8s_min_xmx_gb {settings.datax_k8s_min_xmx_gb}G: Kubernetes Job")
    return Route("local", f"xmx {xmx}G < datax_k8s_min_xmx_gb {settings.datax_k8s_min_xmx_gb}G: local")
