"""Personal data out of logs: resident ID numbers masked at INFO and above, shown only at DEBUG."""

import io
import json

import structlog

from hub.log import mask_ids, mask_personal_data

PERSON = "11010519491231002X"
ORG = "91110000600037341L"


def test_resident_ids_are_masked_wherever_they_stand_and_credit_codes_are_not():
    assert mask_ids(f"subject {PERSON} blocked") == "subject 1101051949****002X blocked"
    assert mask_ids(f"{PERSON},{PERSON.lower()}") == "1101051949****002X,1101051949****002x"
    assert mask_ids(f"org {ORG}") == f"org {ORG}"
    assert mask_ids("order 123456789012345678901") == "order 123456789012345678901", "not an ID: too long"


def test_info_lines_carry_masked_ids_and_debug_lines_full_ones():
    out = io.StringIO()
    structlog.configure(
        processors=[mask_personal_data, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(10),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    log = structlog.get_logger("t")
    log.info("blocked", subject_id=PERSON, detail={"entries": [f"E1 for {PERSON}"]}, debtor=ORG)
    log.warning(f"event for {PERSON}")
    log.debug("checked", subject_id=PERSON)
    info, warning, debug = (json.loads(line) for line in out.getvalue().splitlines())
    assert info["subject_id"] == "1101051949****002X" and info["debtor"] == ORG
    assert info["detail"] == {"entries": ["E1 for 1101051949****002X"]}
    assert PERSON not in json.dumps(warning)
    assert debug["subject_id"] == PERSON
    structlog.reset_defaults()
