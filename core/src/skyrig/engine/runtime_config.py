"""Runtime configs: what each service reads, at run time, to reach the resources it may use.

After every successful apply the engine writes one per service: for each resource the service owns or
uses, the runtime entry of the resource's main node (host, port, queue URL, secret *references*), the
provider that provisioned it (whose data plane reaches it), the code the service host runs for it (a
handler, an endpoint) and the operations granted. They go to
state, to ``.skyrig/runtime/ENV/SERVICE.json``, and to the compute provider when it delivers them
(:class:`skyrig.provider.RuntimeDelivery`). Never a secret value.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from skyrig.kinds import KINDS
from skyrig.plugins.capabilities import RuntimeDelivery, capability

if TYPE_CHECKING:
    from collections.abc import Mapping

    from skyrig.engine.contract import NodeType
    from skyrig.engine.plan import Plan
    from skyrig.engine.session import Session
    from skyrig.model import AppModel
    from skyrig.state import NodeRecord

Grants = dict[str, dict[str, list[str]]]
"""Service -> resource (``kind/name``) -> operations."""


def grants(model: AppModel) -> Grants:
    """What each service may use: the resources it owns (no operation needed) and those it uses, with the
    operations its code performs."""
    found: Grants = {s.name: {} for s in model.services}
    for resource in model.resources:
        found[resource.service].setdefault(f"{resource.kind}/{resource.name}", [])
    for use in model.uses:
        found[use.service][f"{use.kind}/{use.resource}"] = list(use.operations)
    return found


def code_references(model: AppModel) -> dict[str, dict[str, Any]]:
    """``kind/name`` -> what the service host runs for it (a subscription's handler, a cron job's
    endpoint), for the resources of kinds that have code."""
    found = {}
    for resource in model.resources:
        code = KINDS[resource.kind].code(resource, model)
        if code:
            found[f"{resource.kind}/{resource.name}"] = code
    return found


def build(
    app: str,
    environment: str,
    granted: Grants,
    records: Mapping[str, NodeRecord],
    types: Mapping[str, NodeType],
    model: AppModel,
) -> dict[str, dict[str, Any]]:
    """Each service's runtime config, from what state recorded of the resources' main nodes."""
    main = {r.resource: r for r in records.values() if r.resource}
    code = code_references(model)
    configs = {}
    for service, resources in sorted(granted.items()):
        entries = {}
        for resource, operations in sorted(resources.items()):
            record = main.get(resource)
            if record is None:
                continue
            entry = types[record.type].runtime_entry(record.node(), record.observation()) or {}
            entries[resource] = {
                "provider": record.provider,
                **entry,
                **code.get(resource, {}),
                "operations": operations,
            }
        configs[service] = {"app": app, "environment": environment, "service": service, "resources": entries}
    return configs


def write(
    session: Session, plan: Plan, fence: int, records: Mapping[str, NodeRecord] | None = None
) -> dict[str, dict[str, Any]]:
    """Write each service's runtime config after ``plan`` was applied (under the lease ``fence``): to
    state, to the app's ``.skyrig/runtime/`` folder, and to the compute provider if it delivers them.
    ``records``: what state records, if the caller knows (the apply that wrote it); else it is read."""
    configs = build(
        session.app,
        session.name,
        plan.grants,
        records if records is not None else session.store.nodes(session.name),
        session.types,
        session.model,
    )
    session.store.finish(session.name, fence, configs)
    folder = session.root / ".skyrig" / "runtime" / session.name.replace(":", "-")
    folder.mkdir(parents=True, exist_ok=True)
    for service, config in configs.items():
        (folder / f"{service}.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    compute = session.environment.provider_for("compute")
    delivery = capability(session.provider(compute), RuntimeDelivery)
    if configs and delivery is not None:
        delivery.deliver_runtime(session.context(compute), configs)
    return configs
