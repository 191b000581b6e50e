"""The rendered-fragment cache: same key, same HTML; a different key renders again; bounded."""

from __future__ import annotations

from marketplace.core.cache.fragments import FragmentCache


def test_renders_once_per_key_and_evicts_the_oldest():
    cache = FragmentCache(max_entries=2)
    calls = []

    def render(text):
        def caller():
            calls.append(text)
            return f"<p>{text}</p>"

        return caller

    assert cache("a", caller=render("a")) == "<p>a</p>"
    assert cache("a", caller=render("not used")) == "<p>a</p>"
    assert cache("b", caller=render("b")) == "<p>b</p>"
    assert cache("c", caller=render("c")) == "<p>c</p>"  # evicts "a"
    assert cache("a", caller=render("a again")) == "<p>a again</p>"
    assert calls == ["a", "b", "c", "a again"]


def test_navigation_highlights_the_current_page(client, login):
    from marketplace.accounts.models import Role
    from marketplace.core.db import commit
    from tests.factories import make_member

    user = make_member(Role.BUYER)
    commit()
    login(user)
    home = client.get("/").get_data(as_text=True)
    calloffs = client.get("/call-offs/").get_data(as_text=True)

    def active_item(html):
        nav = html.split('class="govuk-service-navigation__list"', 1)[1].split("</ul>", 1)[0]
        return nav.split("govuk-service-navigation__item--active", 1)[1][:400]

    assert "Home" in active_item(home) and "Call-offs" not in active_item(home).split("</li>")[0]
    assert "Call-offs" in active_item(calloffs).split("</li>")[0]
