"""The browser side of the e2e tests: a tab that checks every page it loads with axe-core."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from urllib.parse import urldefrag, urljoin

from flask import Flask

from tests.smtp_sink import SmtpSink

FAILING_IMPACTS = {"serious", "critical"}


@dataclass
class LiveServer:
    app: Flask
    url: str
    smtp: SmtpSink

    def absolute(self, path: str) -> str:
        return urljoin(self.url + "/", path.lstrip("/"))


@dataclass
class Violation:
    url: str
    title: str
    rule: str
    impact: str
    help: str
    help_url: str
    nodes: list[dict] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"{self.impact.upper()} {self.rule}: {self.help} ({self.help_url})",
            f"  page: {self.title!r} {self.url}",
        ]
        for node in self.nodes:
            lines.append(f"  element: {' '.join(map(str, node['target']))}")
            lines.append(f"    html: {node['html'][:300]}")
            if node.get("summary"):
                summary = node["summary"].replace("\n", "\n      ")
                lines.append(f"    why: {summary}")
        return "\n".join(lines)


_RUN_AXE = """
async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}
"""


class Ui:
    """A browser tab that runs axe-core on every page it loads."""

    def __init__(self, page, live: LiveServer, axe_source: str):
        self.page = page
        self.live = live
        self._axe_source = axe_source
        self._loads: list[str] = []  # main-frame documents, in order
        self._audited = 0
        self.unaudited: list[str] = []
        self.violations: list[Violation] = []
        self.minor_violations: list[Violation] = []
        self.pages_audited: list[str] = []
        page.on("framenavigated", self._navigated)

    def _navigated(self, frame) -> None:
        if frame == self.page.main_frame and frame.url != "about:blank":
            self._loads.append(frame.url)

    # navigation

    def goto(self, path_or_url: str, *, status: int = 200):
        """Open a page, check its status code and its accessibility."""
        url = path_or_url if "://" in path_or_url else self.live.absolute(path_or_url)
        response = self.page.goto(url)
        assert response is not None, f"no response for {url}"
        assert response.status == status, (
            f"{url} answered {response.status}, expected {status}: {self.heading()!r}"
        )
        self.audit()
        return response

    def click_and_wait(self, locator) -> None:
        """Click something that loads a new page (a link or a form's button), then check it."""
        with self.page.expect_navigation():
            locator.click()
        self.audit()

    def press_button(self, name: str) -> None:
        self.click_and_wait(self.page.get_by_role("button", name=name, exact=True))

    def audit(self) -> None:
        """Run axe-core on the page that is showing now."""
        self.page.wait_for_load_state("load")
        url = self.page.url
        pending = self._loads[self._audited :]
        # Every document loaded since the last check but the current one was never checked
        # (a change of #fragment only is not a new page).
        for loaded, following in pairwise(pending):
            if urldefrag(loaded).url != urldefrag(following).url:
                self.unaudited.append(loaded)
        self._audited = len(self._loads)

        self.page.add_script_tag(content=self._axe_source)
        title = self.page.title()
        self.pages_audited.append(f"{title} ({url})")
        for raw in self.page.evaluate(_RUN_AXE):
            violation = Violation(
                url=url,
                title=title,
                rule=raw["id"],
                impact=raw["impact"] or "",
                help=raw["help"],
                help_url=raw["helpUrl"],
                nodes=raw["nodes"],
            )
            if violation.impact in FAILING_IMPACTS:
                self.violations.append(violation)
            else:
                self.minor_violations.append(violation)

    def check_every_page_was_audited(self) -> None:
        pending = self._loads[self._audited :]
        self.unaudited.extend(urldefrag(url).url for url in pending)

    # reading the page

    def heading(self) -> str:
        headings = self.page.locator("h1")
        return headings.first.inner_text().strip() if headings.count() else ""

    def navigation(self) -> list[str]:
        """The service navigation's items, in order."""
        links = self.page.locator("#service-navigation a.govuk-service-navigation__link")
        return [text.strip() for text in links.all_inner_texts()]

    def navigation_links(self) -> list[tuple[str, str]]:
        links = self.page.locator("#service-navigation a.govuk-service-navigation__link")
        return [
            (links.nth(i).inner_text().strip(), links.nth(i).get_attribute("href"))
            for i in range(links.count())
        ]

    def banner(self) -> str:
        banners = self.page.locator(".govuk-notification-banner")
        return " ".join(text.strip() for text in banners.all_inner_texts())

    # actions every journey needs

    def fill(self, label: str, value: str) -> None:
        self.page.get_by_label(label, exact=True).fill(value)

    def sign_in(self, email: str, password: str) -> None:
        self.goto("/sign-in")
        self.fill("Email address", email)
        self.fill("Password", password)
        self.press_button("Sign in")

    def enter_security_code(self, code: str) -> None:
        assert self.heading() == "Enter your security code", self.heading()
        self.fill("Security code", code)
        self.press_button("Continue")

    def sign_out(self) -> None:
        self.press_button("Sign out")
