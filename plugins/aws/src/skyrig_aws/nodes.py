"""The base of every AWS node type: :class:`skyrig.provider.CloudNodeType` (errors in the engine's terms,
where each node is for the nodes created after it), with what the tagging API needs to map a resource back
to its node type."""

from __future__ import annotations

from typing import ClassVar

from skyrig.provider import CloudNodeType, Context


class AwsNodeType(CloudNodeType):
    """One kind of AWS resource. ``arn_types`` are its main resource's types in the tagging API
    (``ec2:vpc``), which :meth:`skyrig_aws.AwsProvider.inventory` maps back to the node type."""

    arn_types: ClassVar[tuple[str, ...]] = ()

    def exists(self, context: Context, provider_id: str) -> bool:
        """Whether a resource the tagging API lists still exists (it lists deleted ones for a while)."""
        return True

    def inventory_id(self, arn: str) -> str:
        """The provider id of the resource with ``arn`` (by default its last path element)."""
        return arn.rpartition("/")[2] if "/" in arn else arn.rpartition(":")[2]
