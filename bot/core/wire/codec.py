"""The one cattrs converter for Polymarket's non-hot-path JSON: user channel, Gamma, CLOB REST.

The market channel has a hand-written decoder (``bot.core.wire.market``) because it is the hot
path. Everything else is decoded here, declaratively: the models are ``@attrs.frozen`` classes
whose fields say their wire name and wire type, and one converter built by ``make_converter``
turns parsed JSON into them. ``decode`` adds the JSON parsing and maps every failure to a single
``FrameDecodeError`` whose reason names the field path in *wire* spelling, for example
``expected a decimal string, got 12.5 @ $.maker_orders[1].price``.

Policy, and why:

* **Lenient about extra keys.** The venue adds fields without notice (Gamma markets carry 100+
  keys, most irrelevant); unknown keys are ignored and only the fields a bot needs are modelled.
* **Strict about types.** cattrs' stock hooks coerce (``str(5)``, ``int("5")``, ``bool("false")``
  is ``True``); here a ``str`` field only takes a JSON string, an ``int`` only a JSON integer, a
  ``bool`` only ``true``/``false``, and an array field only a JSON array. The wire's real dualities
  are spelled out as named field types below instead of being coerced silently.
* **Exact numbers.** Prices and sizes become integer micro-units (``bot.core.money``); everything
  else numeric that is not an integer becomes ``Decimal``. A JSON number goes through its shortest
  ``repr`` (``0.01`` -> ``Decimal("0.01")``), never through float arithmetic.
* **Wire names stay at the edge.** ``wire("conditionId")`` in a field's metadata renames it (via
  ``cattrs.override(rename=...)``); ``aliases`` accepts other spellings of the same key (the docs'
  ``matchtime`` for ``match_time``); ``default_on`` lists wire values (``None``, ``""``) that mean
  "absent, use the field's default" -- the venue sends ``"size_matched": ""`` and
  ``"errorMsg": null`` where a value is simply missing.

Field types (``Annotated`` aliases, so they are plain ``int``/``str`` to mypy and to callers):

=============  ==================================================================================
``Units``      decimal *string* -> micro-units (``"219.217767"`` -> ``219_217_767``)
``Price``      like ``Units``, and at most 1.0
``NumUnits``   decimal string *or* JSON number -> micro-units (REST sends ``0.01`` and ``5``)
``Int``        JSON integer or digit string (``"150"``, ``150``): bps, seconds, counters
``EpochMs``    a point in time, as integer milliseconds since the epoch (UTC): digit strings or
               integers in seconds or milliseconds (below 10**12 means seconds), or ISO-8601 text
               (``"2026-04-05 15:10:00+00"``, ``"2026-03-12"``; naive means UTC)
``Ident``      an identifier sent as a string or an integer, kept as a string
``Decimal``    decimal string or JSON number -> exact ``Decimal`` (volumes, rates, cached prices)
``T`` marked   ``Annotated[T, JSON_ENCODED]``: a JSON document *inside a string* (Gamma's
               ``"[\\"Yes\\", \\"No\\"]"``), also accepted as the plain JSON value
=============  ==================================================================================
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum, IntEnum, StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar, get_args, get_origin

import attrs
import cattrs
import orjson
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import AttributeValidationNote, ClassValidationError
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception

from bot.core.errors import FrameDecodeError
from bot.core.money import ONE, Side, parse_number, parse_units

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "JSON_ENCODED",
    "EpochMs",
    "Ident",
    "Int",
    "NumUnits",
    "Price",
    "Units",
    "converter",
    "decode",
    "make_converter",
    "parse_json",
    "show",
    "structure",
    "wire",
]

T = TypeVar("T")

_WIRE: Final = "bot.core.wire.codec"
_MS_THRESHOLD: Final = 10**12
"""Epoch values below this are seconds (10**12 ms is 2001; 10**12 s is the year 33658)."""
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def show(value: object, limit: int = 60) -> str:
    """A short JSON-ish rendering of a wire value for error messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- field types -------------------------------------------------------------------------------


@attrs.frozen
class _Scalar:
    """``Annotated`` marker: structure the JSON value with ``parse`` (which raises on bad input)."""

    parse: Callable[[Any], Any]


@attrs.frozen
class _JsonEncoded:
    """``Annotated`` marker: the value may be a JSON document encoded inside a string."""


JSON_ENCODED: Final = _JsonEncoded()


def _units(value: object) -> int:
    if type(value) is not str:
        raise TypeError(f"expected a decimal string, got {show(value)}")
    try:
        return parse_units(value)
    except ValueError:
        raise ValueError(f"expected a decimal string, got {show(value)}") from None


def _price(value: object) -> int:
    price = _units(value)
    if price > ONE:
        raise ValueError(f"expected a price between 0 and 1, got {show(value)}")
    return price


def _num_units(value: object) -> int:
    try:
        return parse_number(value)
    except ValueError:
        raise ValueError(f"expected a decimal number or string, got {show(value)}") from None


def _int(value: object) -> int:
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    raise TypeError(f"expected an integer or a digit string, got {show(value)}")


def _epoch_ms(value: object) -> int:
    if type(value) is int or (type(value) is str and value.isascii() and value.isdigit()):
        number = int(value)
        return number * 1000 if number < _MS_THRESHOLD else number
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected a timestamp, got {show(value)}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return (moment - _EPOCH) // _MS
    raise TypeError(f"expected a timestamp, got {show(value)}")


def _ident(value: object) -> str:
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    raise TypeError(f"expected a string or an integer id, got {show(value)}")


Units = Annotated[int, _Scalar(_units)]
"""Micro-units from a decimal string (``"0.48"`` -> ``480_000``)."""

Price = Annotated[int, _Scalar(_price)]
"""A price in micro-units from a decimal string, between 0 and 1."""

NumUnits = Annotated[int, _Scalar(_num_units)]
"""Micro-units from a decimal string or a JSON number (``0.01`` -> ``10_000``)."""

Int = Annotated[int, _Scalar(_int)]
"""An integer sent as a JSON integer or a digit string."""

EpochMs = Annotated[int, _Scalar(_epoch_ms)]
"""Milliseconds since the epoch from seconds, milliseconds or ISO-8601 text."""

Ident = Annotated[str, _Scalar(_ident)]
"""An identifier sent as a string or an integer."""


# --- field metadata ----------------------------------------------------------------------------


@attrs.frozen
class _Wire:
    name: str | None
    aliases: tuple[str, ...]
    default_on: tuple[object, ...]


def wire(
    name: str | None = None, *, aliases: Sequence[str] = (), default_on: Sequence[object] = ()
) -> dict[str, Any]:
    """Field metadata describing how a field appears on the wire.

    Args:
        name: the wire key, when it differs from the attribute name (``"conditionId"``).
        aliases: other keys the venue (or its docs) uses for the same value; used only when
            the main key is absent.
        default_on: wire values that mean "absent" (typically ``None`` and ``""``); the field
            then takes its attrs default, which it must have.

    Returns:
        A dict for ``attrs.field(metadata=...)``.
    """
    return {_WIRE: _Wire(name, tuple(aliases), tuple(default_on))}


def _means_absent(value: object, markers: tuple[object, ...]) -> bool:
    return any(
        value is None if marker is None else (type(value) is type(marker) and value == marker)
        for marker in markers
    )


# --- hooks -------------------------------------------------------------------------------------


def _strict(kind: type, name: str) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {name}, got {show(value)}")
        return value

    return structure


def _decimal(value: Any, _: Any) -> Decimal:
    if type(value) is int:
        return Decimal(value)
    if type(value) is float:
        return Decimal(repr(value))
    if type(value) is str:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"expected a decimal, got {show(value)}") from None
        if number.is_finite():
            return number
    raise ValueError(f"expected a decimal, got {show(value)}")


def _enum(value: Any, cls: type[Enum]) -> Enum:
    return cls(value)


def _side(value: Any, _: Any) -> Side:
    if type(value) is not str:
        raise TypeError(f"expected BUY or SELL, got {show(value)}")
    return Side.parse(value)


def _is_marked(tp: Any, kind: type) -> bool:
    return get_origin(tp) is Annotated and any(isinstance(m, kind) for m in tp.__metadata__)


def _scalar_factory(tp: Any) -> Callable[[Any, Any], Any]:
    marker = next(m for m in tp.__metadata__ if isinstance(m, _Scalar))
    parse = marker.parse

    def structure(value: Any, _: Any) -> Any:
        return parse(value)

    return structure


def _json_encoded_factory(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner_type = get_args(tp)[0]
    inner = conv.get_structure_hook(inner_type)

    def structure(value: Any, _: Any) -> Any:
        if type(value) is str:
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ValueError(f"expected JSON inside the string, got {show(value)}") from None
        return inner(value, inner_type)

    return structure


def _is_homogeneous_tuple(tp: Any) -> bool:
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_factory(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = homogenous_tuple_structure_factory(tp, conv)

    def structure(value: Any, _: Any) -> Any:
        if type(value) is not list:
            raise TypeError(f"expected an array, got {show(value)}")
        return inner(value, tp)

    return structure


def _is_attrs(tp: Any) -> bool:
    return attrs.has(get_origin(tp) or tp)


def _attrs_factory(cl: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """Structure an attrs class from a JSON object, honouring ``wire()`` metadata."""
    overrides: dict[str, Any] = {}
    renames: dict[str, str] = {}
    aliases: list[tuple[str, str]] = []
    default_on: list[tuple[str, tuple[object, ...]]] = []
    for field in attrs.fields(get_origin(cl) or cl):
        spec = field.metadata.get(_WIRE)
        if spec is None:
            continue
        key = field.name
        if spec.name is not None:
            key = spec.name
            overrides[field.name] = cattrs.override(rename=key)
            renames[field.name] = key
        aliases.extend((alias, key) for alias in spec.aliases)
        if spec.default_on:
            default_on.append((key, spec.default_on))
    inner = make_dict_structure_fn(cl, conv, **overrides)

    def structure(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise TypeError(f"expected an object, got {show(value)}")
        if aliases or default_on:
            value = dict(value)
            for alias, key in aliases:
                if key not in value and alias in value:
                    value[key] = value[alias]
            for key, markers in default_on:
                if key in value and _means_absent(value[key], markers):
                    del value[key]
        try:
            return inner(value, cl)
        except ClassValidationError as exc:
            if renames:
                _rename_notes(exc, renames)
            raise

    return structure


def _rename_notes(exc: ClassValidationError, renames: dict[str, str]) -> None:
    """Make error paths use wire keys (``$.outcomePrices``), not attribute names."""
    for sub in exc.exceptions:
        notes = getattr(sub, "__notes__", [])
        sub.__notes__ = [
            AttributeValidationNote(str(note), renames[note.name], note.type)
            if isinstance(note, AttributeValidationNote) and note.name in renames
            else note
            for note in notes
        ]


def make_converter() -> cattrs.Converter:
    """Build the converter with the strict hooks described in the module docstring."""
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(Decimal, _decimal)
    # singledispatch would route StrEnum/IntEnum members through the str/int hooks above; these
    # more specific registrations keep enums on ``cls(value)`` (and ``_missing_`` for spellings).
    conv.register_structure_hook(StrEnum, _enum)
    conv.register_structure_hook(IntEnum, _enum)
    conv.register_structure_hook(Side, _side)
    conv.register_structure_hook_factory(lambda t: _is_marked(t, _Scalar), _scalar_factory)
    conv.register_structure_hook_factory(
        lambda t: _is_marked(t, _JsonEncoded), _json_encoded_factory
    )
    conv.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_factory)
    conv.register_structure_hook_factory(_is_attrs, _attrs_factory)
    return conv


converter: Final = make_converter()
"""The converter every wire module uses. Stateless apart from its hook caches."""


# --- decoding ----------------------------------------------------------------------------------


def _format_exception(exc: BaseException, tp: type | None) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ValueError | TypeError) and exc.args:
        return str(exc)
    return format_exception(exc, tp)


def parse_json(data: str | bytes) -> Any:
    """Parse a JSON document, raising ``FrameDecodeError`` (with an excerpt) if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FrameDecodeError(f"invalid JSON: {exc}", data) from None


def structure(obj: Any, tp: Any, frame: str | bytes = "", path: str = "$") -> Any:
    """Structure already-parsed JSON into ``tp``.

    Args:
        obj: the parsed JSON value.
        tp: the target type (an attrs class, ``tuple[Cls, ...]``, a field type, ...).
        frame: the original text, for the error excerpt.
        path: the JSON path of ``obj`` inside ``frame``, used in error messages.

    Raises:
        FrameDecodeError: with every problem found, each naming its wire path.
    """
    try:
        return converter.structure(obj, tp)
    except Exception as exc:  # cattrs groups are ExceptionGroups: catch them plainly, not except*
        lines = cattrs.transform_error(exc, path=path, format_exception=_format_exception)
        raise FrameDecodeError("; ".join(lines), frame) from exc


def decode(data: str | bytes, tp: type[T]) -> T:
    """Parse ``data`` as JSON and structure it into ``tp``.

    Raises:
        FrameDecodeError: invalid JSON, or any field problem (see ``structure``).
    """
    result: T = structure(parse_json(data), tp, data)
    return result
