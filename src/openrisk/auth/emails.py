"""The one email-address rule of OpenRisk: sign-up, sign-in, ``create-admin``, members and
invitations all accept and refuse the same addresses, with the same human message.

The syntax check is email-validator's (no DNS look-up: an address is checked where it is typed,
offline). Its list of special-use domains is trimmed of ``local`` and ``test``, following the
library's documented way: internal domains such as ``openrisk.local`` are real logins on private
deployments. Addresses are stored and compared lower-cased.
"""

from __future__ import annotations

from typing import Annotated

import email_validator
from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

MAX_LENGTH = 320
MESSAGE = "Enter an email address such as name@example.com."
INTERNAL_DOMAINS = ("local", "test")

for _domain in INTERNAL_DOMAINS:
    if _domain in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(_domain)


class InvalidEmail(ValueError):
    """Not an email address; ``str()`` is the message to show."""

    def __init__(self) -> None:
        super().__init__(MESSAGE)


def normalise_email(value: str) -> str:
    """The address lower-cased and trimmed, or ``InvalidEmail``."""
    text = value.strip()
    if not text or len(text) > MAX_LENGTH:
        raise InvalidEmail()
    try:
        checked = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as error:
        raise InvalidEmail() from error
    return checked.normalized.lower()


def _pydantic_email(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidEmail:
        raise PydanticCustomError("email", MESSAGE) from None


Email = Annotated[str, StringConstraints(max_length=MAX_LENGTH), AfterValidator(_pydantic_email)]
