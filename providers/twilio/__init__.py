"""Twilio: SMS and voice."""
