"""Typed helpers for the `canvas/1` document schema (DESIGN.md §1.8).

Layout, as a JS `Y.Doc` reader sees it::

    meta:     Y.Map {schema: "canvas/1", title: string, template: string, background: string}
    elements: Y.Map {<element id>: Y.Map {
        kind: "card" | "stroke" | "shape" | "text" | "connector",
        x, y, w, h, rotation, z: number, color: string | null,
        author: string | null, created_at: string,    // ISO 8601 UTC, "...T12:00:00.000Z"
        // card: deck: string, card_id: string
        // stroke: points: Y.Array<number> (flat x,y,pressure triples), width: number
        // shape: shape: string      text: text: Y.Text      connector: from: string, to: string
    }}

Numbers: every numeric field is written as a finite float (see `_common` for why), so a JS
reader always gets a plain `number` and a Python reader a `float`.
Geometry: `x`, `y` place the element's top-left corner; `rotation` is in degrees, clockwise,
kept in [0, 360). Stroke `points` are relative to (`x`, `y`) so that moving a stroke rewrites
two numbers, and a stroke's `w`/`h` are the size of its points' bounding box, kept current by
`add_stroke`/`extend_stroke` (a stroke is extended by its author only). A connector's geometry
follows its endpoints, so it is stored as zeros and cannot be moved, resized or rotated;
`delete` removes an element's connectors, but one added offline to a since-deleted element
survives the merge, and renderers skip connectors whose ends are missing.
Paint order is ascending `z`, ties broken by id: replicas that both bring something to the front
offline may pick the same `z`, and still agree on the order.
Every mutating method runs in exactly one transaction, so it reaches peers as one Yjs update.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from pycrdt import Array, Doc, Map, Text

from ._common import (
    Clock,
    IdFactory,
    as_number,
    check_str,
    iso_utc,
    new_id,
    plain,
    splice_text,
    utc_now,
)

__all__ = ["CANVAS_SCHEMA", "KINDS", "Canvas", "Kind"]

CANVAS_SCHEMA = "canvas/1"

Kind = Literal["card", "stroke", "shape", "text", "connector"]
KINDS: tuple[str, ...] = get_args(Kind)


class Canvas:
    """A `canvas/1` view over a `pycrdt.Doc`; `author` is stamped on the elements it adds.

    Example::

        canvas = Canvas.create("Reading", author="ana")
        card = canvas.add_card("tarot", "the-fool", 10, 20)
        canvas.move(card, 40, 20)
        update = canvas.doc.get_update()   # send to peers
    """

    def __init__(
        self, doc: Doc, *, author: str | None = None, now: Clock = utc_now,
        new_id: IdFactory = new_id,
    ) -> None:
        """Wrap `doc`; raise `ValueError` if it already carries another schema."""
        if author is not None:
            check_str("author", author)
        self._doc = doc
        self._author = author
        self._now = now
        self._new_id = new_id
        self._meta = doc.get("meta", type=Map)
        self._elements = doc.get("elements", type=Map)
        # Per stroke being drawn: (number of values, min x, max x, min y, max y). Reading a
        # pycrdt Array costs per item, so re-reading a growing stroke at every extension would
        # make drawing quadratic; the box is kept up to date instead, and recomputed whenever
        # the stroke's length shows that another replica changed it.
        self._boxes: dict[str, tuple[int, float, float, float, float]] = {}
        schema = self._meta.get("schema")
        if schema is not None and schema != CANVAS_SCHEMA:
            raise ValueError(f"document has schema {schema!r}, not {CANVAS_SCHEMA!r}")

    @classmethod
    def create(
        cls, title: str = "", *, template: str = "blank", background: str = "#ffffff",
        author: str | None = None, now: Clock = utc_now, new_id: IdFactory = new_id,
    ) -> Canvas:
        """Return a canvas on a fresh `Doc`, with its `meta` written."""
        canvas = cls(Doc(), author=author, now=now, new_id=new_id)
        canvas.init(title, template=template, background=background)
        return canvas

    @property
    def doc(self) -> Doc:
        """The underlying document, for sync and persistence."""
        return self._doc

    @property
    def meta(self) -> dict[str, Any]:
        """`meta` as plain values (empty before it has arrived)."""
        return plain(self._meta)

    def init(
        self, title: str = "", *, template: str = "blank", background: str = "#ffffff"
    ) -> None:
        """Write `meta`. Safe on replicas that do it concurrently (last writer wins)."""
        meta = {"title": title, "template": template, "background": background}
        for name, value in meta.items():
            check_str(name, value)
        with self._doc.transaction():
            self._meta.update({"schema": CANVAS_SCHEMA, **meta})

    def rename(self, title: str) -> None:
        """Set the canvas title."""
        self._set_meta("title", title)

    def set_background(self, background: str) -> None:
        """Set the canvas background (a CSS colour or a background name)."""
        self._set_meta("background", background)

    def add_card(
        self, deck: str, card_id: str, x: float, y: float, *, w: float = 120.0,
        h: float = 180.0, rotation: float = 0.0, color: str | None = None,
    ) -> str:
        """Place card `card_id` of `deck`; return the new element id."""
        fields = {"deck": check_str("deck", deck, allow_empty=False),
                  "card_id": check_str("card_id", card_id, allow_empty=False)}
        return self._add("card", x, y, w, h, rotation, color, fields)

    def add_stroke(
        self, x: float, y: float, points: Iterable[float] = (), *, width: float = 2.0,
        color: str | None = None,
    ) -> str:
        """Start a stroke at (x, y) with relative x,y,pressure `points`; return its id."""
        values = _points(points)
        fields = {"points": Array(values), "width": _positive("width", width)}
        w, h = _extent(values)
        return self._add("stroke", x, y, w, h, 0.0, color, fields)

    def extend_stroke(self, element_id: str, points: Iterable[float]) -> None:
        """Append x,y,pressure triples to a stroke while it is being drawn."""
        values = _points(points)
        element = self._element(element_id, "stroke")
        array: Array = element["points"]
        box = self._boxes.get(element_id)
        if box is None or box[0] != len(array):
            box = _box(len(array), array.to_py())
        box = _box(box[0] + len(values), values, box)
        self._boxes[element_id] = box
        w, h = (box[2] - box[1], box[4] - box[3]) if box[0] else (0.0, 0.0)
        with self._doc.transaction():
            array.extend(values)
            element.update({"w": w, "h": h})

    def add_shape(
        self, shape: str, x: float, y: float, w: float, h: float, *, rotation: float = 0.0,
        color: str | None = None,
    ) -> str:
        """Add a shape (`"rect"`, `"ellipse"`, ... as the client knows them); return its id."""
        fields = {"shape": check_str("shape", shape, allow_empty=False)}
        return self._add("shape", x, y, w, h, rotation, color, fields)

    def add_text(
        self, text: str, x: float, y: float, *, w: float = 200.0, h: float = 40.0,
        rotation: float = 0.0, color: str | None = None,
    ) -> str:
        """Add a text box whose `text` is a collaborative Y.Text; return its id."""
        fields = {"text": Text(check_str("text", text))}
        return self._add("text", x, y, w, h, rotation, color, fields)

    def edit_text(self, element_id: str, index: int, *, delete: int = 0, insert: str = "") -> None:
        """Delete `delete` characters at `index` of a text element, then insert `insert`."""
        element = self._element(element_id, "text")
        with self._doc.transaction():
            splice_text(element["text"], index, delete, insert)

    def add_connector(self, from_id: str, to_id: str, *, color: str | None = None) -> str:
        """Connect two (non-connector) elements; return the connector id."""
        if from_id == to_id:
            raise ValueError("a connector needs two different elements")
        for end in (from_id, to_id):
            if self._element(end)["kind"] == "connector":
                raise ValueError(f"cannot connect connector {end!r}")
        return self._add("connector", 0.0, 0.0, 0.0, 0.0, 0.0, color,
                         {"from": from_id, "to": to_id})

    def move(self, element_id: str, x: float, y: float) -> None:
        """Move an element's top-left corner to (x, y)."""
        self._set(element_id, {"x": as_number("x", x), "y": as_number("y", y)},
                  forbid=("connector",))

    def resize(self, element_id: str, w: float, h: float) -> None:
        """Set a card's, shape's or text box's size (strokes follow their points)."""
        size = {"w": _positive("w", w), "h": _positive("h", h)}
        self._set(element_id, size, forbid=("connector", "stroke"))

    def rotate(self, element_id: str, rotation: float) -> None:
        """Set the rotation in degrees, clockwise; stored modulo 360."""
        self._set(element_id, {"rotation": _degrees(rotation)}, forbid=("connector",))

    def set_color(self, element_id: str, color: str | None) -> None:
        """Set an element's colour (a CSS colour), or None for the client's default."""
        self._set(element_id, {"color": _color(color)})

    def bring_to_front(self, element_id: str) -> None:
        """Put an element above every other one."""
        self._element(element_id)
        self._set(element_id, {"z": self._top_z(exclude=element_id)})

    def delete(self, element_id: str) -> list[str]:
        """Remove an element and the connectors attached to it; return the removed ids."""
        self._element(element_id)
        doomed = [element_id] + [
            key for key, value in self._elements.items()
            if isinstance(value, Map) and value.get("kind") == "connector"
            and element_id in (value.get("from"), value.get("to")) and key != element_id
        ]
        with self._doc.transaction():
            for key in doomed:
                del self._elements[key]
        return doomed

    def element(self, element_id: str) -> dict[str, Any]:
        """Return one element as plain values, with its `id`."""
        return {**plain(self._element(element_id)), "id": element_id}

    def elements(self) -> list[dict[str, Any]]:
        """Return all elements in paint order (ascending `z`, then id)."""
        views = [{**plain(value), "id": key} for key, value in self._elements.items()
                 if isinstance(value, Map)]
        return sorted(views, key=lambda view: (_z(view.get("z")), view["id"]))

    def to_json(self) -> dict[str, Any]:
        """Return the whole document as plain JSON values, keys sorted."""
        return {"meta": plain(self._meta), "elements": plain(self._elements)}

    def _add(
        self, kind: Kind, x: float, y: float, w: float, h: float, rotation: float,
        color: str | None, fields: dict[str, Any],
    ) -> str:
        element = {
            "kind": kind, "x": as_number("x", x), "y": as_number("y", y),
            "w": _positive("w", w), "h": _positive("h", h), "rotation": _degrees(rotation),
            "z": self._top_z(), "color": _color(color), "author": self._author,
            "created_at": iso_utc(self._now()), **fields,
        }
        element_id = self._new_id()
        with self._doc.transaction():
            self._elements[element_id] = Map(element)
        return element_id

    def _set(self, element_id: str, values: dict[str, Any], forbid: tuple[str, ...] = ()) -> None:
        element = self._element(element_id)
        if element.get("kind") in forbid:
            raise ValueError(f"cannot change that on a {element.get('kind')} ({element_id!r})")
        with self._doc.transaction():
            element.update(values)

    def _set_meta(self, key: str, value: str) -> None:
        check_str(key, value)
        with self._doc.transaction():
            self._meta[key] = value

    def _element(self, element_id: str, kind: Kind | None = None) -> Map:
        element = self._elements.get(element_id) if isinstance(element_id, str) else None
        if not isinstance(element, Map):
            raise ValueError(f"unknown element id {element_id!r}")
        if kind is not None and element.get("kind") != kind:
            raise ValueError(f"element {element_id!r} is a {element.get('kind')}, not a {kind}")
        return element

    def _top_z(self, exclude: str | None = None) -> float:
        zs = [_z(value.get("z")) for key, value in self._elements.items()
              if key != exclude and isinstance(value, Map)]
        return max(zs) + 1.0 if zs else 0.0


def _z(value: object) -> float:
    """A tolerant read of `z`: a peer's bad value sorts as 0 rather than breaking rendering."""
    try:
        return as_number("z", value)
    except ValueError:
        return 0.0


def _positive(name: str, value: object) -> float:
    number = as_number(name, value)
    if number < 0:
        raise ValueError(f"{name} must not be negative, not {value!r}")
    return number


def _degrees(value: object) -> float:
    turned = as_number("rotation", value) % 360.0
    return 0.0 if turned == 360.0 else turned  # -1e-20 % 360.0 rounds to 360.0


def _color(value: object) -> str | None:
    return None if value is None else check_str("color", value, allow_empty=False)


def _points(points: Iterable[float]) -> list[float]:
    values = [as_number("point", value) for value in points]
    if len(values) % 3:
        raise ValueError(f"points must be x,y,pressure triples, got {len(values)} numbers")
    return values


def _box(
    length: int, values: list[float], start: tuple[int, float, float, float, float] | None = None
) -> tuple[int, float, float, float, float]:
    """(length, min x, max x, min y, max y) of ``values`` joined with ``start``'s box."""
    inf = float("inf")
    _, x0, x1, y0, y1 = start if start is not None and start[0] else (0, inf, -inf, inf, -inf)
    xs, ys = values[0::3], values[1::3]
    if xs:
        x0, x1, y0, y1 = min(x0, *xs), max(x1, *xs), min(y0, *ys), max(y1, *ys)
    return length, x0, x1, y0, y1


def _extent(values: list[float]) -> tuple[float, float]:
    xs, ys = values[0::3], values[1::3]
    if not xs:
        return 0.0, 0.0
    return max(xs) - min(xs), max(ys) - min(ys)
