"""The interception index (hub.agency.index) answers as a plain dict of rows would, before and after changes."""

from __future__ import annotations

import itertools
import math
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.agency.index import RestrictionIndex, Row

MEASURES = ("AIR", "RAIL", "LOAN")
NOW = 1_790_000_000.0
# a small alphabet, so that subjects and entry ids recur and prefixes of one another ("1", "10") meet
SUBJECTS = st.one_of(
    st.text("019X", min_size=1, max_size=3),
    st.sampled_from(["11010519491231002X", "91110000600037341L", "11010519491231002"]),
)
ENTRIES = st.one_of(st.text("E12é", min_size=1, max_size=3), st.sampled_from(["E2026-J0105-0123456789"]))
UNTILS = st.one_of(st.none(), st.floats(NOW - 1000, NOW + 1000), st.sampled_from([NOW, NOW + 0.001]))
NAMES = st.lists(st.sampled_from((*MEASURES, "NOT_OURS")), max_size=3)
ROWS = st.lists(st.tuples(SUBJECTS, ENTRIES, UNTILS, NAMES), max_size=30)
# replacements: a subject and its complete restrictions afterwards (entry, until, names)
CHANGES = st.lists(st.tuples(SUBJECTS, st.lists(st.tuples(ENTRIES, UNTILS, NAMES), max_size=3)), max_size=8)
ABSENT = ["nobody", "0", "19X", "11010519491231002Y", "110105194912310020X", "1é"]  # mostly never generated


class Reference:
    """The meaning of the index, spelled out over the rows themselves."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows: dict[str, list[Row]] = {}
        for row in rows:
            self.rows.setdefault(row[0], []).append(row)

    def replace(self, subject: str, rows: list[Row]) -> None:
        self.rows[subject] = rows

    def subjects(self) -> set[str]:
        """Subjects with a restriction: a row naming none of the agency's measures restricts nothing."""
        return {s for s, rows in self.rows.items() if any(m in MEASURES for row in rows for m in row[3])}

    def blocking(self, subject: str, measure: str, now: float) -> list[str]:
        if measure not in MEASURES:
            raise KeyError(measure)
        rows = self.rows.get(subject, [])
        return sorted({e for _, e, until, names in rows if measure in names and (until is None or until > now)})

    def held(self, subject: str, now: float) -> list[tuple[str, str, float | None]]:
        rows = self.rows.get(subject, [])
        items = {
            (e, m, until) for _, e, until, names in rows if until is None or until > now for m in names if m in MEASURES
        }
        return sorted(items, key=lambda item: (item[0], item[1], math.inf if item[2] is None else item[2]))


def times(ref: Reference) -> list[float]:
    """Moments to ask at: far before and after, now, and exactly at every end (where it no longer blocks)."""
    ends = {until for rows in ref.rows.values() for _, _, until, _ in rows if until is not None}
    return [NOW - 5000, NOW, NOW + 5000, *ends]


def assert_same(index: RestrictionIndex, ref: Reference) -> None:
    """Every question about every subject (and some never restricted) at every moment that matters."""
    subjects = ref.subjects()
    assert len(index) == len(subjects)
    moments = times(ref)
    for subject in sorted({*ref.rows, *ABSENT}):
        assert (subject in index) == (subject in subjects), subject
        for now in moments:
            assert index.held(subject, now) == ref.held(subject, now), (subject, now)
            for measure in MEASURES:
                assert index.blocking(subject, measure, now) == ref.blocking(subject, measure, now), (
                    subject,
                    measure,
                    now,
                )


def assert_entry_ids_stored_once(index: RestrictionIndex) -> None:
    """The base's entry ids are distinct, sorted, and each held by some restriction (white box)."""
    starts = index._entry_offsets.tolist()
    ids = [index._entries[a:b] for a, b in itertools.pairwise(starts)]
    assert ids == sorted(set(ids))
    assert set(index._table["entry"].tolist()) == set(range(len(ids)))


def by_subject(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda row: row[0].encode())  # stable, as `order by subject_id collate "C"`


@settings(max_examples=100, deadline=None)
@given(rows=ROWS, first=CHANGES, second=CHANGES, presorted=st.booleans())
def test_answers_as_the_rows_say_before_and_after_changes_and_compaction(rows, first, second, presorted):
    index = RestrictionIndex.build(MEASURES, by_subject(rows) if presorted else rows)
    ref = Reference(rows)
    assert_same(index, ref)
    assert_entry_ids_stored_once(index)

    for changes in (first, second):
        for subject, held in changes:
            fresh = [(subject, *restriction) for restriction in held]
            index.replace(subject, fresh)
            ref.replace(subject, fresh)
            assert len(index) == len(ref.subjects())
            assert index.held(subject, NOW) == ref.held(subject, NOW)
        assert_same(index, ref)
        compacted = index.compacted()
        assert compacted.overlay_size == 0
        assert_same(compacted, ref)
        assert_same(index, ref)  # the old index still answers until the caller swaps
        assert_entry_ids_stored_once(compacted)
        index = compacted


@settings(max_examples=50, deadline=None)
@given(rows=ROWS, seed=st.integers(0, 2**32))
def test_sorted_and_unsorted_input_give_the_same_index(rows, seed):
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    one, other = RestrictionIndex.build(MEASURES, by_subject(rows)), RestrictionIndex.build(MEASURES, shuffled)
    ref = Reference(rows)
    assert_same(one, ref)
    assert_same(other, ref)
    assert one._keys.tolist() == other._keys.tolist()
    assert one._entries == other._entries


def test_an_empty_index_answers_nothing():
    for index in (
        RestrictionIndex(MEASURES),
        RestrictionIndex.build(MEASURES, []),
        RestrictionIndex(MEASURES).compacted(),
    ):
        assert len(index) == 0
        assert index.overlay_size == 0
        assert "11010519491231002X" not in index
        assert index.blocking("11010519491231002X", "AIR", NOW) == []
        assert index.held("11010519491231002X", NOW) == []
        assert index.nbytes > 0


def test_len_follows_replacements():
    index = RestrictionIndex.build(MEASURES, [("A", "E1", None, ["AIR"]), ("B", "E1", None, ["RAIL"])])
    assert len(index) == 2
    index.replace("A", [])  # lifted
    assert len(index) == 1
    assert "A" not in index
    index.replace("A", [])  # lifted again: nothing changes
    assert len(index) == 1
    index.replace("C", [("C", "E2", None, ["LOAN"])])  # a new subject
    assert len(index) == 2
    index.replace("C", [("C", "E2", NOW, ["LOAN"]), ("C", "E3", None, ["AIR"])])  # changed, still restricted
    assert len(index) == 2
    index.replace("D", [])  # never restricted: not even kept in the overlay
    assert len(index) == 2
    assert index.overlay_size == 2
    index.replace("B", [("B", "E1", None, ["NOT_OURS"])])  # nothing of this agency's
    assert len(index) == 1
    compacted = index.compacted()
    assert len(compacted) == 1
    assert compacted.blocking("C", "AIR", NOW) == ["E3"]
    assert compacted.held("C", NOW - 1) == [("E2", "LOAN", NOW), ("E3", "AIR", None)]


def test_unknown_measure_is_a_key_error():
    index = RestrictionIndex.build(MEASURES, [("A", "E1", None, ["AIR"])])
    index.replace("B", [("B", "E2", None, ["AIR"])])
    for subject in ("A", "B", "nobody"):
        with pytest.raises(KeyError):
            index.blocking(subject, "SHIPPING", NOW)
    with pytest.raises(KeyError):
        RestrictionIndex(MEASURES).blocking("A", "SHIPPING", NOW)


def test_rows_as_the_database_gives_them():
    """psycopg gives `extract(epoch ...)` as Decimal and array_agg as a list."""
    until = Decimal("1790000000.123456")
    index = RestrictionIndex.build(MEASURES, [("A", "E1", until, ["AIR", "RAIL"])])
    assert index.held("A", NOW) == [("E1", "AIR", float(until)), ("E1", "RAIL", float(until))]
    assert index.blocking("A", "RAIL", float(until)) == []
    index.replace("A", [("A", "E1", until, ["LOAN"])])
    assert index.held("A", NOW) == [("E1", "LOAN", float(until))]


def test_what_does_not_fit_is_refused():
    with pytest.raises(ValueError):
        RestrictionIndex.build(MEASURES, [("11010519491231002XX", "E1", None, ["AIR"])])
    with pytest.raises(ValueError):
        RestrictionIndex.build(MEASURES, [("1101051949123100é", "E1", None, ["AIR"])])
    with pytest.raises(ValueError):
        RestrictionIndex.build(MEASURES, [("A", "执" * 267, None, ["AIR"])])  # over 800 bytes of UTF-8
    index = RestrictionIndex(MEASURES)
    with pytest.raises(ValueError):
        index.replace("A", [("B", "E1", None, ["AIR"])])
    with pytest.raises(ValueError):
        index.replace("11010519491231002XX", [])
    with pytest.raises(ValueError):
        RestrictionIndex([f"M{i}" for i in range(17)])
    assert index.blocking("11010519491231002XX", "AIR", NOW) == []  # asking is fine: it is simply not there


def test_the_longest_entry_id_an_event_may_carry_fits():
    longest = [("A", "E" * 200, None, ["AIR"]), ("B", "执" * 200, None, ["AIR"])]  # events.ShortText: 200 characters
    index = RestrictionIndex.build(MEASURES, longest)
    index.replace("C", [("C", "执" * 200, None, ["AIR"])])
    for built in (index, index.compacted()):
        assert built.blocking("A", "AIR", NOW) == ["E" * 200]
        assert built.blocking("B", "AIR", NOW) == built.blocking("C", "AIR", NOW) == ["执" * 200]


def test_compaction_keeps_shared_entry_ids_once_and_drops_lifted_ones():
    rows = [("A", "E1", None, ["AIR"]), ("B", "E1", None, ["AIR"]), ("C", "E2", None, ["AIR"])]
    index = RestrictionIndex.build(MEASURES, rows)
    assert index._entries == b"E1E2"
    index.replace("C", [])  # E2 lifted
    index.replace("A", [("A", "E1", None, ["AIR"]), ("A", "E3", None, ["RAIL"])])
    index.replace("D", [("D", "E3", None, ["RAIL"]), ("D", "E0", None, ["AIR"])])
    compacted = index.compacted()
    assert compacted._entries == b"E0E1E3"
    assert compacted.blocking("D", "AIR", NOW) == ["E0"]
    assert compacted.blocking("A", "RAIL", NOW) == ["E3"]
    assert compacted.blocking("B", "AIR", NOW) == ["E1"]
    assert "C" not in compacted


def test_long_and_varied_strings_sort_and_deduplicate_as_bytes():
    """Ids that vary in every byte, over several 8-byte words, exercise the packed sort keys fully."""
    rng = random.Random(7)
    alphabet = "".join(chr(c) for c in range(1, 128))

    def text(size: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(size))

    subjects = [text(rng.randint(1, 18)) for _ in range(300)]
    entries = [text(rng.randint(1, 64)) for _ in range(200)] + ["é" * 32]
    rows = [(rng.choice(subjects), rng.choice(entries), None, ["AIR"]) for _ in range(1000)]
    ref = Reference(rows)
    for index in (RestrictionIndex.build(MEASURES, rows), RestrictionIndex.build(MEASURES, by_subject(rows))):
        keys = index._keys.tolist()
        assert keys == sorted(set(keys)) == sorted({s.encode() for s in ref.subjects()})
        assert_entry_ids_stored_once(index)
        for subject in ref.rows:
            assert index.blocking(subject, "AIR", NOW) == ref.blocking(subject, "AIR", NOW)
