"""Vonage: SMS through the SMS API."""
