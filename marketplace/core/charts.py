"""Charts as accessible, CSP-clean SVG, each returned with the data table shown beside it.

pygal draws the chart; what it emits is then made fit for our pages. pygal always writes a
``<style>`` element, a ``<script>`` element (or its reference), ``style=`` attributes (the
tooltip), ids of its own (the same on every chart, so two charts on a page would repeat them),
xlink references and comments. Our CSP allows no inline style or script, and a page must not
repeat an id, so all of them are removed. The colours pygal would have put in its ``<style>``
become SVG presentation attributes (``fill``, ``stroke``: not styles, so the CSP allows them),
so a chart still reads when printed or with CSS off; the site's stylesheet
(``assets/scss/_charts.scss``) only sets the size and the type.

Invariant: the table carries every number the chart draws, formatted by the same function, so
a reader who cannot see the chart (screen reader, CSS off, print in black and white) loses
nothing; the chart is ``role="img"`` named by its own ``<title>`` and ``<desc>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pygal
from lxml import etree
from markupsafe import Markup

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
CHART_ID = re.compile(r"^[a-z][a-z0-9-]{0,60}$")

# GOV.UK Design System colours: distinguishable, and dark enough on white for text and lines.
PALETTE = ("#1d70b8", "#00703c", "#f47738", "#4c2c92", "#d4351c", "#28a197", "#912b88")
AIM_COLOUR = "#0b0c0c"
TEXT_COLOUR = "#0b0c0c"
GUIDE_COLOUR = "#b1b4b6"

Number = int | Decimal | Fraction | float


@dataclass(frozen=True)
class Series:
    """One series of a chart: a name (its column in the table) and one value per label
    (``None``: no value, drawn as a gap and shown as ``empty_text`` in the table)."""

    name: str
    values: Sequence[Number | None]
    # An aim or target: drawn as a dashed black line, after the data.
    aim: bool = False


@dataclass(frozen=True)
class Chart:
    """An SVG chart and its data table (a GOV.UK table with a caption, rendered beside it by
    the ``chart_with_table`` macro in ``templates/charts.html``)."""

    id: str
    title: str
    description: str
    svg: Markup
    caption: str
    label_heading: str
    labels: list[str]
    series: list[Series]
    # rows[i][j]: series j's value for labels[i], as text.
    rows: list[list[str]]
    # A last row of totals (label, then one cell per series), where the figures add up.
    totals: list[str] | None = None


def _number(value: Number | None) -> float | None:
    return None if value is None else float(value)


def _table(
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Callable[[Number], str],
    empty_text: str,
) -> list[list[str]]:
    return [
        [empty_text if s.values[i] is None else format_value(s.values[i]) for s in series]
        for i in range(len(labels))
    ]


def _config(**extra) -> dict:
    # No JavaScript at all (js=[]): pygal then only links its tooltip script, which is removed
    # with the rest below anyway. No prefix: the CSS rules pygal would scope by id are gone.
    return {
        "js": [],
        "no_prefix": True,
        "disable_xml_declaration": True,
        "show_legend": True,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "truncate_legend": -1,
        "truncate_label": -1,
        "print_values": False,
        "width": 800,
        "height": 420,
        "margin": 16,
        "x_label_rotation": 0,
        **extra,
    }


def _colour_for(classes: str, colours: dict[str, str]) -> str | None:
    for name in classes.split():
        if name in colours:
            return colours[name]
    return None


def _clean(
    root: etree._Element,
    chart_id: str,
    title: str,
    description: str,
    series: Sequence[Series],
) -> Markup:
    """pygal's tree made CSP-clean and accessible (see the module's docstring)."""
    # Elements that must go: style, script, comments, pygal's own title and the tooltip layer
    # (it only works with pygal's script), and the per-point descriptions it feeds.
    doomed = []
    for element in root.iter():
        if not isinstance(element.tag, str):  # a comment or processing instruction
            doomed.append(element)
            continue
        tag = etree.QName(element).localname
        classes = element.get("class", "")
        if (
            tag in ("style", "script", "defs")
            or (tag in ("title", "desc") and element is not root)
            or "tooltip-overlay" in classes.split()
        ):
            doomed.append(element)
    for element in doomed:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)

    colours = {f"color-{i}": PALETTE[i % len(PALETTE)] for i in range(len(series))}
    for i, s in enumerate(series):
        if s.aim:
            colours[f"color-{i}"] = AIM_COLOUR
    aims = {f"color-{i}" for i, s in enumerate(series) if s.aim}

    for element in root.iter():
        # Every attribute that is a style, a script, a link or an id of pygal's goes.
        for name in list(element.attrib):
            local = etree.QName(name).localname.lower()
            namespace = etree.QName(name).namespace
            if (
                local == "style"
                or local.startswith("on")
                or namespace == XLINK_NS
                or local == "href"
                or (local == "id" and element is not root)
            ):
                del element.attrib[name]
        tag = etree.QName(element).localname
        classes = element.get("class", "").split()
        # Colours as presentation attributes, inherited by a series' shapes from its group.
        if "series" in classes or "legend" in classes or tag == "rect":
            colour = _colour_for(" ".join(classes), colours)
            if colour:
                element.set("fill", colour)
                element.set("stroke", colour)
        if tag == "path" and set(_series_classes(element)) & aims:
            element.set("stroke-dasharray", "8 6")
        if tag == "path" and "nofill" in classes:
            element.set("fill", "none")
            element.set("stroke-width", "3")
        if tag == "path" and "guide" in classes:
            element.set("stroke", GUIDE_COLOUR)
            element.set("fill", "none")
        elif tag == "path" and "line" in classes and "reactive" not in classes:
            element.set("stroke", TEXT_COLOUR)
            element.set("fill", "none")
        if tag == "rect" and "background" in classes:
            element.set("fill", "#ffffff")
            element.set("stroke", "none")
        if tag == "text":
            element.set("fill", TEXT_COLOUR)
            element.set("stroke", "none")
            # What pygal's stylesheet said: value labels end at the y axis, centre on the x.
            axis = _axis_of(element)
            if axis == "y":
                element.set("text-anchor", "end")
            elif axis == "x" and not element.get("transform"):
                element.set("text-anchor", "middle")

    root.set("id", chart_id)
    root.set("class", "app-chart__svg")
    root.set("role", "img")
    root.set("aria-labelledby", f"{chart_id}-title {chart_id}-desc")
    root.set("focusable", "false")
    title_element = etree.Element(f"{{{SVG_NS}}}title", id=f"{chart_id}-title")
    title_element.text = title
    desc_element = etree.Element(f"{{{SVG_NS}}}desc", id=f"{chart_id}-desc")
    desc_element.text = description
    root.insert(0, desc_element)
    root.insert(0, title_element)
    # The xlink namespace is declared on the root even with no xlink attribute left: a copy
    # without it, so no "xlink" appears in the markup.
    clean = etree.Element(f"{{{SVG_NS}}}svg", nsmap={None: SVG_NS})
    for name, value in root.attrib.items():
        clean.set(name, value)
    clean.extend(list(root))
    # Safe: serialised by lxml, which escapes every text and attribute value (labels are
    # people's organisation names), and nothing executable is left in the tree.
    return Markup(etree.tostring(clean, encoding="unicode"))  # noqa: S704


def _ancestor_classes(element: etree._Element) -> list[list[str]]:
    found = []
    parent = element.getparent()
    while parent is not None:
        found.append(parent.get("class", "").split())
        parent = parent.getparent()
    return found


def _series_classes(element: etree._Element) -> list[str]:
    for classes in _ancestor_classes(element):
        if "series" in classes:
            return classes
    return []


def _axis_of(element: etree._Element) -> str | None:
    for classes in _ancestor_classes(element):
        if "axis" in classes:
            return "x" if "x" in classes else "y" if "y" in classes else None
    return None


def _check(chart_id: str, labels: Sequence[str], series: Sequence[Series]) -> None:
    if not CHART_ID.match(chart_id):
        raise ValueError(f"chart id {chart_id!r}: lower-case letters, digits and hyphens")
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")


def bar_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    label_heading: str,
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Callable[[Number], str],
    axis_format: Callable[[float], str] | None = None,
    empty_text: str = "None",
    horizontal: bool = True,
    totals: list[str] | None = None,
) -> Chart:
    """Grouped bars, one group per label and one bar per series (horizontal by default, so long
    labels such as region names stay readable)."""
    _check(chart_id, labels, series)
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    height = max(300, 80 + 22 * len(labels) * max(1, len(series)))
    chart = kind(
        **_config(height=min(height, 2400)),
        value_formatter=axis_format or (lambda v: format_value(v)),
    )
    # pygal draws a horizontal chart's first label at the bottom: reversed, it reads top down
    # in the table's order.
    order = list(reversed(range(len(labels)))) if horizontal else list(range(len(labels)))
    chart.x_labels = [labels[i] for i in order]
    for s in series:
        chart.add(s.name, [_number(s.values[i]) for i in order])
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        svg=_clean(chart.render_tree(), chart_id, title, description, series),
        caption=title,
        label_heading=label_heading,
        labels=list(labels),
        series=list(series),
        rows=_table(labels, series, format_value, empty_text),
        totals=totals,
    )


def line_chart(
    chart_id: str,
    *,
    title: str,
    description: str,
    label_heading: str,
    labels: Sequence[str],
    series: Sequence[Series],
    format_value: Callable[[Number], str],
    axis_format: Callable[[float], str] | None = None,
    empty_text: str = "None",
    include_zero: bool = True,
) -> Chart:
    """Lines over ``labels`` (periods, in order), an aim as a dashed line of its own."""
    _check(chart_id, labels, series)
    # Room on the right for the last period's label, centred on the last point.
    extra: dict = {"margin_right": 80}
    if include_zero:
        extra["range"] = (0, None)
    if len(labels) > 4:
        extra["x_label_rotation"] = 30
    chart = pygal.Line(
        **_config(**extra),
        value_formatter=axis_format or (lambda v: format_value(v)),
        allow_interruptions=True,
        dots_size=4,
    )
    chart.x_labels = list(labels)
    for s in series:
        chart.add(s.name, [_number(v) for v in s.values], show_dots=not s.aim)
    return Chart(
        id=chart_id,
        title=title,
        description=description,
        svg=_clean(chart.render_tree(), chart_id, title, description, series),
        caption=title,
        label_heading=label_heading,
        labels=list(labels),
        series=list(series),
        rows=_table(labels, series, format_value, empty_text),
    )
