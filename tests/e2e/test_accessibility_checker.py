"""The accessibility check the journeys rely on finds real violations (it is not a no-op)."""

from __future__ import annotations

import pytest

from tests.e2e.browser import Ui

pytestmark = pytest.mark.e2e

BAD_PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>Broken on purpose</title></head>
<body><main>
  <h1>Broken on purpose</h1>
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
  <a href="/somewhere"></a>
  <p style="color:#777;background:#888">Grey on grey</p>
</main></body></html>"""


def test_axe_reports_serious_and_critical_violations(browser, live_server, axe_source):
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        tab = Ui(page, live_server, axe_source)
        page.set_content(BAD_PAGE)

        tab.audit()

        found = {(v.rule, v.impact) for v in tab.violations}
        assert {
            ("image-alt", "critical"),
            ("link-name", "serious"),
            ("color-contrast", "serious"),
        } <= found
        assert all(v.nodes for v in tab.violations)
        assert "image-alt" in "\n".join(v.describe() for v in tab.violations)
    finally:
        context.close()


def test_a_page_loaded_without_a_check_is_reported(browser, live_server, axe_source):
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        tab = Ui(page, live_server, axe_source)

        page.goto(live_server.absolute("/cookies"))  # never checked
        page.goto(live_server.absolute("/privacy#content"))
        tab.audit()
        assert tab.unaudited == [live_server.absolute("/cookies")]

        page.goto(live_server.absolute("/accessibility"))
        tab.check_every_page_was_audited()
        assert tab.unaudited == [
            live_server.absolute("/cookies"),
            live_server.absolute("/accessibility"),
        ]
    finally:
        context.close()
