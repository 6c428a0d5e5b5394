"""Hit-counter badges: the flat SVG (escaping, well-formed XML, widths), colors, labels, and
shields.io's endpoint JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tally import badges

SVG = "{http://www.w3.org/2000/svg}"
SHAPES = {"svg", "title", "linearGradient", "stop", "clipPath", "g", "rect", "text"}

# shields.io's named colors, written out again rather than read from the module.
NAMED = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "yellowgreen": "#a4a61d",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "grey": "#555",
    "gray": "#555",
    "lightgrey": "#9f9f9f",
    "lightgray": "#9f9f9f",
    "success": "#4c1",
    "important": "#fe7d37",
    "critical": "#e05d44",
    "informational": "#007ec6",
    "inactive": "#9f9f9f",
}

HOSTILE = [
    "<script>alert(1)</script>",
    '"onload="x',
    "'onload='x",
    '"><svg onload=alert(1)>',
    "]]><![CDATA[",
    "&amp; &lt; &#x3c; &",
    "<!--",
    "<?xml-stylesheet href='x'?>",
]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def parts(root: ET.Element) -> tuple[int, int]:
    """The widths of the label's and the message's rectangles."""
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("fill", "").startswith("#")]
    rects = [r for r in rects if r.get("rx") is None]  # not the clip path's
    label, message = rects
    assert label.get("x") is None
    assert int(message.get("x")) == int(label.get("width"))
    return int(label.get("width")), int(message.get("width"))


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("aria-hidden") is None]


# --- escaping and well-formed XML ----------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_hostile_label_or_message_is_only_ever_text(hostile):
    svg = badges.render_svg(hostile, hostile, "#e05d44")

    root = parse(svg)
    assert {el.tag.removeprefix(SVG) for el in root.iter()} <= SHAPES
    assert root.find(f"{SVG}title").text == f"{hostile}: {hostile}"
    assert root.get("aria-label") == f"{hostile}: {hostile}"
    assert root.get("onload") is None
    assert texts(root) == [hostile, hostile]
    for text in root.iter(f"{SVG}text"):
        assert set(text.attrib) <= {"x", "y", "textLength", "lengthAdjust", "fill"} | {
            "fill-opacity",
            "aria-hidden",
        }
    assert "<script" not in svg
    assert '"onload' not in svg


def test_all_five_xml_specials_are_escaped_everywhere():
    svg = badges.render_svg("&<>\"'", "&<>\"'", "blue")

    # label and message, each in the aria-label, the title, the text and its shadow
    assert svg.count("&amp;&lt;&gt;&quot;&#39;") == 8
    assert parse(svg).get("aria-label") == "&<>\"': &<>\"'"


def test_the_svg_is_well_formed_and_shields_shaped():
    root = parse(badges.render_svg("hits", "1234", badges.color("brightgreen")))

    assert root.get("height") == "20"
    assert root.get("role") == "img"
    assert root.get("aria-label") == "hits: 1234"
    assert root.find(f"{SVG}title").text == "hits: 1234"
    clip = root.find(f"{SVG}clipPath")
    assert clip.find(f"{SVG}rect").get("rx") == "3"
    assert root.find(f"{SVG}g").get("clip-path") == f"url(#{clip.get('id')})"
    fills = [r.get("fill") for r in root.iter(f"{SVG}rect")]
    assert "#555" in fills and "#4c1" in fills
    assert any(f.startswith("url(#") for f in fills)  # the gradient overlay
    group = root.findall(f"{SVG}g")[1]
    assert "Verdana" in group.get("font-family") and "DejaVu Sans" in group.get("font-family")
    assert group.get("font-size") == "11"
    shadow, text = root.findall(f".//{SVG}text")[:2]
    assert (shadow.get("y"), text.get("y")) == ("15", "14")  # the 1px shadow below
    assert shadow.get("aria-hidden") == "true"


def test_any_character_renders_as_well_formed_xml():
    chars = [chr(c) for c in range(0x3000)]
    chars += ["\ud800", "\udfff", "\ufeff", "\ufffe", "\uffff", "\U0001f389", "\U0010ffff"]
    for char in chars:
        try:
            parse(badges.render_svg(f"a{char}b", char, "blue"))
        except ET.ParseError:
            pytest.fail(f"U+{ord(char):04X} makes the SVG malformed")


def test_control_characters_are_dropped_and_whitespace_collapsed():
    root = parse(badges.render_svg("a\tb\u202ec\x00d", " x\u2028\n y \x7f", "blue"))

    assert texts(root) == ["a bcd", "x y"]
    assert root.get("aria-label") == "a bcd: x y"


def test_an_empty_label_leaves_only_the_message_in_the_title():
    root = parse(badges.render_svg("", "7", "blue"))

    assert root.get("aria-label") == "7"
    assert texts(root) == ["7"]


# --- widths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label, message",
    [("hits", "0"), ("a", "1"), ("views", "-9223372036854775808"), ("WWWW", "iiii"), ("", "")],
)
def test_the_svg_width_is_the_sum_of_the_two_parts(label, message):
    root = parse(badges.render_svg(label, message, "blue"))

    left, right = parts(root)
    assert int(root.get("width")) == left + right
    assert root.get("viewBox") == f"0 0 {left + right} 20"


@pytest.mark.parametrize("short, long", [("a", "aaaa"), ("1", "12345"), ("iiii", "WWWW")])
def test_each_part_grows_with_its_text(short, long):
    label_short, message_short = parts(parse(badges.render_svg(short, short, "blue")))
    label_long, message_long = parts(parse(badges.render_svg(long, long, "blue")))

    assert label_long > label_short and message_long > message_short
    assert parts(parse(badges.render_svg(long, short, "blue")))[1] == message_short


def test_text_is_pinned_inside_its_part_with_padding_on_both_sides():
    root = parse(badges.render_svg("total", badges.format_value(-(2**63)), "red"))
    left, right = parts(root)
    shadow_l, label, shadow_m, message = root.findall(f".//{SVG}text")

    for text, start, width in ((label, 0, left), (message, left, right)):
        length = float(text.get("textLength"))
        x = float(text.get("x"))
        assert x == start + width / 2
        assert length + 2 * badges.PADDING <= width < length + 2 * badges.PADDING + 1
    assert float(message.get("textLength")) >= 19 * 7 + 4  # 19 digits and a minus sign
    assert shadow_m.get("x") == message.get("x") and shadow_l.get("x") == label.get("x")


def test_letters_outside_the_table_still_get_room():
    narrow = parts(parse(badges.render_svg("ab", "1", "blue")))[0]
    for other in ("éü", "жЯ", "λΣ", "→★", "訪問", "🎉🎉"):
        assert parts(parse(badges.render_svg(other, "1", "blue")))[0] >= narrow, other


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, text",
    [(0, "0"), (7, "7"), (1234567, "1234567"), (-(2**63), "-9223372036854775808")],
)
def test_values_render_exactly(n, text):
    assert badges.format_value(n) == text


@pytest.mark.parametrize("n", [True, 1.0, "1", None])
def test_only_ints_are_values(n):
    with pytest.raises(TypeError):
        badges.format_value(n)


# --- colors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, hex_color", NAMED.items())
def test_every_named_color_maps(name, hex_color):
    assert badges.color(name) == hex_color
    assert badges.color(name.upper()) == hex_color
    assert badges.shield_color(name) == name
    assert badges.shield_color(name.title()) == name
    assert badges.render_svg("a", "b", name).count(f'fill="{hex_color}"') >= 1


def test_the_module_names_no_other_colors():
    assert badges.NAMED_COLORS == NAMED


def test_no_color_is_blue():
    assert badges.color(None) == "#007ec6" == badges.DEFAULT_COLOR
    assert badges.shield_color(None) == "blue"


@pytest.mark.parametrize(
    "value, hex_color",
    [
        ("fff", "#fff"),
        ("FFF", "#fff"),
        ("a1B", "#a1b"),
        ("ff69b4", "#ff69b4"),
        ("FF69B4", "#ff69b4"),
        ("Ff69B4", "#ff69b4"),
        ("000000", "#000000"),
    ],
)
def test_hex_colors_of_3_or_6_digits_any_case(value, hex_color):
    assert badges.color(value) == hex_color
    assert badges.shield_color(value) == hex_color[1:]


@pytest.mark.parametrize(
    "value",
    [
        "#fff",
        "#ff69b4",
        "red;",
        "red ",
        " red",
        "javascript:",
        "javascript:alert(1)",
        "ff",
        "ffff",
        "fffff",
        "fffffff",
        "",
        "ggg",
        "fff\n",
        "rgb(1,2,3)",
        "url(#x)",
        '"/><script>',
        "purple",
        "\uff46\uff46\uff46",  # fullwidth fff
        "٣٣٣",  # Arabic-Indic digits
    ],
)
def test_other_colors_are_refused_with_one_line_naming_what_is_accepted(value):
    for function in (badges.color, badges.shield_color):
        with pytest.raises(ValueError) as raised:
            function(value)
        message = str(raised.value)
        assert "\n" not in message
        assert "brightgreen" in message and "informational" in message and "hex" in message
        assert "#" not in value or value not in message  # the input is not echoed


def test_render_takes_a_hex_color_or_what_color_takes_and_nothing_else():
    assert 'fill="#4c1"' in badges.render_svg("a", "b", "#4C1")
    assert 'fill="#ff69b4"' in badges.render_svg("a", "b", "ff69b4")
    assert 'fill="#e05d44"' in badges.render_svg("a", "b", "red")
    for bad in ('#fff"/><script>', "#ff", "red;", "#"):
        with pytest.raises(ValueError):
            badges.render_svg("a", "b", bad)


@pytest.mark.parametrize(
    "value, text",
    [("fff", "#333"), ("dfb317", "#fff"), ("4c1", "#fff"), ("lightgrey", "#fff"), ("ff0", "#333")],
)
def test_message_text_is_dark_on_light_colors(value, text):
    root = parse(badges.render_svg("a", "b", badges.color(value)))

    assert root.findall(f".//{SVG}text")[3].get("fill") == text
    assert root.findall(f".//{SVG}text")[1].get("fill") == "#fff"  # the label, on grey


# --- labels ---------------------------------------------------------------------------------


def test_no_label_is_the_default():
    assert badges.label(None, "hits") == "hits"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("views", "views"),
        ("  page views ", "page views"),
        ("x", "x"),
        ("x" * 64, "x" * 64),
        (" " + "x" * 64 + " ", "x" * 64),
        ("café ☕ 訪問者", "café ☕ 訪問者"),
        ("<script>", "<script>"),  # escaped when rendered, not refused
    ],
)
def test_labels_of_1_to_64_characters(value, expected):
    assert badges.label(value, "hits") == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "x" * 65,
        "a\nb",
        "a\tb",
        "a\rb",
        "a\x00b",
        "a\x1bb",
        "a\x7fb",
        "a\x85b",  # NEL
        "a\u2028b",
        "a\u2029b",
        "a\u202eb",  # right-to-left override
        "\u202eevil",
        "a\u200bb",  # zero-width space
        "a\ufeffb",
        "a\ud800b",
        "a\uffffb",
        "hits\n",  # refused, not stripped
    ],
)
def test_bad_labels_are_refused(value):
    with pytest.raises(ValueError, match="label"):
        badges.label(value, "hits")


def test_a_label_that_is_not_a_string_is_refused():
    with pytest.raises(ValueError, match="label"):
        badges.label(b"hits", "hits")  # type: ignore[arg-type]


# --- shields.io endpoint JSON ---------------------------------------------------------------


def test_shield_json_is_the_endpoint_schema():
    body = badges.shield_json("hits", badges.format_value(1234), "brightgreen")

    assert body == {"schemaVersion": 1, "label": "hits", "message": "1234", "color": "brightgreen"}
    assert type(body["schemaVersion"]) is int
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize(
    "value, shield", [(None, "blue"), ("FF69B4", "ff69b4"), ("Critical", "critical")]
)
def test_shield_json_colors_are_what_shields_accepts(value, shield):
    assert badges.shield_json("hits", "1", value)["color"] == shield


def test_shield_json_keeps_an_empty_label_but_not_an_empty_message():
    assert badges.shield_json("", "0", None)["label"] == ""
    with pytest.raises(ValueError, match="message"):
        badges.shield_json("hits", "", None)
    with pytest.raises(ValueError, match="message"):
        badges.shield_json("hits", "\u202e\x00", None)


def test_shield_json_refuses_bad_colors_and_drops_control_characters():
    with pytest.raises(ValueError, match="color"):
        badges.shield_json("hits", "1", "#fff")
    body = badges.shield_json("a\u202eb", "1\n2", None)
    assert (body["label"], body["message"]) == ("ab", "1 2")
