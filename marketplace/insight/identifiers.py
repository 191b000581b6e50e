"""Open-data identifiers: the OCDS ocid of the dynamic market, of each call-off and of each
further competition. One place, so the contracts register, the OCDS feed and every page name a
contract the same way. The prefix is configuration (``OCDS_OCID_PREFIX``)."""

from __future__ import annotations

from flask import current_app

DYNAMIC_MARKET_SUFFIX = "DPS"


def ocid_prefix() -> str:
    return current_app.config["OCDS_OCID_PREFIX"]


def dynamic_market_ocid() -> str:
    """The one ocid of the dynamic market itself (its tender and every admission to a lot)."""
    return f"{ocid_prefix()}-{DYNAMIC_MARKET_SUFFIX}"


def call_off_ocid(reference: str) -> str:
    """A call-off's own ocid, from its reference (e.g. ``ocds-rehab1-CO-000123``)."""
    return f"{ocid_prefix()}-{reference}"


def competition_ocid(reference: str) -> str:
    """A further competition's ocid, from its reference (e.g. ``ocds-rehab1-FC-000007``)."""
    return f"{ocid_prefix()}-{reference}"
