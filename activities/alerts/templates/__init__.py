"""Alert templates: user-written Jinja2, rendered in a sandbox, in a separate process, with limits.

One module an idea:

* :mod:`.sandbox`: the sandboxed Jinja environment, the in-process deadline and output cap, what a
  render or an analysis job does, and the render process's main loop (stdlib and Jinja only);
* :mod:`.render_pool`: the render processes, killed and replaced when a template overruns;
* :mod:`.render`: render and analyse jobs through the pool, parent side;
* :mod:`.context`: Porpoise's own placeholders for an alert, and a sample run;
* :mod:`.defaults`: the default templates (``default_templates/*.j2``, package data);
* :mod:`.validation`: save time, :func:`validate_templates` (parse, check every placeholder against
  what the alert kind provides, then a strict render against the sample run);
* :mod:`.messages`: send time, :func:`render_messages` (unknown placeholders render as
  ``[unknown: name]``; a failing custom template falls back to the default, with a note).

The names other modules use are re-exported here.
"""

from .context import NODE_FIELDS, build_context, node_context, sample_context, sample_status, schema
from .defaults import FORMATS, KINDS, default_template, defaults
from .messages import Message, MessageSpec, business_names, html_to_text, render_messages
from .render import Analysis, Job, Rendered, analyze, render_many
from .render_pool import RenderPool, pool
from .sandbox import (
    GLOBALS,
    MAX_OUTPUT_CHARS,
    MAX_TEMPLATE_CHARS,
    RENDER_TIMEOUT,
    OutputTooLarge,
    RenderTimeout,
    environment,
)
from .validation import TemplateProblem, validate_templates

__all__ = [
    "FORMATS",
    "GLOBALS",
    "KINDS",
    "MAX_OUTPUT_CHARS",
    "MAX_TEMPLATE_CHARS",
    "NODE_FIELDS",
    "RENDER_TIMEOUT",
    "Analysis",
    "Job",
    "Message",
    "MessageSpec",
    "OutputTooLarge",
    "RenderPool",
    "RenderTimeout",
    "Rendered",
    "TemplateProblem",
    "analyze",
    "build_context",
    "business_names",
    "default_template",
    "defaults",
    "environment",
    "html_to_text",
    "node_context",
    "pool",
    "render_many",
    "render_messages",
    "sample_context",
    "sample_status",
    "schema",
    "validate_templates",
]
