"""Fast FITS header reading: cards parsed straight from the 2,880-byte blocks.

Only header blocks are read; data units are skipped by their size from
BITPIX/NAXISn/PCOUNT/GCOUNT.  Values come out as the text ``str()`` gives for
astropy's parsed value (``'T'`` -> ``'True'``, ``1.0E+01`` -> ``'10.0'``), the
cards of all HDUs merged with the first value winning, as the reference reads
a dataset.  Card forms the fast path does not handle itself (CONTINUE long
strings, HIERARCH, complex or undefined values) send that file to astropy
rather than being guessed.

When the caller names the keywords it wants (``keep``, as the batch engine
does), a header's sequence of keywords is cut out by eight strided slices, and
the positions of the wanted cards are worked out once per sequence (datasets of
one kind share it); the wanted cards are then cut out by one ``itemgetter`` call
and their values looked up by card text, so no Python code runs per card
(:func:`_selected_cards`).  Anything unusual in a header (lower-case
keywords, a wanted keyword whose first card has no value, no END card) goes to
the card-by-card reader instead, which also words the errors.

Every size and offset taken from a header is checked before use (BITPIX one of
the standard values, NAXIS 0..999, NAXISn, PCOUNT and GCOUNT >= 0), so the
read offset only ever moves forwards and a hostile header cannot loop the
reader; astropy is handed only header bytes cut out by this module, never a
file structure to walk (it loops forever on a negative NAXISn), and anything
it raises becomes one :class:`HeaderError` line.
"""

from __future__ import annotations

import collections
import io
import operator
import re
import struct
import warnings
from collections.abc import Callable

from ..errors import HeaderError
from .merge import merge_cards
from .rawfile import RawFile, open_raw

__all__ = ["read_fits_header", "read_fits_raw", "FITS_MAGIC", "BLOCK"]

FITS_MAGIC = b"SIMPLE  ="
BLOCK = 2880
_CARD = 80
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$")
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})
_STRUCTURAL = frozenset({"BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS", "XTENSION"}
                        | {f"NAXIS{i}" for i in range(1, 1000)})
_MAX_HEADER_BLOCKS = 10_000  # 28.8 MB of cards: far beyond any real header
_BITPIX_VALUES = frozenset({8, 16, 32, 64, -32, -64})
_MAX_NAXIS = 999


_LEFT_TO_ASTROPY = frozenset({"CONTINUE", "HIERARCH"})
#: raw 8-character keyword field -> keyword; real headers reuse a few hundred names
_KEYWORDS: dict[str, str] = {}


def _keyword(field: str) -> str:
    keyword = field.rstrip().upper()
    if len(_KEYWORDS) < 100_000:
        _KEYWORDS[field] = keyword
    return keyword


class _NeedsAstropy(Exception):
    """The fast path met a card form it leaves to astropy."""


_STRING = re.compile(r"'((?:[^']|'')*)'")


def _string_value(text: str) -> str:
    # text starts at the opening quote; '' inside is an escaped quote
    found = _STRING.match(text)
    if not found:
        raise _NeedsAstropy  # unterminated string: let astropy decide
    return found.group(1).replace("''", "'").rstrip()


def _value(field: str) -> str:
    stripped = field.lstrip()
    if stripped.startswith("'"):
        return _string_value(stripped)
    value = stripped.split("/", 1)[0].strip()
    if value == "T":
        return "True"
    if value == "F":
        return "False"
    if _INT.match(value):
        return str(int(value))
    if _FLOAT.match(value):
        return str(float(value.replace("D", "E").replace("d", "e")))
    raise _NeedsAstropy  # complex, undefined or non-standard value


class _BadStructure(Exception):
    """A structural value (BITPIX, NAXIS, NAXISn, PCOUNT, GCOUNT) no FITS file may have."""


def _structural_int(cards: dict[str, str], keyword: str, default: str, hdu: int) -> int:
    text = cards.get(keyword, default)
    try:
        return int(text)
    except ValueError:
        raise _BadStructure(f"HDU {hdu} has {keyword} = {text[:30]!r}, not an integer") from None


def _data_size(cards: dict[str, str], hdu: int) -> int:
    """Bytes of the data unit of HDU number ``hdu`` (unpadded), from its structural cards.

    Raises
    ------
    _BadStructure
        A value outside what FITS allows: BITPIX not 8/16/32/64/-32/-64, NAXIS
        outside 0..999, a negative NAXISn, PCOUNT or GCOUNT.  A missing NAXISn
        counts as 0, as before (its data unit is then empty).
    """
    primary = hdu == 0
    bitpix = _structural_int(cards, "BITPIX", "8", hdu)
    if bitpix not in _BITPIX_VALUES:
        raise _BadStructure(f"HDU {hdu} has BITPIX = {bitpix}, not one of 8, 16, 32, 64, -32, -64")
    naxis = _structural_int(cards, "NAXIS", "0", hdu)
    if not 0 <= naxis <= _MAX_NAXIS:
        raise _BadStructure(f"HDU {hdu} has NAXIS = {naxis}, not within 0..{_MAX_NAXIS}")
    if naxis == 0:
        return 0
    dims = [_structural_int(cards, f"NAXIS{i}", "0", hdu) for i in range(1, naxis + 1)]
    pcount = _structural_int(cards, "PCOUNT", "0", hdu)
    gcount = _structural_int(cards, "GCOUNT", "1", hdu)
    for keyword, value in (*((f"NAXIS{i}", dim) for i, dim in enumerate(dims, 1)),
                           ("PCOUNT", pcount), ("GCOUNT", gcount)):
        if value < 0:
            raise _BadStructure(f"HDU {hdu} has {keyword} = {value}, which is negative")
    random_groups = primary and dims[0] == 0 and cards.get("GROUPS") == "True"
    if primary and not random_groups:
        pcount, gcount = 0, 1
    product = 1
    for dim in (dims[1:] if random_groups else dims):
        product *= dim
    return abs(bitpix) // 8 * gcount * (pcount + product)


def _fast_cards(raw: RawFile, keep: Callable[[str], bool] | None = None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    offset = 0
    hdu = 0
    while offset < raw.size:
        hdu_cards: dict[str, str] = {}
        found_end = False
        blocks = 0
        while not found_end:
            block = raw.read_at(offset, BLOCK)
            if len(block) < BLOCK:
                if hdu == 0 or block.strip(b"\0 "):
                    raise HeaderError(f"{raw.path}: truncated in the header of HDU {hdu}")
                return pairs  # trailing padding after the last HDU
            if hdu > 0 and blocks == 0 and not block.startswith(b"XTENSION"):
                if block.strip(b"\0 "):
                    raise _NeedsAstropy  # not an extension: astropy knows what to ignore
                return pairs
            offset += BLOCK
            blocks += 1
            if blocks > _MAX_HEADER_BLOCKS:
                raise HeaderError(f"{raw.path}: header of HDU {hdu} has no END card")
            text = block.decode("ascii", errors="replace")
            if "\ufffd" in text:
                raise _NeedsAstropy  # non-ASCII bytes in a header: astropy decides
            for start in range(0, BLOCK, _CARD):
                keyword = _KEYWORDS.get(text[start:start + 8])
                if keyword is None:
                    keyword = _keyword(text[start:start + 8])
                if keyword == "END" and not text[start + 8:start + _CARD].strip():
                    found_end = True
                    break
                if text[start + 8:start + 10] == "= " and keyword not in _COMMENTARY:
                    # first value wins across HDUs: parse a later repeat only when the
                    # data-unit size of this HDU needs it
                    if keyword in seen and keyword not in _STRUCTURAL:
                        continue
                    if keyword in _LEFT_TO_ASTROPY:
                        raise _NeedsAstropy
                    if keep is not None and keyword not in _STRUCTURAL and not keep(keyword):
                        continue  # the caller will never look at this keyword
                    value = _value(text[start + 10:start + _CARD])
                    hdu_cards.setdefault(keyword, value)
                    if keyword not in seen:
                        seen.add(keyword)
                        pairs.append((keyword, value))
                elif keyword in _LEFT_TO_ASTROPY:
                    raise _NeedsAstropy
                elif keyword in ("COMMENT", "HISTORY"):
                    if keep is None:
                        pairs.append((keyword, text[start + 8:start + _CARD].rstrip()))
                elif keyword:
                    raise _NeedsAstropy  # a keyword card without "= ": astropy says what its value is
        size = _data_size(hdu_cards, hdu)
        offset += (size + BLOCK - 1) // BLOCK * BLOCK
        hdu += 1
    return pairs


class _UseCardWalk(Exception):
    """The selective reader met something the card-by-card reader decides."""


_END_CARD = b"END".ljust(_CARD)
_VALUE_INDICATOR = b"= "
_ASTROPY_FIELDS = frozenset({b"CONTINUE", b"HIERARCH"})
_VALUE_CACHE_LIMIT = 1 << 16
_LAYOUT_LIMIT = 4096
#: raw card text after the keyword ("= " onwards) -> parsed value; dataset headers repeat most values
_VALUES: dict[bytes, str] = {}
_FIELD_STRUCTS: dict[int, struct.Struct] = {}


def _keyword_fields(text: bytes, cards: int) -> tuple[bytes, ...]:
    """The 8-byte keyword fields of the first ``cards`` cards of ``text``, in one C call."""
    unpacker = _FIELD_STRUCTS.get(cards)
    if unpacker is None:
        if len(_FIELD_STRUCTS) >= 1024:
            _FIELD_STRUCTS.clear()
        unpacker = _FIELD_STRUCTS[cards] = struct.Struct(f"{'8s72x' * cards}{len(text) - cards * _CARD}x")
    return unpacker.unpack(text)


class _Layout:
    """The wanted cards of one header layout, and how to cut them out in one C call.

    ``tails(text)`` gives the 72 bytes after the keyword of each wanted card (an
    ``itemgetter`` of slices), ``keywords`` their keywords, ``structural`` the
    positions (in ``keywords``) of the cards that size the data unit.
    """

    __slots__ = ("tails", "keywords", "structural", "sizing")

    def __init__(self, picked: list[tuple[int, str, bool]]):
        slices = [slice(start, start + _CARD - 8) for start, _keyword, _structural in picked]
        getter = operator.itemgetter(*slices) if slices else (lambda text: ())
        # itemgetter of one item gives the item, not a 1-tuple
        self.tails = getter if len(slices) != 1 else (lambda text, one=slices[0]: (text[one],))
        self.keywords = tuple(keyword for _start, keyword, _structural in picked)
        self.structural = tuple((index, keyword) for index, (_s, keyword, structural) in enumerate(picked)
                                if structural)
        self.sizing = operator.itemgetter(*(index for index, _keyword in self.structural)) \
            if len(self.structural) > 1 else None


class _Selection:
    """What one ``keep`` function wants of a header, worked out once per header layout.

    A layout is the sequence of keyword fields of one HDU's header: datasets of one
    kind share it, so the wanted cards' positions are found once for all of them.
    """

    __slots__ = ("keep", "layouts", "_wanted")

    def __init__(self, keep: Callable[[str], bool]):
        self.keep = keep
        self.layouts: dict[bytes, _Layout] = {}  # keyword columns (see _keyword_columns) -> layout
        self._wanted: dict[bytes, tuple[str, bool] | None] = {}  # field -> (keyword, structural) or None

    def layout(self, text: bytes, cards: int) -> _Layout:
        """The :class:`_Layout` of a header whose END is card number ``cards``."""
        columns = _keyword_columns(text, cards)
        found = self.layouts.get(columns)
        if found is not None:
            return found
        if columns != columns.upper():
            raise _UseCardWalk  # lower-case keywords are upper-cased card by card
        fields = _keyword_fields(text, cards)
        if not _ASTROPY_FIELDS.isdisjoint(fields):
            raise _NeedsAstropy
        picked = []
        taken: set[bytes] = set()
        for index, field in enumerate(fields):
            if field in taken:
                continue
            taken.add(field)
            choice = self._wanted.get(field, False)
            if choice is False:
                choice = self._wanted[field] = self._classify(field)
            if choice is not None:
                picked.append((index * _CARD + 8, *choice))
        if len(self.layouts) >= _LAYOUT_LIMIT:
            self.layouts.clear()
        found = self.layouts[columns] = _Layout(picked)
        return found

    def _classify(self, field: bytes) -> tuple[str, bool] | None:
        keyword = field.decode("ascii").rstrip()
        structural = keyword in _STRUCTURAL
        if keyword not in _COMMENTARY and keyword != "END" and (structural or self.keep(keyword)):
            return keyword, structural
        return None


def _keyword_columns(text: bytes, cards: int) -> bytes:
    """The keyword fields of the first ``cards`` cards, column by column: 8 strided C-level slices.

    Equal exactly when the keyword sequences are equal (same length, same bytes).
    """
    stop = cards * _CARD
    return b"".join([text[column:stop:_CARD] for column in range(8)])


_SELECTIONS: dict[object, _Selection] = {}


def _selection(keep: Callable[[str], bool]) -> _Selection:
    found = _SELECTIONS.get(keep)
    if found is None:
        if len(_SELECTIONS) >= 16:
            _SELECTIONS.clear()
        found = _SELECTIONS[keep] = _Selection(keep)
    return found


def _parsed_value(card_tail: bytes) -> str:
    """The value of a card from its 72 bytes after the keyword (remembered)."""
    if not card_tail.startswith(_VALUE_INDICATOR):
        raise _UseCardWalk  # no value here: a later card of this keyword may hold it
    value = _value(card_tail[2:].decode("ascii"))
    if len(_VALUES) >= _VALUE_CACHE_LIMIT:
        _VALUES.clear()
    _VALUES[card_tail] = value
    return value


def _end_card(text: bytes, start: int = 0) -> int:
    """Index (in cards from ``start``) of the first END card at or after ``start``, or -1.

    Only a match on a card boundary counts: the same bytes inside a value are not an END card.
    """
    position = text.find(_END_CARD, start)
    while position >= 0 and (position - start) % _CARD:
        position = text.find(_END_CARD, position + 1)
    return -1 if position < 0 else (position - start) // _CARD


def _header_text(raw: RawFile, offset: int, hdu: int) -> tuple[bytes, int] | None:
    """The header blocks at ``offset`` and the index of their END card; None after the last HDU.

    Anything irregular (no END card in the file, a truncated header) is left to the card
    walk, which words the error.
    """
    prefix = raw.prefix
    if offset + BLOCK <= len(prefix) and (hdu == 0 or prefix.startswith(b"XTENSION", offset)):
        # usually the whole header is in the bytes read at open: find its END card there
        card = _end_card(prefix, offset)
        if card >= 0:
            end = offset + (card // (BLOCK // _CARD) + 1) * BLOCK
            if end <= len(prefix):
                return prefix[offset:end], card
    blocks: list[bytes] = []
    while True:
        block = raw.read_at(offset, BLOCK)
        if len(block) < BLOCK:
            if hdu > 0 and not blocks and not block.strip(b"\0 "):
                return None  # trailing padding after the last HDU
            raise _UseCardWalk
        if hdu > 0 and not blocks and not block.startswith(b"XTENSION"):
            if block.strip(b"\0 "):
                raise _NeedsAstropy  # not an extension: astropy knows what to ignore
            return None
        blocks.append(block)
        card = _end_card(block)
        if card >= 0:
            text = blocks[0] if len(blocks) == 1 else b"".join(blocks)
            return text, (len(blocks) - 1) * (BLOCK // _CARD) + card
        if len(blocks) >= _MAX_HEADER_BLOCKS:
            raise _UseCardWalk
        offset += BLOCK


def _selected_cards(raw: RawFile, keep: Callable[[str], bool]) -> dict[str, str]:
    """:func:`_fast_cards` for the keywords ``keep`` accepts (plus the structural ones), merged."""
    selection = _selection(keep)
    get_value = _VALUES.get
    merged: dict[str, str] = {}
    offset = 0
    hdu = 0
    while offset < raw.size:
        found = _header_text(raw, offset, hdu)
        if found is None:
            break
        text, end = found
        if not text.isascii():
            raise _NeedsAstropy  # non-ASCII bytes in a header: astropy decides
        layout = selection.layout(text, end)
        tails = layout.tails(text)
        values = list(map(get_value, tails))
        if None in values:
            values = [_parsed_value(tail) if value is None else value for tail, value in zip(tails, values)]
        # first value wins across HDUs, in order of first appearance (a C-level loop)
        _consume(map(merged.setdefault, layout.keywords, values))
        offset += len(text)
        sizing = layout.sizing
        # the layout object itself (hashed by identity) stands for its keywords
        if sizing is not None:
            size_key = (layout, hdu == 0, sizing(values))
        else:
            size_key = (layout, hdu == 0, tuple(values[i] for i, _keyword in layout.structural))
        size = _DATA_SIZES.get(size_key)
        if size is None:
            if len(_DATA_SIZES) >= _LAYOUT_LIMIT:
                _DATA_SIZES.clear()
            size = _DATA_SIZES[size_key] = _data_size({keyword: values[i] for i, keyword in layout.structural},
                                                      hdu)
        offset += (size + BLOCK - 1) // BLOCK * BLOCK
        hdu += 1
    return merged


def _consume(iterator) -> None:
    collections.deque(iterator, maxlen=0)


#: (layout, primary?, structural values) -> data unit size in bytes
_DATA_SIZES: dict[tuple, int] = {}


_KEYWORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _is_end_card(card: bytes, strict: bool) -> bool:
    """Whether ``card`` ends a header, as astropy's ``fits.open`` decides.

    Strict (its first reading): END and 77 blanks.  Lenient (its second reading, when
    no strict END card is found): END, blanks, then nothing or a non-keyword byte.
    """
    if strict or not card.startswith(b"END"):
        return card == _END_CARD
    rest = card[3:].lstrip(b" ")
    return not rest or rest[0] not in _KEYWORD_BYTES


def _raw_header(raw: RawFile, offset: int, hdu: int) -> tuple[bytes, bool] | None:
    """The header blocks of HDU ``hdu`` at ``offset`` up to its END card, and whether that
    END card is a strict one (see :func:`_is_end_card`); None after the last HDU.

    Like ``fits.open``: the first strict END card in all-ASCII blocks ends the header;
    failing that, the first lenient one does.
    """
    first = raw.read_at(offset, BLOCK)
    if hdu > 0 and (len(first) < BLOCK or not first.startswith(b"XTENSION")):
        return None  # padding or bytes after the last HDU: ignored, as astropy does
    for strict in (True, False):
        blocks: list[bytes] = []
        position = offset
        while True:
            block = raw.read_at(position, BLOCK)
            if len(block) < BLOCK or (strict and not block.isascii()):
                break
            blocks.append(block)
            if any(_is_end_card(block[start:start + _CARD], strict) for start in range(0, BLOCK, _CARD)):
                return b"".join(blocks), strict
            if len(blocks) >= _MAX_HEADER_BLOCKS:
                raise HeaderError(f"{raw.path}: header of HDU {hdu} has no END card")
            position += BLOCK
    raise HeaderError(f"{raw.path}: truncated in the header of HDU {hdu} (no END card)")


def _astropy_cards(raw: RawFile) -> list[tuple[str, str]]:
    """Every HDU's cards as astropy parses them; the HDUs are found by this module's checked walk.

    astropy parses only each header's own bytes (so it never walks sizes taken from a header),
    its warnings are silenced, and anything it raises becomes one line naming the file.
    """
    from astropy.io import fits

    pairs: list[tuple[str, str]] = []
    offset = 0
    hdu = 0
    while offset < raw.size:
        found = _raw_header(raw, offset, hdu)
        if found is None:
            break
        text, strict = found
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if strict:
                    header = fits.Header.fromstring(text.decode("ascii"))
                else:
                    header = fits.Header.fromfile(io.BytesIO(text))
                cards = [(card.keyword, str(card.value)) for card in header.cards]
        except Exception as exc:  # noqa: BLE001 - astropy raises many kinds; one line names the file
            problem = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            raise HeaderError(f"{raw.path}: not a readable FITS file (HDU {hdu}: {problem})") from None
        pairs += cards
        structural: dict[str, str] = {}
        for keyword, value in cards:
            if keyword.upper() in _STRUCTURAL:
                structural.setdefault(keyword.upper(), value)
        offset += len(text) + (_data_size(structural, hdu) + BLOCK - 1) // BLOCK * BLOCK
        hdu += 1
    return pairs


def read_fits_header(path, keep: Callable[[str], bool] | None = None) -> dict[str, str]:
    """All HDUs' cards of a FITS file, merged (first value wins).

    Parameters
    ----------
    path : path-like
    keep : callable, optional
        When given, only keywords for which ``keep(keyword)`` is true are read
        (the batch engine passes the keywords the rules can use: parsing the
        others is most of the cost of reading a header).

    Raises
    ------
    HeaderError
        ``"<path>: <problem>"`` for an unreadable, non-FITS, empty or truncated file.
    """
    with open_raw(path) as raw:
        return read_fits_raw(raw, keep)


def read_fits_raw(raw: RawFile, keep: Callable[[str], bool] | None = None) -> dict[str, str]:
    """:func:`read_fits_header` on a file already opened with :func:`~.rawfile.open_raw`."""
    if raw.size == 0:
        raise HeaderError(f"{raw.path}: empty file")
    if not raw.prefix.startswith(FITS_MAGIC):
        raise HeaderError(f"{raw.path}: not a FITS file (no SIMPLE card)")
    try:
        try:
            if keep is not None:
                try:
                    return _selected_cards(raw, keep)  # upper-case keywords, first value wins, no COMMENT/HISTORY
                except _UseCardWalk:
                    pass
            pairs = _fast_cards(raw, keep)
        except _NeedsAstropy:
            pairs = _astropy_cards(raw)
            if keep is not None:
                pairs = [(k, v) for k, v in pairs if k.upper() in _STRUCTURAL or keep(k.upper())]
    except _BadStructure as exc:
        raise HeaderError(f"{raw.path}: bad FITS structure: {exc}") from None
    return merge_cards(pairs)
