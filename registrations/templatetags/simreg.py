"""Display helpers for templates, and form fields in Bootstrap 5 markup.

`bootstrap_field`, `bootstrap_errors` and `bootstrap_form` write the markup of
django-crispy-forms' Bootstrap 5 templates (the wrapper `div_id_<name>`, the asterisk of a
required field, `is-invalid`, the numbered `error_<n>_id_<name>` messages, the help text, the
`form-check` radio buttons and checkboxes), which the scripts, the tests and the style sheet
rely on. They write it in Python: through templates, a form's fields were most of the time a
page takes. The common widgets (inputs, selects, text areas) are written here in the markup of
Django's widget templates; any other widget is rendered by Django.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Callable, Iterable
from typing import Any

import phonenumbers
from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms, template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from registrations.policy import current_policy, suspended_sim_deactivation_at

register = template.Library()


@register.filter
def deactivation_at(suspended_at):
    """When a SIM suspended at this time is deactivated under the policy in force."""
    if suspended_at is None:
        return None
    return suspended_sim_deactivation_at(current_policy(), suspended_at=suspended_at)


EMPTY = SafeString()


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


# Form fields --------------------------------------------------------------------------------


@register.filter
def bootstrap_field(field: forms.BoundField, errors: str = "") -> SafeString:
    """A field with its label, errors and help text.

    Errors are paragraphs in their `invalid-feedback` block; with "inline", spans (as on the
    audit log's forms, whose spacing is the tighter one).
    """
    if field.is_hidden:
        if field.field.show_hidden_initial:
            return SafeString(field)
        return _widget(field, field.field.widget)
    widget = field.field.widget
    inline_errors = errors == "inline"
    if isinstance(widget, forms.CheckboxInput):
        return _checkbox(field, inline_errors)
    if isinstance(widget, forms.RadioSelect):  # CheckboxSelectMultiple is a RadioSelect too
        return _choice_buttons(field)
    if isinstance(widget, forms.FileInput):
        body = _file(field, inline_errors)
    else:
        control = "form-select" if isinstance(widget, forms.Select) else "form-control"
        if field.errors:
            control += " is-invalid"
        body = _widget(field, widget, _control_class(widget, control)) + _help_and_errors(
            field, inline_errors
        )
    return format_html(
        '<div id="div_{}" class="mb-3{}">{}{}</div>',
        field.auto_id,
        _css_classes(field),
        _label(field),
        body,
    )


@register.filter
def bootstrap_errors(form: forms.Form) -> SafeString:
    """The errors of no one field, as an alert above the fields."""
    errors = form.non_field_errors()
    if not errors:
        return EMPTY
    return format_html(
        '<div class="alert alert-block alert-danger"><ul class="m-0">{}</ul></div>',
        format_html_join("\n", "<li>{}</li>", ((error,) for error in errors)),
    )


@register.filter
def bootstrap_form(form: forms.Form) -> SafeString:
    """The form's errors of no one field, then every field in order, hidden ones included."""
    return bootstrap_errors(form) + mark_safe("".join(bootstrap_field(field) for field in form))  # noqa: S308 - each part escaped


def _css_classes(field: forms.BoundField) -> str:
    classes = field.css_classes()
    return f" {classes}" if classes else ""


def _label(field: forms.BoundField) -> SafeString:
    if not field.label:
        return EMPTY
    fieldset = field.use_fieldset
    tag = "legend" if fieldset else "label"
    target = field.id_for_label
    label = format_html(
        '<{}{} class="form-label{}{}">{}{}</{}>',
        tag,
        format_html(' for="{}"', target) if target else "",
        " requiredField" if field.field.required else "",
        " fs-6" if fieldset else "",
        field.label,
        _asterisk(field),
        tag,
    )
    if not fieldset:
        return label
    described = field.aria_describedby
    return format_html(
        "<fieldset{}>{}",
        format_html(' aria-describedby="{}"', described) if described else "",
        label,
    )


def _asterisk(field: forms.BoundField) -> SafeString:
    return mark_safe('<span class="asteriskField">*</span>' if field.field.required else "")  # noqa: S308 - constant


def _help_text(field: forms.BoundField) -> SafeString:
    if not field.help_text:
        return EMPTY
    # Help texts are the app's own and may hold markup, as in crispy-forms and the Django admin.
    text = mark_safe(str(field.help_text))  # noqa: S308
    if field.auto_id:
        return format_html('<div id="{}_helptext" class="form-text">{}</div>', field.auto_id, text)
    return format_html('<div class="form-text">{}</div>', text)


def _errors(field: forms.BoundField, inline: bool = False) -> SafeString:
    errors = field.errors
    if not errors:
        return EMPTY
    line = (
        '<span id="error_{}_{}"><strong>{}</strong></span>'
        if inline
        else ('<p id="error_{}_{}"><strong>{}</strong></p>')
    )
    return format_html(
        '<div id="{}_error" class="invalid-feedback">{}</div>',
        errors.field_id,
        format_html_join(
            "", line, ((number, field.auto_id, error) for number, error in enumerate(errors, 1))
        ),
    )


def _help_and_errors(field: forms.BoundField, inline: bool) -> SafeString:
    return _errors(field, inline) + _help_text(field)


def _checkbox(field: forms.BoundField, inline_errors: bool) -> SafeString:
    widget = field.field.widget
    control = "form-check-input is-invalid" if field.errors else "form-check-input"
    return format_html(
        '<div class="mb-3"><div id="div_{}" class="form-check{}">{}'
        '<label for="{}" class="form-check-label{}">{}{}</label>{}</div></div>',
        field.auto_id,
        _css_classes(field),
        _widget(field, widget, _control_class(widget, control)),
        field.id_for_label,
        " requiredField" if field.field.required else "",
        field.label,
        _asterisk(field),
        _help_and_errors(field, inline_errors),
    )


def _choice_buttons(field: forms.BoundField) -> SafeString:
    """Radio buttons (or checkboxes of a multiple choice), one `form-check` each; the errors
    follow the last one."""
    widget = field.field.widget
    id_ = widget.attrs.get("id") or field.auto_id
    attrs = field.build_widget_attrs({"id": id_} if id_ else {})
    groups = widget.optgroups(field.html_name, widget.format_value(field.value()), attrs)
    invalid = " is-invalid" if field.errors else ""
    parts = []
    for group_number, (group, options, _index) in enumerate(groups, 1):
        if group:
            parts.append(f"<strong>{escape_text(group)}</strong>")
        for number, option in enumerate(options, 1):
            last = number == len(options) and group_number == len(groups)
            parts.append(
                f'<div class="form-check"><input type="{escape_text(option["type"])}" '
                f'class="form-check-input{invalid}" name="{escape_text(field.html_name)}" '
                f'value="{escape_text(str(option["value"]))}"{_attributes(option["attrs"])}>'
                f'<label for="{escape_text(option["attrs"].get("id", ""))}" '
                f'class="form-check-label">'
                f"{escape_text(str(option['label']))}</label>{_errors(field) if last else ''}</div>"
            )
    return format_html(
        '<div id="div_{}" class="mb-3{}">{}<div>{}</div>{}{}</div>',
        field.auto_id,
        _css_classes(field),
        _label(field),
        mark_safe("".join(parts)),  # noqa: S308 - each part escaped
        _help_text(field),
        mark_safe("</fieldset>" if field.label and field.use_fieldset else ""),  # noqa: S308
    )


def _file(field: forms.BoundField, inline_errors: bool) -> SafeString:
    """A file input as crispy-forms writes it, inside a `div` that is invalid with it."""
    parts = []
    for subwidget in field.subwidgets:
        data = subwidget.data
        if data.get("is_initial"):
            # A stored file to keep or clear: no form of the app offers one.
            return as_crispy_field(field)
        classes = "form-control"
        if data["attrs"].get("class"):
            classes += " " + data["attrs"]["class"]
        if field.errors:
            classes += " is-invalid"
        attrs = {name: value for name, value in data["attrs"].items() if name != "class"}
        parts.append(
            format_html(
                '<div{}><input type="{}" name="{}" class="{}"{}{}>{}</div>',
                mark_safe(' class="is-invalid"' if field.errors else ""),  # noqa: S308
                data["type"],
                data["name"],
                classes,
                mark_safe(" disabled" if field.field.disabled else ""),  # noqa: S308
                _attributes(attrs),
                _help_and_errors(field, inline_errors),
            )
        )
    return mark_safe("".join(parts))  # noqa: S308 - each part escaped


def _control_class(widget: forms.Widget, control: str) -> str:
    """The widget's classes, its class name (as crispy-forms adds it) and the Bootstrap ones."""
    classes = widget.attrs.get("class", "")
    name = widget.__class__.__name__.lower()
    if not classes:
        classes = name
    elif name not in classes:
        classes += f" {name}"
    present = classes.split()
    for css in control.split():
        if css not in present:
            classes += f" {css}"
    return classes


# Widgets ------------------------------------------------------------------------------------
# The markup of Django's templates under django/forms/widgets/, written without a template.


def _widget(field: forms.BoundField, widget: forms.Widget, css_class: str = "") -> SafeString:
    if css_class:
        widget = copy.copy(widget)
        widget.attrs = {**widget.attrs, "class": css_class}
    write = WIDGET_WRITERS.get(widget.template_name)
    if write is _select and widget.option_template_name != SELECT_OPTION:
        write = None
    if write is None or field.field.localize:
        return field.as_widget(widget=widget)
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
    return write(context)


def _attributes(attrs: dict[str, Any]) -> SafeString:
    """attrs.html: ` name="value"`, a bare name for True, nothing for False."""
    return mark_safe(  # noqa: S308 - names and values escaped
        "".join(
            f" {escape_text(name)}"
            if value is True
            else f' {escape_text(name)}="{escape_text(str(value))}"'
            for name, value in attrs.items()
            if value is not False
        )
    )


def escape_text(value: Any) -> str:
    """conditional_escape() without its check for lazy strings, for markup written in Python
    by the thousand (attributes here, rows of long lists in views)."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _value(value: Any) -> str:
    """A value as the templates' `stringformat:'s'` writes it."""
    return escape_text(str(value))


def _input(widget: dict[str, Any]) -> SafeString:
    value = widget["value"]
    return mark_safe(  # noqa: S308 - escaped
        f'<input type="{_value(widget["type"])}" name="{_value(widget["name"])}"'
        + (f' value="{_value(value)}"' if value is not None else "")
        + f"{_attributes(widget['attrs'])}>"
    )


def _option(option: dict[str, Any]) -> str:
    return (
        f'<option value="{_value(option["value"])}"{_attributes(option["attrs"])}>'
        f"{escape_text(str(option['label']))}</option>"
    )


def _select(widget: dict[str, Any]) -> SafeString:
    parts = [f'<select name="{_value(widget["name"])}"{_attributes(widget["attrs"])}>']
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_value(group_name)}">')
        parts.extend(f"\n  {_option(option)}" for option in options)
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return mark_safe("".join(parts))  # noqa: S308 - escaped


def _textarea(widget: dict[str, Any]) -> SafeString:
    value = widget["value"]
    return mark_safe(  # noqa: S308 - escaped
        f'<textarea name="{_value(widget["name"])}"{_attributes(widget["attrs"])}>\n'
        f"{escape_text(value) if value else ''}</textarea>"
    )


SELECT_OPTION = "django/forms/widgets/select_option.html"
INPUT_TEMPLATES: Iterable[str] = (
    "checkbox",
    "date",
    "datetime",
    "email",
    "hidden",
    "input",
    "number",
    "password",
    "search",
    "tel",
    "text",
    "time",
    "url",
)
WIDGET_WRITERS: dict[str, Callable[[dict[str, Any]], SafeString]] = {
    **{f"django/forms/widgets/{name}.html": _input for name in INPUT_TEMPLATES},
    "django/forms/widgets/select.html": _select,
    "django/forms/widgets/textarea.html": _textarea,
}
