"""Plan annotations: what the ``skyrig_annotate_plan`` hooks say about a plan (cost estimates, warnings).

Every plan a session makes (``plan``, ``apply``, ``destroy``) is annotated through the session's one
plugin manager. Annotations are notes: they never change the plan, and a plugin that fails to annotate
does not stop it (its failure becomes a note of its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from skyrig.hookspecs import Annotation

if TYPE_CHECKING:
    import pluggy

    from skyrig.config import Environment
    from skyrig.engine.plan import Plan


def annotate(manager: pluggy.PluginManager, plan: Plan, environment: Environment) -> list[dict[str, Any]]:
    """The annotations of ``plan`` from every implementation of ``skyrig_annotate_plan``, in the order
    pluggy calls them (the most recently registered first), each as ``label``, ``value``, ``node`` and
    ``source`` (the plugin's registered name, such as ``plugin:cost-estimate``)."""
    arguments = {"plan": plan, "environment": environment}
    notes: list[dict[str, Any]] = []
    for impl in reversed(manager.hook.skyrig_annotate_plan.get_hookimpls()):
        source = impl.plugin_name
        try:
            answer = impl.function(*(arguments[name] for name in impl.argnames))
            items = list(answer or [])
        except Exception as error:  # a note is never worth a failed plan
            notes.append(_note("annotation failed", f"{type(error).__name__}: {error}", None, source))
            continue
        for item in items:
            if isinstance(item, Annotation):
                notes.append(_note(item.label, item.value, item.node, source))
            else:
                notes.append(_note("annotation failed", f"not an Annotation: {item!r:.80}", None, source))
    return notes


def _note(label: str, value: str, node: str | None, source: str) -> dict[str, Any]:
    return {"label": str(label), "value": str(value), "node": node, "source": source}
