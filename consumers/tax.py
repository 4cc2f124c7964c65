"""Tax authorities: the listed debtor's tax credit rating is downgraded; organisations also lose invoices."""

from hub.domain.sanctions import AgencyPolicy

POLICY = AgencyPolicy(
    name="tax",
    person_measures=("TAX_CREDIT_DOWNGRADED",),
    org_measures=("TAX_CREDIT_DOWNGRADED", "INVOICE_RESTRICTED"),
)
