"""The public register's pure rule, the ID guard of every page, and an entry's duties on the desk."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from hub.domain.duties import entry_duties
from hub.domain.events import parse_event
from hub.domain.history import Recorded, entry_states
from hub.domain.ids import is_resident_id, mask_resident_ids, resident_id_check_char
from hub.domain.register import register
from hub.domain.rules import Deadlines, judge
from tests.support import ORG, ORG_ID, PERSON, PERSON_ID, REP_ID, court_sample, feedback_sample

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)


def court(kind, entry, n, at, debtor=PERSON, **fields):
    record = court_sample(kind)
    record.update(
        entry_id=entry,
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        debtor=debtor,
        occurred_at=at.isoformat(),
        **fields,
    )
    return parse_event(record)


def test_only_public_active_entries_are_listed_as_the_portal_shows_them():
    history = [
        Recorded(court("Included", "P", 1, T0, disclosure="PUBLIC"), T0, 1),
        Recorded(court("Included", "R", 2, T0, disclosure="RESTRICTED"), T0, 2),
        Recorded(court("Included", "O", 3, T0, ORG, disclosure="PUBLIC"), T0, 3),
        Recorded(court("Included", "S", 4, T0, disclosure="PUBLIC"), T0, 4),
        Recorded(court("Shielded", "S", 5, T0 + HOUR), T0 + HOUR, 5),
    ]
    listed = register(history)
    assert set(listed) == {"P", "O"}
    assert listed["P"].id_shown == "1101051949****002X"
    assert listed["O"].id_shown == ORG_ID and listed["O"].legal_representative == "李四"
    assert REP_ID not in repr(listed) and PERSON_ID not in repr(listed)


ACTS = st.lists(
    st.tuples(
        st.sampled_from(["Included", "Shielded", "Revoked"]), st.integers(0, 3), st.integers(0, 50), st.booleans()
    ),
    max_size=25,
)


@given(ACTS, st.randoms())
def test_the_register_is_the_public_active_part_of_the_audits_reconstruction(acts, rng):
    """Whatever the order of arrival, the register lists exactly the entries the audit finds ACTIVE and PUBLIC."""
    events = []
    for n, (kind, entry, minutes, public) in enumerate(acts):
        fields = {"disclosure": "PUBLIC" if public else "RESTRICTED"} if kind == "Included" else {}
        events.append(court(kind, f"E{entry}", n, T0 + dt.timedelta(minutes=minutes), **fields))
    rng.shuffle(events)
    history = [Recorded(e, T0 + HOUR, p) for p, e in enumerate(events)]
    far = T0 + 10 * HOUR
    states = entry_states(history, far, far)
    assert set(register(history)) == {
        e for e, v in states.items() if v["state"] == "ACTIVE" and v.get("disclosure") == "PUBLIC"
    }


def resident(first17: str) -> str:
    return first17 + resident_id_check_char(first17)


def test_the_last_guard_masks_valid_resident_ids_and_leaves_credit_codes_whole():
    person, other = PERSON_ID, resident("34230119640101322")
    text = f"SanctionApplied on {person}; {other}, code {ORG_ID}, 123456789012345678, x{person}y"
    masked = mask_resident_ids(text)
    assert person not in masked and other not in masked and ORG_ID in masked
    assert "1101051949****002X" in masked and "123456789012345678" in masked
    assert is_resident_id(person) and not is_resident_id(ORG_ID)


def test_an_entrys_duties_carry_the_ledgers_deadline_and_whether_it_was_met():
    included = Recorded(court("Included", "E-2026-0001", 1, T0, disclosure="PUBLIC"), T0, 1)
    shielded = Recorded(court("Shielded", "E-2026-0001", 2, T0 + 2 * HOUR), T0 + 2 * HOUR, 2)
    applied = Recorded(
        parse_event(feedback_sample("SanctionApplied", court_event_id=included.event.event_id, entry_id="E-2026-0001")),
        T0 + HOUR,
        3,
    )
    deadlines = Deadlines()
    as_of = T0 + 50 * HOUR
    duties = entry_duties([included, shielded], [applied], ["transport"], deadlines, as_of, {"transport": T0})
    apply_duty, lift_duty = duties["transport"]
    assert (apply_duty.asked_by, apply_duty.met, apply_duty.done_at) == ("Included", True, T0 + HOUR)
    assert apply_duty.due_at == T0 + 24 * HOUR
    assert (lift_duty.asked_by, lift_duty.met, lift_duty.done_at) == ("Shielded", False, None)
    assert lift_duty.due_at == T0 + 26 * HOUR
    breached = {(v.rule, v.due_at) for v in judge([included, shielded], [applied], as_of, deadlines, ["transport"])}
    assert ("SANCTION_NOT_LIFTED", lift_duty.due_at) in breached  # the page and the report agree on the date
    pending = entry_duties([included, shielded], [applied], ["transport"], deadlines, T0 + 3 * HOUR, {"transport": T0})
    assert pending["transport"][1].met is None and pending["transport"][1].status == "待履行 pending"
