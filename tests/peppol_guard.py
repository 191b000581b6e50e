"""Every UBL invoice and credit note the suite makes is validated against Peppol BIS Billing 3.0.

``marketplace.invoices.ubl`` sends ``document_built`` with each document it returns; while the
suite runs, this guard validates each one against both official rule sets (CEN EN 16931 and
PEPPOL, with the offline validator vendored in ``tests/peppol``), whoever made it: a page, the
API, the demo loader or a property-based test. A fatal failure fails the test that made the
document, in the phase that made it (set-up, the test or tear-down).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peppol"))

from validate_ubl import Failure, validate  # noqa: E402

from marketplace.invoices.ubl import document_built  # noqa: E402


class PeppolGuard:
    def __init__(self) -> None:
        self.validated = 0
        self._failures: list[tuple[bytes, list[Failure]]] = []
        self._lock = threading.Lock()

    def install(self) -> None:
        document_built.connect(self._check, weak=False)

    def close(self) -> None:
        document_built.disconnect(self._check)

    def _check(self, sender, *, document: bytes) -> None:
        fatal = [failure for failure in validate(document) if failure.flag == "fatal"]
        with self._lock:
            self.validated += 1
            if fatal:
                self._failures.append((document, fatal))

    def take_failures(self) -> list[str]:
        with self._lock:
            failures, self._failures = self._failures, []
        return [
            "\n".join(
                [
                    f"UBL document failing {len(fatal)} Peppol rule(s):",
                    *(f"  {f.id}: {f.text} at {f.location}" for f in fatal),
                    document.decode("utf-8", "replace"),
                ]
            )
            for document, fatal in failures
        ]
