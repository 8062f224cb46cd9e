"""Clarion provider sandbox.

A local server that speaks the public wire protocols of the notification
providers Clarion talks to (SMTP + Mailgun webhooks, Twilio Messaging and
Voice, Slack Web API, WhatsApp Cloud API) so the platform can be exercised end
to end without the internet.  It deliberately shares no code with the
platform: it is an independent reading of the providers' documentation, so a
misunderstanding on one side shows up as a failing test instead of agreeing
with itself.
"""

__version__ = "0.1.0"
