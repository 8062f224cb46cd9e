"""The Message-ID we send with carries the delivery id, so that Mailgun's
events (which echo the message's headers) lead back to the delivery."""


def email_message_id(delivery_id: str, domain: str) -> str:
    """The Message-ID header we send with, so that events lead back to the delivery."""
    return f"<{delivery_id}@{domain}>"


def delivery_id_from_message_id(message_id: str) -> str | None:
    local = message_id.strip().strip("<>").partition("@")[0]
    return local if local.startswith("dlv_") else None
