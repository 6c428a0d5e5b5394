"""Hit-counter badges for READMEs and web pages: a shields.io-style flat SVG, and the JSON of
shields.io's endpoint badge (https://shields.io/badges/endpoint-badge).

Query-string values go through `color()` / `shield_color()` and `label()` first: their ValueError
(one line, naming what is accepted) is the caller's 400. Stdlib only: imported at cold start.
"""

from __future__ import annotations

import math
import re
import unicodedata

__all__ = [
    "DEFAULT_COLOR",
    "NAMED_COLORS",
    "color",
    "format_value",
    "label",
    "render_svg",
    "shield_color",
    "shield_json",
]

HEIGHT = 20
FONT_SIZE = 11
PADDING = 10  # px on each side of a part's text
LABEL_FILL = "#555"
MAX_LABEL = 64

# shields.io's named colors, with its semantic aliases.
NAMED_COLORS: dict[str, str] = {
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
DEFAULT_COLOR = NAMED_COLORS["blue"]
_DEFAULT_SHIELD_COLOR = "blue"

_HEX = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{6}")
_COLOR_ERROR = (
    f"color must be one of {', '.join(NAMED_COLORS)}, "
    "or a hex color of 3 or 6 digits without '#' (e.g. ff69b4)"
)

# Advance widths in px at 11px, per character: the wider of Verdana (what the SVG asks for
# first) and DejaVu Sans (its usual stand-in on Linux), rounded up to a tenth.
_WIDTHS: dict[str, float] = {
    char: width
    for chars, width in (
        ("'il", 3.1),
        ("j", 3.8),
        (" f", 3.9),
        (",.", 4.1),
        ("t", 4.4),
        ("!", 4.5),
        ("Ir", 4.7),
        ("()-/:;[\\]|", 5.0),
        ('"J', 5.1),
        ("sz", 5.8),
        ("?", 6.0),
        ("c", 6.1),
        ("L", 6.2),
        ("F", 6.4),
        ("kvxy", 6.6),
        ("P", 6.7),
        ("TYaeo", 6.8),
        ("$*0123456789E_`bdghnpqu{}", 7.0),
        ("ABSVXZ", 7.6),
        ("CKR", 7.7),
        ("U", 8.1),
        ("HN", 8.3),
        ("D", 8.5),
        ("&G", 8.6),
        ("OQ", 8.7),
        ("w", 9.1),
        ("#+<=>^~", 9.3),
        ("M", 9.5),
        ("m", 10.8),
        ("W", 10.9),
        ("@", 11.0),
        ("%", 11.9),
    )
    for char in chars
}
# Characters outside the table (after é -> e): averages of DejaVu Sans' Cyrillic and Greek,
# rounded up. textLength (below) stretches or squeezes the text to this estimate.
_UPPER_WIDTH = 8.5  # Ж, Я, Σ, ...
_LETTER_WIDTH = 7.5  # other letters and digits: ж, щ, λ, ...
_OTHER_WIDTH = 9.5  # symbols and punctuation: →, ★, ©, ...
_WIDE_WIDTH = 12.0  # East Asian wide/fullwidth characters (one em) and emoji

# Refused in labels, dropped from rendered text: C0/C1 controls, format characters (bidi
# overrides such as U+202E, zero-width characters), line/paragraph separators (U+2028/U+2029),
# lone surrogates, and the two code points XML 1.0 forbids outright.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NOT_XML = frozenset({"\ufffe", "\uffff"})

_XML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"},
)


def color(value: str | None) -> str:
    """The hex color (`#rgb` / `#rrggbb`, lower case) of a `color` query value: one of shields.io's
    named colors or 3/6 hex digits without `#`, case-insensitive; None is blue (#007ec6)."""
    if value is None:
        return DEFAULT_COLOR
    return _resolve(value)[1]


def shield_color(value: str | None) -> str:
    """The `color` of shields.io's endpoint JSON for a `color` query value (validated as `color()`
    does): the named color, or the hex digits, in lower case; None is "blue"."""
    if value is None:
        return _DEFAULT_SHIELD_COLOR
    return _resolve(value)[0]


def label(value: str | None, default: str) -> str:
    """The `label` query value, or `default` when there is none: 1-64 characters once surrounding
    whitespace is stripped, with no control or format characters anywhere."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError("label must be a string")
    if any(_is_control(char) for char in value):
        raise ValueError(
            "label must not contain control or format characters"
            " (such as newlines, tabs, zero-width or bidi override characters)"
        )
    value = value.strip()
    if not 1 <= len(value) <= MAX_LABEL:
        raise ValueError(f"label must be 1-{MAX_LABEL} characters (surrounding spaces stripped)")
    return value


def format_value(n: int) -> str:
    """A counter's value as the badge shows it: exact, every digit (no 1.2k)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a counter value is an int, not {type(n).__name__}")
    return str(n)


def shield_json(label: str, message: str, color: str | None) -> dict[str, object]:
    """The body of shields.io's endpoint badge. `color` is a `color` query value (or None);
    control characters are dropped from the texts, and the message may not end up empty."""
    message = _clean(message)
    if not message:
        raise ValueError("message must not be empty")
    return {
        "schemaVersion": 1,
        "label": _clean(label),
        "message": message,
        "color": shield_color(color),
    }


def render_svg(label: str, message: str, color: str) -> str:
    """A flat shields.io-style badge: `label` on grey, `message` on `color`, 20 px high.

    `color` is a `#rgb` / `#rrggbb` hex color (as `color()` returns) or anything `color()`
    accepts. The texts lose their control characters, runs of whitespace are collapsed (as SVG
    renders them), and every text is XML-escaped.
    """
    fill = _fill(color)
    left, right = _clean(label), _clean(message)
    left_text, right_text = _text_width(left), _text_width(right)
    left_width, right_width = _part_width(left_text), _part_width(right_text)
    width = left_width + right_width
    title = f"{left}: {right}" if left else right
    text, shadow = ("#333", "#ccc") if _is_light(fill) else ("#fff", "#010101")
    clip = f"tally-badge-r{width}"
    return "".join(
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}"'
            f' viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{_escape(title)}">',
            f"<title>{_escape(title)}</title>",
            '<linearGradient id="tally-badge-s" x2="0" y2="100%">',
            '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>',
            '<stop offset="1" stop-opacity=".1"/>',
            "</linearGradient>",
            f'<clipPath id="{clip}">',
            f'<rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/>',
            "</clipPath>",
            f'<g clip-path="url(#{clip})">',
            f'<rect width="{left_width}" height="{HEIGHT}" fill="{LABEL_FILL}"/>',
            f'<rect x="{left_width}" width="{right_width}" height="{HEIGHT}" fill="{fill}"/>',
            f'<rect width="{width}" height="{HEIGHT}" fill="url(#tally-badge-s)"/>',
            "</g>",
            '<g text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif"'
            f' font-size="{FONT_SIZE}" text-rendering="geometricPrecision">',
            _text(left, left_text, left_width / 2, "#fff", "#010101"),
            _text(right, right_text, left_width + right_width / 2, text, shadow),
            "</g>",
            "</svg>",
        )
    )


def _resolve(value: str) -> tuple[str, str]:
    """(shields.io's color value, hex color) of a `color` query value, or ValueError."""
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in NAMED_COLORS:
            return lowered, NAMED_COLORS[lowered]
        if _HEX.fullmatch(value):
            return lowered, f"#{lowered}"
    raise ValueError(_COLOR_ERROR)


def _fill(value: str) -> str:
    if isinstance(value, str) and value.startswith("#") and _HEX.fullmatch(value, 1):
        return value.lower()
    return color(value)


def _is_control(char: str) -> bool:
    return char in _NOT_XML or unicodedata.category(char) in _CONTROL_CATEGORIES


def _clean(text: str) -> str:
    """`text` without control characters, its whitespace collapsed as SVG renders it."""
    if not isinstance(text, str):
        raise TypeError(f"badge text is a str, not {type(text).__name__}")
    # Whitespace controls (tab, newline, U+2028, ...) separate words; the others are dropped.
    kept = "".join(char for char in text if char.isspace() or not _is_control(char))
    return " ".join(kept.split())


def _char_width(char: str) -> float:
    width = _WIDTHS.get(char)
    if width is not None:
        return width
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me"):
        return 0.0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return _WIDE_WIDTH
    base = unicodedata.normalize("NFD", char)[:1]  # é -> e + U+0301: as wide as e
    if base in _WIDTHS:
        return _WIDTHS[base]
    category = unicodedata.category(char)
    if category in ("Lu", "Lt"):
        return _UPPER_WIDTH
    if category[0] in "LN":
        return _LETTER_WIDTH
    return _OTHER_WIDTH


def _text_width(text: str) -> float:
    return sum(_char_width(char) for char in text)


def _part_width(text_width: float) -> int:
    return math.ceil(text_width) + 2 * PADDING


def _text(text: str, width: float, x: float, fill: str, shadow: str) -> str:
    if not text:
        return ""
    # textLength pins the rendered text to the measured width whatever font is used, so it
    # stays centred inside its part, as shields.io does.
    common = f'x="{_num(x)}" textLength="{_num(width)}" lengthAdjust="spacing"'
    escaped = _escape(text)
    return (
        f'<text {common} y="15" fill="{shadow}" fill-opacity=".3" aria-hidden="true">'
        f"{escaped}</text>"
        f'<text {common} y="14" fill="{fill}">{escaped}</text>'
    )


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _escape(text: str) -> str:
    return text.translate(_XML_ESCAPES)


def _is_light(hex_color: str) -> bool:
    """Whether dark text reads better on `hex_color` (shields.io's brightness rule)."""
    digits = hex_color[1:]
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return (r * 299 + g * 587 + b * 114) / 255_000 >= 0.69
