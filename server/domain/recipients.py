"""Recipient address checks, with libraries that know the formats."""

import email_validator
import phonenumbers


def normalize_email(value: str) -> str:
    """The address in canonical form; raises ValueError saying what is wrong."""
    try:
        result = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return str(result.normalized)


def normalize_phone(value: str) -> str:
    """The number in E.164 form; raises ValueError unless it is a valid E.164 number."""
    if not value.startswith("+"):
        raise ValueError("must be in E.164 format with a leading + and country code")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
