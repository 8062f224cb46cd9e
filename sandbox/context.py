"""State shared by the protocol handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .config import Config
from .store import Store
from .triggers import FailureCounter
from .webhooks import CallbackSender


@dataclass
class Context:
    config: Config
    store: Store
    sender: CallbackSender
    counter: FailureCounter = field(default_factory=FailureCounter)
    # Set when the sandbox shuts down, so held ('never answer') requests let go.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """Forget messages, request log and trigger counts (templates stay)."""
        self.store.clear()
        self.counter.clear()
