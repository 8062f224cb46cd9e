"""State shared by the protocol handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    # Twilio I-Twilio-Idempotency-Token -> (created monotonic time, response body)
    idempotency: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget messages, request log and trigger counts (templates stay)."""
        self.store.clear()
        self.counter.clear()
        self.idempotency.clear()
