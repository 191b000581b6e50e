"""Charts (marketplace.core.charts): pygal's SVG made CSP-clean and accessible, with a data
table carrying exactly the data."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from lxml import etree

from marketplace.core.charts import Series, bar_chart, line_chart

FORBIDDEN = re.compile(r"<style|<script|style=|\son[a-z]+\s*=|xlink|href=", re.IGNORECASE)


def pounds(value) -> str:
    return f"£{float(value):,.2f}"


def percent(value) -> str:
    return f"{float(value):.1f}%"


def a_bar_chart(**overrides):
    arguments = {
        "title": "Spend by region",
        "description": "Committed, invoiced and paid for each region.",
        "label_heading": "Region",
        "labels": ["North East", "Wales <& Borders>"],
        "series": [
            Series("Committed", [Fraction(125000, 100), Fraction(40000, 100)]),
            Series("Invoiced", [600, 0]),
            Series("Paid", [Fraction(105001, 100), None]),
        ],
        "format_value": pounds,
        "empty_text": "None",
    }
    return bar_chart("spend-by-region", **{**arguments, **overrides})


def a_line_chart():
    return line_chart(
        "vcse-share-trend",
        title="VCSE share by half-year",
        description="The VCSE share of paid spend against the aim.",
        label_heading="Half-year",
        labels=["Apr to Sep 2025", "Oct 2025 to Mar 2026", "Apr to Sep 2026"],
        series=[
            Series("VCSE share", [Fraction(100, 3), None, Fraction(25, 2)]),
            Series("Aim", [10, 10, 10], aim=True),
        ],
        format_value=percent,
        empty_text="No spend",
    )


@pytest.mark.parametrize("make", [a_bar_chart, a_line_chart])
def test_no_style_script_event_or_link_in_any_chart(make):
    chart = make()
    assert not FORBIDDEN.search(chart.svg), FORBIDDEN.search(chart.svg)
    assert "<!--" not in chart.svg


@pytest.mark.parametrize("make", [a_bar_chart, a_line_chart])
def test_the_svg_is_an_image_named_by_its_own_title_and_description(make):
    chart = make()
    root = etree.fromstring(chart.svg.encode())
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert root.get("role") == "img"
    assert root.get("id") == chart.id
    assert root.get("aria-labelledby") == f"{chart.id}-title {chart.id}-desc"
    titles = root.findall("svg:title", ns)
    descs = root.findall("svg:desc", ns)
    assert [t.get("id") for t in titles] == [f"{chart.id}-title"]
    assert titles[0].text == chart.title
    assert [d.get("id") for d in descs] == [f"{chart.id}-desc"]
    assert descs[0].text == chart.description
    # Only one title and one description in the whole drawing, and no id but the three.
    assert len(root.findall(".//svg:title", ns)) == 1
    assert len(root.findall(".//svg:desc", ns)) == 1
    ids = [e.get("id") for e in root.iter() if isinstance(e.tag, str) and e.get("id")]
    assert sorted(ids) == sorted([chart.id, f"{chart.id}-title", f"{chart.id}-desc"])


def test_the_same_data_gives_the_same_svg():
    """A stable id and no timestamps: the chart is the same for the same data."""
    assert a_bar_chart().svg == a_bar_chart().svg


def test_the_table_holds_the_data_formatted():
    chart = a_bar_chart()
    assert chart.labels == ["North East", "Wales <& Borders>"]
    assert [s.name for s in chart.series] == ["Committed", "Invoiced", "Paid"]
    assert chart.rows == [
        ["£1,250.00", "£600.00", "£1,050.01"],
        ["£400.00", "£0.00", "None"],
    ]
    line = a_line_chart()
    assert line.rows == [["33.3%", "10.0%"], ["No spend", "10.0%"], ["12.5%", "10.0%"]]


def test_labels_are_escaped_in_the_svg():
    chart = a_bar_chart()
    assert "Wales &lt;&amp; Borders&gt;" in chart.svg
    etree.fromstring(chart.svg.encode())  # well-formed


def test_series_keep_their_colour_without_css():
    """Colours are presentation attributes, so the chart reads with CSS off or printed."""
    chart = a_line_chart()
    root = etree.fromstring(chart.svg.encode())
    series = [e for e in root.iter() if "series" in (e.get("class") or "").split()]
    assert series and all(e.get("fill") and e.get("stroke") for e in series)
    dashed = [e for e in root.iter() if e.get("stroke-dasharray")]
    assert dashed, "the aim is drawn dashed"


def test_a_series_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError):
        a_bar_chart(series=[Series("Paid", [1])])
    with pytest.raises(ValueError):
        bar_chart(
            "Bad Id",
            title="t",
            description="d",
            label_heading="x",
            labels=[],
            series=[],
            format_value=str,
        )


def test_chart_with_table_macro_renders_the_table_beside_the_svg(app):
    from flask import render_template_string

    chart = a_bar_chart(totals=["Total", "£1,650.00", "£600.00", "£1,050.01"])
    with app.test_request_context():
        html = render_template_string(
            '{% from "charts.html" import chart_with_table %}{{ chart_with_table(chart) }}',
            chart=chart,
        )
    assert html.count("<svg") == 1
    assert 'class="govuk-table"' in html
    assert "<caption" in html and "Spend by region: the figures" in html
    cells = re.findall(r'<td class="govuk-table__cell[^"]*">(?:<strong>)?([^<]*)<', html)
    assert cells == [
        "£1,250.00",
        "£600.00",
        "£1,050.01",
        "£400.00",
        "£0.00",
        "None",
        "£1,650.00",
        "£600.00",
        "£1,050.01",
    ]
    assert not FORBIDDEN.search(html)
