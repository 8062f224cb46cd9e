"""State shared by the protocol handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .config import Config
from .outage import Outages
from .store import Store
from .triggers import FailureCounter
from .webhooks import CallbackSender


@dataclass
class Context:
    config: Config
    store: Store
    sender: CallbackSender
    counter: FailureCounter = field(default_factory=FailureCounter)
    outages: Outages = field(default_factory=Outages)
    # Set when the sandbox shuts down, so held ('never answer') requests let go.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """Forget messages, request log, trigger counts and outages (templates stay)."""
        self.store.clear()
        self.counter.clear()
        self.outages.clear()
