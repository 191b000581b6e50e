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
async (exclude) => {
  const context = exclude.length ? {include: [document], exclude: exclude.map(s => [s])} : document;
  const results = await axe.run(context, {resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
  }));
}
"""


def is_govuk_conditional_reveal(violation: Violation) -> bool:
    """GOV.UK Frontend marks a radio that reveals a question with aria-expanded on purpose
    (alphagov/govuk-frontend#979: screen readers announce it; ARIA does not yet allow it on a
    radio, w3c/aria#1404), and axe-core reports that as aria-allowed-attr. That, on such a
    radio, and nothing else, is excused."""
    return violation.rule == "aria-allowed-attr" and all(
        'aria-controls="conditional-' in node["html"]
        and all(
            line.strip().startswith("ARIA attribute is not allowed: aria-expanded=")
            for line in (node.get("summary") or "").splitlines()[1:]
        )
        for node in violation.nodes
    )


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
        # CSS selectors axe-core leaves out: only markup that is not the service's own (the
        # test double of Stripe's card element, which the real Stripe.js draws in its iframe).
        self.axe_exclude: list[str] = []
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
        for raw in self.page.evaluate(_RUN_AXE, self.axe_exclude):
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

    def excuse_govuk_conditional_reveals(self) -> list[Violation]:
        """Take GOV.UK's aria-expanded on radios that reveal a question out of the failing
        violations (``is_govuk_conditional_reveal``), and return them: a journey through such
        a page asserts they were there, so the excuse cannot outlive the reveal."""
        excused = [v for v in self.violations if is_govuk_conditional_reveal(v)]
        self.violations[:] = [v for v in self.violations if v not in excused]
        self.minor_violations.extend(excused)
        return excused

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


class JourneyUi(Ui):
    """A tab for journey tests (JOURNEYS.md): a person starts on the home page and moves only by
    links, buttons and forms. ``goto`` opens the home page or a link taken from an email the person
    received, nothing else; every other page must be reached by ``follow`` / ``press``."""

    def __init__(self, page, live: LiveServer, axe_source: str):
        super().__init__(page, live, axe_source)
        self._links_from_email: set[str] = set()

    def goto(self, path_or_url: str, *, status: int = 200):
        url = path_or_url if "://" in path_or_url else self.live.absolute(path_or_url)
        assert url in (self.live.absolute("/"), self.live.url) or url in self._links_from_email, (
            f"a journey reaches {url} by links, buttons and forms, not by typing its address"
        )
        return super().goto(url, status=status)

    def home(self):
        """Open the home page, as a person does when they start."""
        return self.goto("/")

    def open_link_in_email(self, message, contains: str) -> str:
        """Open the link in ``message`` whose address contains ``contains``, as the person
        would by clicking it in their email."""
        links = [link for link in message.links() if contains in link]
        assert links, f"no link containing {contains!r} in the email {message.subject!r}"
        assert links[0].startswith(self.live.url), f"the email links elsewhere: {links[0]}"
        self._links_from_email.add(links[0])
        self.goto(links[0])
        return links[0]

    # moving by links and buttons

    def follow(self, name: str, *, exact: bool = True, within: str = "body") -> None:
        """Click the (first visible) link named ``name``, inside ``within`` (a CSS selector)."""
        area = self.page.locator(within)
        links = area.get_by_role("link", name=name, exact=exact)
        if not links.count():  # a start button is a link drawn as a button
            links = area.locator("a[role=button]").get_by_text(name, exact=exact)
        assert links.count(), f"no link {name!r} on {self.heading()!r} ({self.page.url})"
        self.click_and_wait(links.first)

    def press(self, name: str, *, exact: bool = True) -> None:
        """Press the (first) button named ``name``."""
        buttons = self.page.get_by_role("button", name=name, exact=exact)
        assert buttons.count(), f"no button {name!r} on {self.heading()!r} ({self.page.url})"
        self.click_and_wait(buttons.first)

    def download(self, name: str, *, exact: bool = True, within: str = "body"):
        """Click the link named ``name`` that downloads a file (no page loads): the download."""
        links = self.page.locator(within).get_by_role("link", name=name, exact=exact)
        assert links.count(), f"no link {name!r} on {self.heading()!r} ({self.page.url})"
        with self.page.expect_download() as download:
            links.first.click()
        return download.value

    def choose(self, label: str, *, exact: bool = True) -> None:
        """Tick a radio button or checkbox by its label."""
        self.page.get_by_label(label, exact=exact).check()

    def choose_in(self, question: str, label: str, *, exact: bool = True) -> None:
        """Tick the option ``label`` of the radios or checkboxes whose legend is ``question``."""
        group = self.page.get_by_role("group", name=question, exact=exact)
        group.get_by_label(label, exact=True).check()

    def select(self, label: str, option: str) -> None:
        self.page.get_by_label(label, exact=True).select_option(label=option)

    def main_text(self) -> str:
        return self.page.locator("main").inner_text()

    # sign in and out, from the home page

    def sign_in_from_home(self, email: str, password: str, totp_secret: str | None = None) -> None:
        self.home()
        self.follow("Sign in", within="header")
        self.fill("Email address", email)
        self.fill("Password", password)
        self.press("Sign in")
        if totp_secret:
            import pyotp

            self.enter_security_code(pyotp.TOTP(totp_secret).now())

    # mistakes

    def error_summary(self) -> list[tuple[str, str]]:
        """The error summary's messages and the ids of the fields they link to."""
        summary = self.page.locator(".govuk-error-summary")
        assert summary.count() == 1, f"no error summary on {self.heading()!r} ({self.page.url})"
        links = summary.locator(".govuk-error-summary__list a")
        return [
            (links.nth(i).inner_text().strip(), (links.nth(i).get_attribute("href") or ""))
            for i in range(links.count())
        ]

    def expect_errors(self, *messages: str) -> list[tuple[str, str]]:
        """The page shows an error summary with each of ``messages`` (substrings), each linking
        to a field on this page; following the first link moves to its field."""
        assert self.page.title().startswith("Error: "), self.page.title()
        found = self.error_summary()
        texts = [text for text, _ in found]
        for message in messages:
            assert any(message in text for text in texts), f"{message!r} not in {texts}"
        for text, href in found:
            assert href.startswith("#"), f"the error {text!r} links to {href!r}, not a field"
            target = self.page.locator(f"[id='{href[1:]}']")
            assert target.count() == 1, f"the error {text!r} links to #{href[1:]}, not on the page"
        first_text, first_href = found[0]
        self.page.locator(".govuk-error-summary__list a").first.click()
        focused = self.page.evaluate("document.activeElement && document.activeElement.id")
        field_id = first_href[1:]
        assert focused == field_id or self.page.url.endswith(first_href), (
            f"following {first_text!r} did not reach #{field_id} (focus on {focused!r})"
        )
        return found
