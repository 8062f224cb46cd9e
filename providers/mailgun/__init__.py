"""Email: SMTP submission out, Mailgun-format event webhooks in."""
