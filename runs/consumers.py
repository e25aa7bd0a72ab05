"""The live run page's WebSocket: /ws/runs/<id>/.

Authorized in `connect`, before accepting: an anonymous user or one outside the run's project
is closed without a byte of data (the Origin is checked earlier, by AllowedHostsOriginValidator
in controlcenter/asgi.py). On connect the page first gets the full state from the database,
then the collector's deltas as they come.
"""

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from runs import live
from runs.models import Run

log = logging.getLogger(__name__)

CLOSE_DENIED = 4403


class RunConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.group = None
        user = self.scope.get("user")
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if user is None or not user.is_authenticated or not await self.visible(user, run_id):
            await self.close(code=CLOSE_DENIED)
            return
        self.run_id = run_id
        self.group = live.run_group(run_id)
        # Join before reading the state: a delta sent in between then arrives after the state
        # and overlaps it, which the page's merge by tick number absorbs. Nothing falls through.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json(await self.state())

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        # The page only listens; stop and user changes are CSRF-protected POSTs.
        if content.get("type") == "refresh":
            await self.send_json(await self.state())

    async def run_message(self, event):
        await self.send_json(event["message"])

    @database_sync_to_async
    def visible(self, user, run_id: int) -> bool:
        return Run.objects.for_user(user).filter(pk=run_id).exists()

    @database_sync_to_async
    def state(self) -> dict:
        run = Run.objects.select_related("scenario").defer("stats_blob").get(pk=self.run_id)
        return live.full_state(run)
