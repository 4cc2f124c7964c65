"""The ACL declaration (infra/kafka/acls.toml) expands to least privilege, per namespace."""

from hub.acl import AUDITOR, LEDGER, agency_principal, court_principal, grants, principals
from hub.config import Settings

NS = Settings(namespace="t1_")


def allowed(principal: str) -> set[tuple[str, str, str, str]]:
    return {(g.resource, g.name, g.pattern, g.operation) for g in grants(NS) if g.principal == principal}


def test_a_court_may_only_publish_list_events():
    assert allowed(court_principal("J0105")) == {
        ("topic", "t1.court.list-events", "LITERAL", "WRITE"),
        ("topic", "t1.court.list-events", "LITERAL", "DESCRIBE"),
    }


def test_an_agency_reads_the_list_and_speaks_only_for_itself_in_its_own_group():
    assert allowed(agency_principal("tax")) == {
        ("topic", "t1.court.list-events", "LITERAL", "READ"),
        ("topic", "t1.court.list-events", "LITERAL", "DESCRIBE"),
        ("topic", "t1.agency.tax.feedback", "LITERAL", "WRITE"),
        ("topic", "t1.agency.tax.feedback", "LITERAL", "DESCRIBE"),
        ("topic", "t1.hub.dead-letter", "LITERAL", "WRITE"),
        ("topic", "t1.hub.dead-letter", "LITERAL", "DESCRIBE"),
        ("group", "t1_hub-tax", "LITERAL", "READ"),  # the engine's group id
    }


def test_the_ledger_reads_every_agency_by_prefix_and_the_auditor_writes_nothing():
    ledger = allowed(LEDGER)
    assert ("topic", "t1.agency.", "PREFIXED", "READ") in ledger
    assert {name for _r, name, _p, op in ledger if op == "WRITE"} == {"t1.ledger.checkpoints", "t1.hub.dead-letter"}
    auditor = allowed(AUDITOR)
    assert not {op for *_rest, op in auditor} & {"WRITE", "CREATE", "DELETE", "ALTER"}
    assert ("topic", "t1.", "PREFIXED", "READ") in auditor
    assert ("topic", "*", "LITERAL", "READ") in {
        (g.resource, g.name, g.pattern, g.operation) for g in grants(Settings()) if g.principal == AUDITOR
    }


def test_no_party_but_admin_may_administer_and_every_agency_has_its_principal():
    assert not [g for g in grants(NS) if g.operation in ("CREATE", "DELETE", "ALTER")]
    names = principals(Settings(agencies=("bank", "customs")))
    assert {"admin", "auditor", "ledger", "agency-bank", "agency-customs", "court-J0105"} <= set(names)
