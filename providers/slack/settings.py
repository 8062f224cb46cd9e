"""Slack's settings: the Web API, with a bot token that has chat:write and im:write."""

from typing import ClassVar

from pydantic import BaseModel


class SlackSettings(BaseModel):
    slack_api_base: str = "http://127.0.0.1:4010"
    slack_bot_token: str = "xoxb-sandbox-token"

    # Whose sandbox defaults are public: refused with the sandbox off.
    sandbox_secrets: ClassVar[tuple[str, ...]] = ("slack_bot_token",)
