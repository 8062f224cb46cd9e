"""Channel policy: the one source for what each channel accepts. The send path
enforces it and the capabilities endpoint publishes it."""

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    SLACK = "slack"
    VOICE = "voice"
    WHATSAPP = "whatsapp"


@dataclass(frozen=True)
class ChannelPolicy:
    channel: Channel
    template_required: bool
    raw_allowed: bool
    # The recipient field this channel delivers to, e.g. "email".
    recipient_field: str
    max_body_length: int
    supports_subject: bool
    # True when the provider reports delivery after accepting a message, so
    # routing's `success_on: delivered` waits for that report. Without it an
    # accepted message counts as delivered at once (Slack's post is final).
    gives_receipts: bool


POLICIES: dict[Channel, ChannelPolicy] = {
    p.channel: p
    for p in (
        ChannelPolicy(Channel.EMAIL, False, True, "email", 100_000, True, True),
        # Twilio's Messages API refuses bodies over 1600 characters.
        ChannelPolicy(Channel.SMS, False, True, "phone", 1600, False, True),
        # Slack truncates chat.postMessage text beyond 40,000 characters.
        ChannelPolicy(Channel.SLACK, False, True, "slack_user_id", 40_000, False, False),
        # Twilio's Calls API accepts TwiML up to 4000 characters.
        ChannelPolicy(Channel.VOICE, False, True, "phone", 3000, False, True),
        # Meta limits a template body to 1024 characters.
        ChannelPolicy(Channel.WHATSAPP, True, False, "phone", 1024, False, True),
    )
}

# Channels this deployment delivers on; the others are refused with a clear error.
DELIVERABLE_CHANNELS: frozenset[Channel] = frozenset(Channel)


def parse_channels(names: list[str]) -> list[Channel]:
    """Channels in request order; raises ValueError naming the first bad entry."""
    channels: list[Channel] = []
    for name in names:
        try:
            channel = Channel(name)
        except ValueError:
            raise ValueError(
                f"unknown channel {name!r}; use one of: {', '.join(c.value for c in Channel)}"
            ) from None
        if channel in channels:
            raise ValueError(f"channel {name!r} is listed twice; list each channel once")
        channels.append(channel)
    return channels
