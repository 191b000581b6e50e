"""Orders is built on by invoices, never the other way round: a completed call-off is billed
through ``marketplace.orders.signals.call_off_completed``, which invoices subscribes to."""

from __future__ import annotations

import ast
from pathlib import Path

import marketplace.orders

ORDERS = Path(marketplace.orders.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_module_of_orders_imports_invoices_even_inside_a_function():
    importing = sorted(
        str(path.relative_to(ORDERS))
        for path in ORDERS.rglob("*.py")
        if any(name.startswith("marketplace.invoices") for name in _imported_modules(path))
    )
    assert importing == []


def test_invoices_subscribes_to_completed_call_offs():
    from marketplace.invoices.services import completion
    from marketplace.orders import signals

    receivers = [ref() for ref in signals.call_off_completed.receivers.values()]
    assert completion._bill_completed_call_off in receivers


def test_orders_services_leave_outcome_terms_to_outcomes_through_signals():
    # Placing with payment-by-results terms asks outcomes to check and add them
    # (``signals.checking_outcome_terms``, ``signals.call_off_placed_with_terms``).
    services = sorted((ORDERS / "services").glob("*.py")) or [ORDERS / "services.py"]
    importing = sorted(
        path.name
        for path in services
        if any(name.startswith("marketplace.outcomes") for name in _imported_modules(path))
    )
    assert importing == []
