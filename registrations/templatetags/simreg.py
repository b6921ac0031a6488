"""Display helpers for templates."""

import phonenumbers
from django import template

register = template.Library()


@register.filter
def phone(value: str) -> str:
    """+85291234567 → +852 9123 4567; anything that does not parse is shown as stored."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
