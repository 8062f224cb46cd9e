"""Slack: direct messages through the Web API."""
