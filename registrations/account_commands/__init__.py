"""Django's own account commands (`createsuperuser`, `changepassword`) with simreg's password
rules and audit events.

An app of its own, listed before django.contrib.auth in INSTALLED_APPS: Django runs the command
of the first app that has one, and `registrations` comes after the apps it builds on.
"""
