"""Reading another workflow instance's end status, for a parent recovering its sub-processes (§4.14).

A recovered parent resumes a paused, failed or stopped child where it stopped, as DS does, rather than
running it from the start: it needs the child's nodes, which only Temporal holds.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.contracts import Activities, InstanceStatus
from core.temporal import final_status


class InstanceActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=Activities.LOAD_INSTANCE_STATUS)
    async def load_instance_status(self, instance_id: str) -> InstanceStatus | None:
        """The status the instance ended with; None when it does not exist or ended without one."""
        try:
            desc = await self.client.get_workflow_handle(instance_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return await final_status(self.client, instance_id, desc.status, desc.run_id)
