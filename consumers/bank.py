"""Banks: no new loans or credit cards for a listed person; no loans or bond issues for a listed organisation."""

from hub.domain.sanctions import AgencyPolicy

POLICY = AgencyPolicy(
    name="bank",
    person_measures=("LOAN_RESTRICTED", "CREDIT_CARD_RESTRICTED"),
    org_measures=("LOAN_RESTRICTED", "BOND_ISSUANCE_RESTRICTED"),
)
