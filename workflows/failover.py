"""Which provider carries a delivery's next attempt.

Each channel has its providers in the operator's order (CLARION_SMS_PROVIDERS,
CLARION_EMAIL_PROVIDERS). An attempt goes to the first provider whose circuit
breaker allows a call, starting after the provider whose last attempt failed
transiently, so a retry moves to the next provider and wraps around. Channels
with one provider have no breaker: skipping their only provider would just
delay every send, and retries are already paced by backoff.

Never changed here: an attempt whose outcome is unknown is reconciled, and
sent again if need be, at the provider that carried it (workflows/reconcile.py),
and a permanent error ends the delivery at the provider that gave it."""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.base import Provider, ProviderError
from workflows.breaker import Breakers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Carrier:
    name: str
    provider: Provider


class NoProviderAllowed(Exception):
    """Every provider of the channel is behind an open breaker."""


class Failover:
    def __init__(self, chains: dict[str, list[Carrier]], breakers: Breakers) -> None:
        self._chains = chains
        self.breakers = breakers

    def carrier(self, channel: str, name: str | None) -> Carrier:
        """The named provider of the channel (the first, for attempts made
        before providers were recorded)."""
        chain = self._chains[channel]
        return next((c for c in chain if c.name == name), chain[0])

    def first_choices(self) -> dict[str, Carrier]:
        """The carrier choose() would give a channel's first attempt, for the
        channels where it needs no database read: the only provider, or the
        first one while its breaker is known to be clean."""
        return {
            channel: chain[0]
            for channel, chain in self._chains.items()
            if not self._guarded(channel) or self.breakers.seen_clean(chain[0].name)
        }

    def _guarded(self, channel: str) -> bool:
        return len(self._chains[channel]) > 1

    async def choose(self, channel: str, after: str | None = None) -> Carrier:
        """The provider for a fresh attempt; `after`: the provider whose last
        attempt failed transiently. Raises NoProviderAllowed."""
        chain = self._chains[channel]
        if not self._guarded(channel):
            return chain[0]
        start = next((i + 1 for i, c in enumerate(chain) if c.name == after), 0)
        now = datetime.now(UTC)
        for carrier in chain[start:] + chain[:start]:
            if await self.breakers.allow(carrier.name, now):
                return carrier
        raise NoProviderAllowed(
            f"every {channel} provider is failing ({', '.join(c.name for c in chain)}: "
            "circuit open)"
        )

    async def report(self, channel: str, carrier: Carrier, error: ProviderError | None) -> None:
        """Counts the call's outcome against the provider's breaker. A
        permanent refusal is an answer, so the provider is up; an internal
        failure of ours says nothing about it."""
        if not self._guarded(channel):
            return
        now = datetime.now(UTC)
        # Bookkeeping: a failure here must not lose the call's recorded outcome.
        try:
            if error is None or (error.permanent and not error.outcome_unknown):
                await self.breakers.succeeded(carrier.name, now)
            elif not error.permanent:
                await self.breakers.failed(carrier.name, now)
        except Exception:
            log.exception("updating the %s breaker failed", carrier.name)
