"""Settings come from one table; a bad value names the setting and what it expects."""

from __future__ import annotations

import pytest

from chalicelib.config import SETTINGS_TABLE, ConfigError, load_settings

BASE = {"EKSGATE_SIGNING_SECRET_ID": "eksgate/signing"}


@pytest.mark.parametrize(
    "name, value, expects",
    [
        ("EKSGATE_MAX_SESSION_SECONDS", "15m", "whole number of seconds"),
        ("EKSGATE_WATCH_TIMEOUT_SECONDS", "-3", "whole number of seconds"),
        ("EKSGATE_MAX_REQUEST_BODY_BYTES", "64KiB", "whole number of bytes"),
        ("EKSGATE_APPROVAL_WAIT_SECONDS", "nan", "number of seconds"),
        ("EKSGATE_AUDIT_RETENTION_DAYS", "", "whole number of days"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_it_expects(name, value, expects):
    with pytest.raises(ConfigError) as error:
        load_settings({**BASE, name: value})
    assert name in error.value.message and repr(value) in error.value.message
    assert expects in error.value.message


def test_caps_are_product_limits():
    settings = load_settings(
        {
            **BASE,
            "EKSGATE_MAX_SESSION_SECONDS": "3600",
            "EKSGATE_WATCH_TIMEOUT_SECONDS": "60",
            "EKSGATE_APPROVAL_WAIT_SECONDS": "40",
            "EKSGATE_AUDITOR_GROUPS": " auditors, ,security ",
        }
    )
    assert settings.max_session_seconds == 900 and settings.watch_timeout_seconds == 24
    assert settings.approval_wait_seconds == 15.0
    assert settings.auditor_groups == ("auditors", "security")


def test_every_setting_has_a_default_that_loads():
    settings = load_settings(BASE)
    assert {s.field for s in SETTINGS_TABLE} <= set(vars(settings))
    assert settings.max_session_seconds == 900 and settings.watch_timeout_seconds == 20


def test_the_signing_secret_is_required():
    with pytest.raises(ConfigError, match="EKSGATE_SIGNING_SECRET_ID"):
        load_settings({})
