"""The interception check's in-memory index of an agency's restrictions, in numpy arrays rather than Python objects.

A dict of tuples costs about 550 bytes a subject; these arrays cost about 60, so one process holds 15 million
subjects. The base is immutable and sorted, searched by one binary search; subjects changed since the build live
in a small overlay of plain tuples until `compacted()` folds them in. Nothing here does I/O or takes a lock.
"""

from __future__ import annotations

import itertools
import math
import mmap
import operator
import sys
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

# subject, entry id, end as epoch seconds (None while the entry stands), measure names
Row = tuple[str, str, float | None, Sequence[str]]
# one restriction as the overlay holds it: entry id, measures bit mask, end (+inf while the entry stands)
Held = tuple[str, int, float]

KEY_BYTES = 18  # a resident ID or a unified social credit code, both ASCII
ENTRY_BYTES = 800  # an entry id is at most 200 characters (events.ShortText), so 800 bytes of UTF-8
MAX_MEASURES = 16  # the width of the mask column
_KEY = np.dtype(f"S{KEY_BYTES}")
# packed, 14 bytes rather than 16: after the keys and entry ids this is the biggest array
_RESTRICTION = np.dtype([("entry", "<u4"), ("mask", "<u2"), ("until", "<f8")])
_NEVER = math.inf  # `until > now` holds for every now, so "while the entry stands" needs no special case
_CHUNK = 1 << 16  # rows turned into arrays at a time, so a streamed build never holds every row's objects
_MAPPED_FROM = 1 << 16  # bytes from which an array gets a mapping of its own (see _empty)
_MISSING = object()
_SUBJECT, _ENTRY, _UNTIL, _NAMES = (operator.itemgetter(i) for i in range(4))  # of a Row
_NONE_AS_NEVER = {None: _NEVER}


class RestrictionIndex:
    """Which entries restrict which subjects for which measures, and until when.

    Thread safety rests on the GIL alone: the arrays are never written once installed, and `replace` only
    assigns or removes whole tuples in the overlay dict, so a reader sees either the old or the new restrictions
    of a subject, never a mix. There must be one writer at a time (`replace` and `compacted` in one thread).

    Invariants of the base: `_keys` distinct and sorted bytewise; subject i's restrictions are
    `_table[_offsets[i]:_offsets[i + 1]]`; entry ids distinct, sorted bytewise, entry j being
    `_entries[_entry_offsets[j]:_entry_offsets[j + 1]]`, each used by some restriction.
    """

    __slots__ = (
        "_bits",
        "_count",
        "_entries",
        "_entry_offsets",
        "_entry_starts",
        "_keys",
        "_measures",
        "_names_of",
        "_offsets",
        "_overlay",
        "_starts",
        "_table",
    )

    def __init__(self, measures: Sequence[str]) -> None:
        measures = tuple(measures)
        if len(measures) > MAX_MEASURES:
            raise ValueError(f"at most {MAX_MEASURES} measures fit the mask, not {len(measures)}")
        if len(set(measures)) != len(measures):
            raise ValueError(f"measures repeat: {measures!r}")
        self._measures = measures
        self._bits = {m: 1 << i for i, m in enumerate(measures)}
        # measure names by mask, filled as masks are met (whole values assigned, so readers may share it)
        self._names_of: dict[int, tuple[str, ...]] = {}
        self._overlay: dict[str, tuple[Held, ...] | None] = {}  # changed since the build; None: nothing now
        empty = np.zeros(1, np.uint32)
        self._set_base(np.empty(0, _KEY), empty, np.empty(0, _RESTRICTION), b"", empty)

    def _set_base(
        self, keys: np.ndarray, offsets: np.ndarray, table: np.ndarray, entries: bytes, entry_offsets: np.ndarray
    ) -> None:
        self._keys = _frozen(keys)
        self._offsets = _frozen(offsets)
        self._table = _frozen(table)
        self._entries = entries  # bytes rather than an array: slicing one id out of it is what lookups do most
        self._entry_offsets = _frozen(entry_offsets)
        # the same offsets for lookups: a memoryview reads one number as a Python int 2-3 times faster than numpy
        self._starts = memoryview(offsets)
        self._entry_starts = memoryview(entry_offsets)
        self._count = len(keys)

    # -- building ----------------------------------------------------------------------------------

    @classmethod
    def build(cls, measures: Sequence[str], rows: Iterable[Row]) -> RestrictionIndex:
        """The index of `rows`, fastest when they come sorted by subject in byte order (collate "C").

        Measures the agency does not have are ignored, and a row left with none holds nothing. Rows are taken
        apart a chunk at a time by C loops (map, numpy): a Python loop per row would take most of the build.
        Entry ids, shared by a debtor and its legal representative, are deduplicated by one sort rather than a
        dict, which would hold every id as a str at once and costs more here than the sort.
        """
        index = cls(measures)
        mask_of: dict[str, int] = {}
        keys: list[np.ndarray] = []
        entry_ids: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        untils: list[np.ndarray] = []
        it = iter(rows)
        while chunk := list(itertools.islice(it, _CHUNK)):
            shapes = list(map("\0".join, map(_NAMES, chunk)))  # a str is much cheaper to make and hash than a tuple
            for shape in set(shapes).difference(mask_of):
                mask_of[shape] = index._mask(shape.split("\0"))  # exact: Postgres text holds no NUL
            mask = np.fromiter(map(mask_of.__getitem__, shapes), np.uint16, count=len(chunk))
            parts = [mask, _keys_of(map(_SUBJECT, chunk), len(chunk)), _entry_ids_of(chunk), _untils_of(chunk)]
            del chunk, shapes
            if not mask.all():
                keep = mask != 0
                parts = [part[keep] for part in parts]
            for kept, part in zip((masks, keys, entry_ids, untils), parts, strict=True):
                kept.append(_kept(part))
        if not keys:
            return index
        # parts are copied into place and let go one by one, which keeps the build's peak low
        rows_count = sum(map(len, masks))
        entry, blob, lengths = _deduplicated(entry_ids, rows_count)
        table = _empty(rows_count, _RESTRICTION)
        table["entry"] = entry
        del entry
        _fill(table["mask"], masks)
        _fill(table["until"], untils)
        index._install(_fill(_empty(rows_count, _KEY), keys), table, blob, lengths)
        return index

    def _install(self, row_keys: np.ndarray, table: np.ndarray, blob: bytes, entry_lengths: np.ndarray) -> None:
        """Make the base from one key per restriction, sorting them if they are not sorted yet."""
        if len(table) >= 1 << 32 or len(blob) >= 1 << 32:
            raise ValueError("more than 2**32 restrictions or bytes of entry ids: the offsets are uint32")
        if not bool(np.all(row_keys[1:] >= row_keys[:-1])):
            # stable: a subject's restrictions keep their order
            order = _lexsort(_packed(_words([row_keys], len(row_keys))), len(row_keys))
            row_keys, table = _taken(row_keys, order), _taken(table, order)
            del order
        starts = np.flatnonzero(np.concatenate(([True], row_keys[1:] != row_keys[:-1])))[: len(row_keys)]
        offsets = _empty(len(starts) + 1, np.uint32)
        offsets[:-1], offsets[-1] = starts, len(table)
        keys = row_keys if len(starts) == len(row_keys) else _taken(row_keys, starts)
        del row_keys, starts
        entry_offsets = _empty(len(entry_lengths) + 1, np.uint32)
        entry_offsets[0] = 0
        entry_offsets[1:] = np.cumsum(entry_lengths, dtype=np.int64)
        self._set_base(keys, offsets, table, blob, entry_offsets)

    # -- the questions -----------------------------------------------------------------------------

    def blocking(self, subject: str, measure: str, now: float) -> list[str]:
        """The entries barring `subject` from `measure` at `now`, sorted; KeyError for a measure not the agency's."""
        bit = self._bits[measure]
        held = self._overlay.get(subject, _MISSING)
        if held is None:
            return []
        found: list[str] = []
        if held is _MISSING:
            entry_id = self._entry_id
            for e, mask, until in self._base(subject):
                if mask & bit and until > now:
                    found.append(entry_id(e))
        else:
            for e, mask, until in held:
                if mask & bit and until > now:
                    found.append(e)
        return found if len(found) < 2 else sorted(set(found))  # one restriction is by far the most common

    def held(self, subject: str, now: float) -> list[tuple[str, str, float | None]]:
        """Every (entry id, measure, end or None) in force for `subject` at `now`, sorted (None as the latest end)."""
        held = self._overlay.get(subject, _MISSING)
        if held is None:
            return []
        if held is _MISSING:
            entry_id = self._entry_id
            held = [(entry_id(e), mask, until) for e, mask, until in self._base(subject) if until > now]
        names = self._names
        items = {(e, m, until) for e, mask, until in held if until > now for m in names(mask)}
        return [(e, m, None if until == _NEVER else until) for e, m, until in sorted(items)]

    def __contains__(self, subject: object) -> bool:
        """Whether `subject` has a restriction at all, in force now or not."""
        if not isinstance(subject, str):
            return False
        held = self._overlay.get(subject, _MISSING)
        return bool(self._base(subject)) if held is _MISSING else held is not None

    def __len__(self) -> int:
        return self._count

    def _base(self, subject: str) -> list[tuple[int, int, float]]:
        """The subject's (entry, mask, until) in the base arrays, whatever the overlay says."""
        try:
            key = subject.encode("ascii")
        except UnicodeEncodeError:
            return []
        if len(key) > KEY_BYTES:
            return []  # numpy would cut it to 18 bytes and might find another subject
        keys = self._keys
        i = keys.searchsorted(key)
        if i == len(keys) or keys[i] != key:  # the comparison also keeps "ab\0" (never stored) from finding "ab"
            return []
        starts = self._starts
        return self._table[starts[i] : starts[i + 1]].tolist()

    def _entry_bytes(self, entry: int) -> bytes:
        starts = self._entry_starts
        return self._entries[starts[entry] : starts[entry + 1]]

    def _entry_id(self, entry: int) -> str:
        return self._entry_bytes(entry).decode()

    def _mask(self, names: Iterable[str]) -> int:
        bits = self._bits
        mask = 0
        for name in names:
            mask |= bits.get(name, 0)
        return mask

    def _names(self, mask: int) -> tuple[str, ...]:
        names = self._names_of.get(mask)
        if names is None:
            names = self._names_of[mask] = tuple(m for i, m in enumerate(self._measures) if mask >> i & 1)
        return names

    # -- changes -----------------------------------------------------------------------------------

    def replace(self, subject: str, rows: Iterable[Row]) -> None:
        """Make `rows` the subject's complete restrictions (no rows: it has none now), in the overlay only.

        The base is left alone, so a change costs microseconds and readers never see arrays being rebuilt. The
        subject and entry ids must be what a build accepts, so that `compacted()` cannot fail on them later.
        """
        _check_subject(subject)
        held: list[Held] = []
        for row_subject, entry_id, until, names in rows:
            if row_subject != subject:
                raise ValueError(f"a row of {row_subject!r} among the restrictions of {subject!r}")
            _check_entry(entry_id)
            mask = self._mask(names)
            if mask:
                held.append((entry_id, mask, _NEVER if until is None else float(until)))
        fresh = tuple(held) or None
        in_base = bool(self._base(subject))
        before = self._overlay.get(subject, _MISSING)
        was = in_base if before is _MISSING else before is not None
        if fresh is None and not in_base:
            self._overlay.pop(subject, None)  # nothing in the base to hide: keep the overlay small
        else:
            self._overlay[subject] = fresh
        self._count += (fresh is not None) - was

    @property
    def overlay_size(self) -> int:
        return len(self._overlay)

    def compacted(self) -> RestrictionIndex:
        """A new index with the overlay folded into fresh base arrays; this one is left as it was.

        The caller swaps its reference, so readers use this index until then. Nothing is sorted again but the
        overlay: its rows are merged into the base's, and its entry ids into the base's sorted ids (those already
        there keep their place). Ids no subject holds any more are dropped.
        """
        overlay = self._overlay.copy()  # one C call: a snapshot even if replace() runs meanwhile
        index = RestrictionIndex(self._measures)
        if not overlay:
            index._set_base(self._keys, self._offsets, self._table, self._entries, self._entry_offsets)  # shared
            return index
        names = sorted(overlay)  # ASCII (replace() checks), so str order is byte order
        kept_keys, kept_table = self._rows_except(names)
        new_keys, new_table, new_ids = self._rows_of(names, overlay)
        # both sorted by subject and no subject in both: each row's place is its rank plus the other's before it
        at_kept = np.arange(len(kept_keys)) + new_keys.searchsorted(kept_keys)
        at_new = np.arange(len(new_keys)) + kept_keys.searchsorted(new_keys)
        row_keys = _empty(len(kept_keys) + len(new_keys), _KEY)
        row_keys[at_kept], row_keys[at_new] = kept_keys, new_keys
        table = _empty(len(row_keys), _RESTRICTION)
        table[at_kept], table[at_new] = kept_table, new_table
        del kept_keys, kept_table, new_keys, new_table, at_kept, at_new
        index._install(row_keys, table, *self._merge_ids(table, new_ids))
        return index

    def _rows_except(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The base's rows (one key each) of every subject but `names`, sorted."""
        keys, counts = self._keys, np.diff(self._offsets)
        changed = _keys_of(names, len(names))
        at = keys.searchsorted(changed)
        found = at < len(keys)
        found[found] = keys[at[found]] == changed[found]
        keep = np.ones(len(keys), bool)
        keep[at[found]] = False
        return np.repeat(keys[keep], counts[keep]), self._table[np.repeat(keep, counts)]

    def _rows_of(
        self, names: list[str], overlay: dict[str, tuple[Held, ...] | None]
    ) -> tuple[np.ndarray, np.ndarray, dict[bytes, tuple[int, int]]]:
        """The overlay's rows, sorted, and the ids not in the base: id -> (number, insertion point in the base).

        A row's entry is the base's index of its id, or the number of entries in the base plus the id's number.
        """
        old = len(self._entry_offsets) - 1
        ids = sorted({entry_id for name in names for entry_id, _, _ in overlay[name] or ()})  # as UTF-8 sorts
        found, insert_at = self._find_ids([entry_id.encode() for entry_id in ids])
        entry_of: dict[str, int] = {}
        new_ids: dict[bytes, tuple[int, int]] = {}
        for entry_id, at, point in zip(ids, found.tolist(), insert_at.tolist(), strict=True):
            if at < 0:
                at = old + len(new_ids)
                new_ids[entry_id.encode()] = (len(new_ids), point)
            entry_of[entry_id] = at
        subjects: list[str] = []
        entries: list[int] = []
        masks: list[int] = []
        untils: list[float] = []
        for name in names:
            for entry_id, mask, until in overlay[name] or ():
                subjects.append(name)
                entries.append(entry_of[entry_id])
                masks.append(mask)
                untils.append(until)
        table = np.empty(len(entries), _RESTRICTION)
        table["entry"], table["mask"], table["until"] = entries, masks, untils
        return _keys_of(subjects, len(subjects)), table, new_ids

    def _find_ids(self, ids: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """For sorted `ids`: the index of each among the base's ids (-1 if absent), and where it would go.

        The base's ids are looked up in `ids` rather than the other way round, a chunk at a time as fixed-width
        strings, so that it is all numpy however many ids the overlay holds.
        """
        offsets = self._entry_offsets
        lengths = np.diff(offsets)
        width = max(int(lengths.max(initial=0)), max(map(len, ids), default=0), 1)
        queries = np.array(ids, dtype=f"S{width}")
        found = np.full(len(ids), -1, np.int64)
        below = np.zeros(len(ids) + 1, np.int64)  # below[j]: base ids sorting between ids j - 1 and j
        blob = np.frombuffer(self._entries, np.uint8)
        for start in range(0, len(lengths), _CHUNK):
            end = min(start + _CHUNK, len(lengths))
            padded = np.zeros((end - start, width), np.uint8)
            padded[np.arange(width) < lengths[start:end, None]] = blob[offsets[start] : offsets[end]]
            chunk = padded.view(f"S{width}").reshape(-1)
            at = queries.searchsorted(chunk)
            hit = at < len(ids)
            hit[hit] = queries[at[hit]] == chunk[hit]
            found[at[hit]] = start + np.flatnonzero(hit)
            below += np.bincount(queries.searchsorted(chunk, side="right"), minlength=len(ids) + 1)
        return found, np.cumsum(below)[: len(ids)]

    def _merge_ids(self, table: np.ndarray, new_ids: dict[bytes, tuple[int, int]]) -> tuple[bytes, np.ndarray]:
        """Merge `new_ids` into the base's ids still used by `table`, renumbering its entries to match."""
        old = len(self._entry_offsets) - 1
        refs = table["entry"]
        used = np.zeros(old, bool)
        used[refs[refs < old]] = True
        ids = sorted(new_ids)  # so their insertion points are sorted too
        number = np.fromiter((new_ids[raw][0] for raw in ids), np.int64, count=len(ids))
        insert_at = np.fromiter((new_ids[raw][1] for raw in ids), np.int64, count=len(ids))
        used_before = np.concatenate(([0], np.cumsum(used)))  # base ids in use before each base id
        new_final = np.arange(len(ids)) + used_before[insert_at]
        renumber = np.empty(old + len(ids), np.int64)
        renumber[:old] = used_before[:-1] + np.searchsorted(insert_at, np.arange(old), side="right")
        renumber[old + number] = new_final
        table["entry"] = renumber[refs]
        del renumber, refs

        old_lengths = np.diff(self._entry_offsets).astype(np.int64)
        if used.all():
            kept = self._entries
        else:
            kept = np.frombuffer(self._entries, np.uint8)[np.repeat(used, old_lengths)].tobytes()
        kept_lengths = old_lengths[used]
        cuts = np.concatenate(([0], np.cumsum(kept_lengths)))[used_before[insert_at]].tolist()
        pieces: list[bytes] = []
        last = 0
        for cut, raw in zip(cuts, ids, strict=True):
            pieces += (kept[last:cut], raw)
            last = cut
        pieces.append(kept[last:])
        lengths = np.empty(len(kept_lengths) + len(ids), np.int64)
        is_new = np.zeros(len(lengths), bool)
        is_new[new_final] = True
        lengths[is_new] = np.fromiter(map(len, ids), np.int64, count=len(ids))
        lengths[~is_new] = kept_lengths
        return b"".join(pieces), lengths

    # -- size --------------------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays, plus an estimate of the overlay's Python objects."""
        arrays = (self._keys, self._offsets, self._table, self._entry_offsets)
        size = len(self._entries) + sum(a.nbytes for a in arrays)
        overlay = self._overlay.copy()
        size += sys.getsizeof(overlay)
        for subject, held in overlay.items():
            size += sys.getsizeof(subject) + sys.getsizeof(held)
            for restriction in held or ():
                size += sys.getsizeof(restriction) + sum(map(sys.getsizeof, restriction))
        return size


def _empty(shape: int | tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
    """An uninitialised array that, unless small, lives in an anonymous mapping of its own.

    glibc keeps freed memory that lies below blocks still in use, so without this a process would keep a
    build's temporaries (its peak) as well as the index; a mapping goes back to the system with its array.
    """
    dtype = np.dtype(dtype)
    size = (math.prod(shape) if isinstance(shape, tuple) else shape) * dtype.itemsize
    if size < _MAPPED_FROM:
        return np.empty(shape, dtype)
    return np.frombuffer(mmap.mmap(-1, size), dtype).reshape(shape)


def _kept(a: np.ndarray) -> np.ndarray:
    """`a` moved into an array of `_empty`'s, for what the build keeps from one chunk to the end."""
    out = _empty(a.shape, a.dtype)
    out[...] = a
    return out


def _taken(a: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """`a[indices]` in an array of `_empty`'s."""
    return np.take(a, indices, out=_empty(len(indices), a.dtype))


def _frozen(a: np.ndarray) -> np.ndarray:
    """Readers share the arrays without a lock, so nothing may write them once installed."""
    a.flags.writeable = False
    return a


def _keys_of(subjects: Iterable[str], count: int) -> np.ndarray:
    """Subjects as S18, refusing what S18 cannot hold: non-ASCII, longer than 18.

    NUL, which Postgres text never holds, is not looked for here (S18 would drop a trailing one).
    """
    try:
        keys = np.fromiter(subjects, f"S{KEY_BYTES + 1}", count=count)  # a byte more, to see what S18 would cut
    except UnicodeEncodeError as exc:
        raise ValueError(f"a subject is not ASCII: {exc}") from None
    too_long = np.flatnonzero(_bytes_of(keys)[:, KEY_BYTES])
    if len(too_long):
        raise ValueError(f"a subject is longer than {KEY_BYTES} characters: {keys[too_long[0]].decode()!r}...")
    return keys.astype(_KEY)


def _entry_ids_of(rows: list[Row]) -> np.ndarray:
    """The rows' entry ids as UTF-8 in a fixed-width array as wide as the widest, refusing ids over ENTRY_BYTES."""
    chars = max(map(len, map(_ENTRY, rows)), default=1)
    try:  # ASCII, as entry ids are in practice: a character is a byte
        ids = np.fromiter(map(_ENTRY, rows), f"S{min(chars, ENTRY_BYTES) + 1}", count=len(rows))
    except UnicodeEncodeError:
        width = f"S{min(chars * 4, ENTRY_BYTES) + 1}"
        ids = np.fromiter((_ENTRY(row).encode() for row in rows), width, count=len(rows))
    lengths = np.char.str_len(ids)
    longest = int(lengths.max(initial=1))
    if longest > ENTRY_BYTES:
        raise ValueError(f"an entry id is longer than {ENTRY_BYTES} bytes: {ids[lengths.argmax()].decode()!r}...")
    return ids.astype(f"S{longest}")


def _untils_of(rows: list[Row]) -> np.ndarray:
    """The rows' ends as float64 epoch seconds, +inf for None: `get(until, until)` maps None alone."""
    return np.fromiter(map(_NONE_AS_NEVER.get, map(_UNTIL, rows), map(_UNTIL, rows)), np.float64, count=len(rows))


def _check_subject(subject: str) -> None:
    """What a build accepts, checked one at a time (and NUL too), so that `compacted()` cannot fail later."""
    if not (subject.isascii() and len(subject) <= KEY_BYTES and "\0" not in subject):
        raise ValueError(f"subject {subject!r} is not up to {KEY_BYTES} ASCII characters")


def _check_entry(entry_id: str) -> None:
    if len(entry_id.encode()) > ENTRY_BYTES or "\0" in entry_id:
        raise ValueError(f"entry id {entry_id!r} is not up to {ENTRY_BYTES} bytes of UTF-8")


def _fill(out: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Copy `parts` end to end into `out`, emptying the list as it goes so that each part is freed once copied."""
    at = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        out[at : at + len(part)] = part
        at += len(part)
    return out


def _words(parts: list[np.ndarray], count: int) -> np.ndarray:
    """Fixed-width byte strings as 8-byte words read big-endian, one contiguous row of `count` per word position.

    The numbers compare as the bytes do, so sorting them sorts the strings, at a fraction of the cost of
    numpy's string sort (see `_packed`). `parts` are consumed as in `_fill`.
    """
    width = -(-max(part.dtype.itemsize for part in parts) // 8)
    words = _empty((width, count), np.uint64)  # native order: numpy sorts it without a byte-swapped copy
    at = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        padded = np.zeros((len(part), width * 8), np.uint8)
        padded[:, : part.dtype.itemsize] = _bytes_of(part)
        words[:, at : at + len(part)] = padded.view(">u8").T
        at += len(part)
    return words


def _packed(words: np.ndarray) -> list[np.ndarray]:
    """The strings in `words` re-encoded, in the same order, in as few numbers as their varying bytes need.

    Each byte position that varies is replaced by its rank among the values it takes there (4 bits for a digit,
    not 8), most significant first, so that an entry id fits one number: one sort rather than a lexsort over
    several words, which took a quarter of the build. Positions that never vary (a court's prefix) vanish.
    """
    packed: list[np.ndarray] = []
    current: np.ndarray | None = None
    free = 64
    for w in words:
        if len(w) == 0 or (w == w[0]).all():
            continue
        for shift in range(56, -8, -8):
            byte = (w >> np.uint64(shift)).astype(np.uint8)
            values = np.flatnonzero(np.bincount(byte, minlength=256))
            if len(values) < 2:
                continue
            bits = (len(values) - 1).bit_length()
            rank = np.zeros(256, np.uint64)
            rank[values] = np.arange(len(values))
            if current is None or bits > free:
                if current is not None:
                    packed.append(current)
                current, free = rank[byte], 64 - bits
                continue
            current <<= np.uint64(bits)
            current |= rank[byte]
            free -= bits
    if current is not None:
        packed.append(current)
    return packed


def _lexsort(packed: list[np.ndarray], count: int) -> np.ndarray:
    """The stable order of strings given as by `_packed`."""
    if len(packed) > 1:
        return np.lexsort(packed[::-1])
    return np.argsort(packed[0], kind="stable") if packed else np.arange(count)


def _deduplicated(parts: list[np.ndarray], count: int) -> tuple[np.ndarray, bytes, np.ndarray]:
    """Each row's entry number, and the distinct ids (sorted) end to end with their lengths; consumes `parts`."""
    words = _words(parts, count)
    packed = _packed(words)
    order = _lexsort(packed, count)
    first = _firsts(packed, order)
    del packed
    entry = _empty(count, np.uint32)
    entry[order] = np.cumsum(first, dtype=np.uint32) - 1
    firsts = order[first]
    del order, first
    distinct = [  # one row of words per id; 1-d gathers, much faster than numpy's 2-d fancy indexing
        np.stack([w[firsts[start : start + _CHUNK]] for w in words], axis=1) for start in range(0, len(firsts), _CHUNK)
    ]
    del words, firsts
    return entry, *_pack(distinct)


def _firsts(packed: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """Which rows, taken in `order`, differ from the one before (the first of every distinct string)."""
    first = np.zeros(len(order), bool)
    first[:1] = True
    for w in packed:
        ordered = w[order]
        first[1:] |= ordered[1:] != ordered[:-1]
    return first


def _pack(parts: list[np.ndarray]) -> tuple[bytes, np.ndarray]:
    """Strings given as chunks of rows of words (see `_words`) end to end without their padding, and their lengths.

    Chunks are consumed as in `_fill`, and so freed before the final copy into bytes.
    """
    lengths = np.empty(sum(map(len, parts)), np.uint16)
    pieces: list[bytes] = []
    done = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        width = part.shape[1] * 8
        padded = part.astype(">u8")  # back to the bytes in their order
        del part
        part_lengths = np.char.str_len(padded.view(f"S{width}").reshape(-1))
        lengths[done : done + len(part_lengths)] = part_lengths
        done += len(part_lengths)
        pieces.append(padded.view(np.uint8)[np.arange(width) < part_lengths[:, None]].tobytes())
    return b"".join(pieces), lengths


def _bytes_of(strings: np.ndarray) -> np.ndarray:
    """A fixed-width string array as a 2-d array of its bytes."""
    return np.ascontiguousarray(strings).view(np.uint8).reshape(len(strings), strings.dtype.itemsize)
